#include "fair.h"

#include <pthread.h>
#include <stdlib.h>

enum { SLOTS = 128, ACTIVE_MS = 5000, HALF_LIFE_MS = 1000 };

typedef struct {
  uint64_t peer;
  uint64_t bytes; /* admitted recently, halved every HALF_LIFE_MS */
  uint64_t seen_ms;
  bool used;
} entry_t;

struct tt_fair_s {
  pthread_mutex_t mu;
  uint64_t decayed_ms; /* when the counts were last halved */
  entry_t e[SLOTS];
};

tt_fair_t *tt__fair_new(void) {
  tt_fair_t *f = calloc(1, sizeof *f);
  if (f != NULL)
    pthread_mutex_init(&f->mu, NULL);
  return f;
}

void tt__fair_free(tt_fair_t *f) {
  if (f == NULL)
    return;
  pthread_mutex_destroy(&f->mu);
  free(f);
}

static void decay(tt_fair_t *f, uint64_t now) {
  if (f->decayed_ms == 0)
    f->decayed_ms = now;
  if (now - f->decayed_ms < HALF_LIFE_MS)
    return;
  uint64_t halvings = (now - f->decayed_ms) / HALF_LIFE_MS;
  f->decayed_ms += halvings * HALF_LIFE_MS;
  for (int i = 0; i < SLOTS; i++)
    f->e[i].bytes = halvings >= 64 ? 0 : f->e[i].bytes >> halvings;
}

/* The sender's entry, made (over the longest-silent one when full) if it has none. */
static entry_t *lookup(tt_fair_t *f, uint64_t peer, uint64_t now) {
  entry_t *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < SLOTS; i++) {
    entry_t *e = &f->e[i];
    if (e->used && e->peer == peer)
      return e;
    if (!e->used) {
      if (free_slot == NULL)
        free_slot = e;
    } else if (oldest == NULL || e->seen_ms < oldest->seen_ms) {
      oldest = e;
    }
  }
  entry_t *e = free_slot != NULL ? free_slot : oldest;
  *e = (entry_t){.peer = peer, .seen_ms = now, .used = true};
  return e;
}

void tt__fair_note(tt_fair_t *f, uint64_t peer, uint64_t bytes, uint64_t now_ms) {
  pthread_mutex_lock(&f->mu);
  decay(f, now_ms);
  entry_t *e = lookup(f, peer, now_ms);
  e->bytes += bytes;
  e->seen_ms = now_ms;
  pthread_mutex_unlock(&f->mu);
}

void tt__fair_seen(tt_fair_t *f, uint64_t peer, uint64_t now_ms) {
  pthread_mutex_lock(&f->mu);
  decay(f, now_ms);
  lookup(f, peer, now_ms)->seen_ms = now_ms;
  pthread_mutex_unlock(&f->mu);
}

bool tt__fair_admit(tt_fair_t *f, uint64_t peer, uint64_t bytes, uint64_t now_ms) {
  pthread_mutex_lock(&f->mu);
  decay(f, now_ms);
  entry_t *me = lookup(f, peer, now_ms);
  me->seen_ms = now_ms;
  uint64_t total = bytes, active = 0;
  for (int i = 0; i < SLOTS; i++) {
    const entry_t *e = &f->e[i];
    if (e->used && now_ms - e->seen_ms <= ACTIVE_MS) {
      active++;
      total += e->bytes;
    }
  }
  /* me + bytes <= total / active, without the division's rounding. */
  bool ok = active <= 1 || (me->bytes + bytes) * active <= total;
  if (ok)
    me->bytes += bytes;
  pthread_mutex_unlock(&f->mu);
  return ok;
}
