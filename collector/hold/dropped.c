/* The remembered ids of dropped traces: see dropped.h. */
#include "dropped.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool index_find(const tt_dropped_t *d, const uint8_t id[16], uint32_t hash) {
  uint32_t mask = d->icap - 1;
  for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
    uint32_t v = d->index[i];
    if (v == 0)
      return false;
    const tt_dropped_entry_t *e = &d->ring[v - 1];
    if (e->hash == hash && memcmp(e->id, id, 16) == 0)
      return true;
  }
}

static void index_put(tt_dropped_t *d, uint32_t pos) {
  uint32_t mask = d->icap - 1;
  uint32_t i = d->ring[pos].hash & mask;
  while (d->index[i] != 0)
    i = (i + 1) & mask;
  d->index[i] = pos + 1;
}

/* Empties slot i and moves later entries of its probe run back, so lookups need no tombstones. */
static void index_delete(tt_dropped_t *d, uint32_t i) {
  uint32_t mask = d->icap - 1;
  d->index[i] = 0;
  for (uint32_t j = (i + 1) & mask; d->index[j] != 0; j = (j + 1) & mask) {
    uint32_t home = d->ring[d->index[j] - 1].hash & mask;
    /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays)
      continue;
    d->index[i] = d->index[j];
    d->index[j] = 0;
    i = j;
  }
}

/* Moves the live entries, oldest first, into arrays for cap entries, and indexes them again. */
static int resize(tt_dropped_t *d, uint32_t cap) {
  uint32_t icap = 16;
  while (icap < 2 * cap)
    icap *= 2;
  tt_dropped_entry_t *ring = malloc((size_t)cap * sizeof *ring);
  uint32_t *index = calloc(icap, sizeof *index);
  if (ring == NULL || index == NULL) {
    free(ring);
    free(index);
    return -ENOMEM;
  }
  for (uint32_t k = 0; k < d->n; k++)
    ring[k] = d->ring[(d->head + k) % d->cap];
  free(d->ring);
  free(d->index);
  d->ring = ring;
  d->index = index;
  d->cap = cap;
  d->icap = icap;
  d->head = 0;
  for (uint32_t k = 0; k < d->n; k++)
    index_put(d, k);
  return 0;
}

int tt__dropped_add(tt_dropped_t *d, const uint8_t id[16], uint32_t hash, uint64_t decided_ns,
                    uint32_t max) {
  if (max == 0)
    return 0;
  if (d->n == d->cap) {
    if (d->cap < max) {
      uint32_t cap = d->cap < 512 ? 1024 : d->cap * 2;
      if (resize(d, cap < max ? cap : max) != 0)
        return -ENOMEM;
    } else {
      tt__dropped_pop(d);
    }
  }
  while (d->n >= max)
    tt__dropped_pop(d);
  uint32_t pos = (d->head + d->n) % d->cap;
  tt_dropped_entry_t *e = &d->ring[pos];
  memcpy(e->id, id, 16);
  e->decided_ns = decided_ns;
  e->hash = hash;
  e->unused = 0;
  d->n++;
  index_put(d, pos);
  return 0;
}

bool tt__dropped_has(const tt_dropped_t *d, const uint8_t id[16], uint32_t hash) {
  return d->n > 0 && index_find(d, id, hash);
}

bool tt__dropped_oldest(const tt_dropped_t *d, uint64_t *decided_ns) {
  if (d->n == 0)
    return false;
  *decided_ns = d->ring[d->head].decided_ns;
  return true;
}

void tt__dropped_pop(tt_dropped_t *d) {
  if (d->n == 0)
    return;
  /* The slot that points at this ring position (not merely at an equal id). */
  uint32_t mask = d->icap - 1, want = d->head + 1;
  for (uint32_t i = d->ring[d->head].hash & mask; d->index[i] != 0; i = (i + 1) & mask)
    if (d->index[i] == want) {
      index_delete(d, i);
      break;
    }
  d->head = (d->head + 1) % d->cap;
  d->n--;
}

void tt__dropped_free(tt_dropped_t *d) {
  free(d->ring);
  free(d->index);
  memset(d, 0, sizeof *d);
}
