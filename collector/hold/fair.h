/* Sharing the memory budget between senders when it runs short.
 *
 * When memory is short, whoever asks most often gets what frees up: a sender that ignores
 * Retry-After and retries at once takes every byte the shards release, and a sender that waits
 * as told finds the budget full each time it comes back. Under contention the pipeline therefore
 * admits a request only when its sender's recent share is at most the mean of the active
 * senders', so a light, polite sender is admitted while a heavy one is throttled.
 *
 * A sender is its client address (receivers pass a keyed hash of it; 0 when unknown). Recent
 * bytes halve every second; a sender counts as active for 5 s after its last request, admitted
 * or not. Up to 128 senders are tracked; past that the longest silent is forgotten.
 *
 * Thread-safe: every call takes the table's mutex (one short critical section a request). */
#ifndef TT_COLLECTOR_FAIR_H
#define TT_COLLECTOR_FAIR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tt_fair_s tt_fair_t;

tt_fair_t *tt__fair_new(void);
void tt__fair_free(tt_fair_t *f);

/* Records `bytes` admitted for `peer` while memory is not short. */
void tt__fair_note(tt_fair_t *f, uint64_t peer, uint64_t bytes, uint64_t now_ms);

/* Marks `peer` active without admitting anything: a sender refused at the hard limit still
 * counts, so the senders over their share are held back at the soft line from then on and the
 * room they leave is there when it retries. */
void tt__fair_seen(tt_fair_t *f, uint64_t peer, uint64_t now_ms);

/* While memory is short: true when `peer` is within its share (its recent bytes plus `bytes` at
 * most the active senders' mean, counting these bytes in, or it is the only active sender); the
 * bytes are then recorded as admitted. Either way the sender counts as active. */
bool tt__fair_admit(tt_fair_t *f, uint64_t peer, uint64_t bytes, uint64_t now_ms);

#endif
