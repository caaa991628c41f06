/* The ids of dropped traces a shard remembers, so that their late spans are dropped too.
 *
 * A dropped trace needs nothing but its id and when it was dropped: its late spans are counted
 * and freed. Keeping a whole trace record for each (as kept traces keep one, with their reason,
 * weight and emitted span ids) cost about 217 bytes an id, most of the decided-trace cache; here
 * an id costs TT_DROPPED_ENTRY_COST bytes. A ring in the order the ids were added (which is the
 * order they expire in) and an open-addressing index over it, probed with the trace table's
 * keyed hash, so chosen ids cannot collide on purpose. Owned by one shard thread. */
#ifndef TT_COLLECTOR_DROPPED_H
#define TT_COLLECTOR_DROPPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t id[16];
  uint64_t decided_ns;
  uint32_t hash;
  uint32_t unused;
} tt_dropped_entry_t;

typedef struct {
  tt_dropped_entry_t *ring; /* cap entries; the live ones are head .. head + n - 1, wrapping */
  uint32_t cap, head, n;
  uint32_t *index; /* icap slots (a power of two, at least twice cap): ring position + 1, 0 empty */
  uint32_t icap;
} tt_dropped_t;

/* What one remembered id costs: its ring entry and its share of the index (two slots). */
#define TT_DROPPED_ENTRY_COST (sizeof(tt_dropped_entry_t) + 2 * sizeof(uint32_t))

/* Remembers id (hash: the trace table's keyed hash of it) dropped at decided_ns. The arrays grow
 * by doubling up to max ids; with max ids remembered, the oldest is forgotten first. Returns 0, or
 * -ENOMEM when the arrays could not grow (the id is then not remembered). */
int tt__dropped_add(tt_dropped_t *d, const uint8_t id[16], uint32_t hash, uint64_t decided_ns,
                    uint32_t max);

/* Whether id is remembered. */
bool tt__dropped_has(const tt_dropped_t *d, const uint8_t id[16], uint32_t hash);

/* The oldest remembered id's time: false when none is remembered. */
bool tt__dropped_oldest(const tt_dropped_t *d, uint64_t *decided_ns);

/* Forgets the oldest id (a no-op when none is remembered). */
void tt__dropped_pop(tt_dropped_t *d);

void tt__dropped_free(tt_dropped_t *d);

#endif
