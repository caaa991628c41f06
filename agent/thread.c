/* Thread state: per-thread span free lists, rings and current span; the global record pool;
 * fork handling.
 *
 * Ownership: a tt__tstate_t is written only by its owning thread, except its ring's tail and
 * done positions (the exporter thread), taken (compare-and-swap by the owner and the exporter
 * thread) and in_use (under g_reg_mu). The registry is an append-only list so the
 * exporter thread can walk it without a lock. The record pool (g_pool_*) is shared under
 * g_pool_mu; threads touch it once per TT__REFILL records, never per span. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TT__CHUNK_RECORDS 32
/* Records sit TT__RECORD_STRIDE apart (internal.h says why). */

__thread tt__tstate_t *tt__tls __attribute__((tls_model("initial-exec")));
_Atomic uint64_t tt__fork_gen;

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static tt__tstate_t *_Atomic g_reg_head;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER;
/* Free records as an array of pointers, not an intrusive list: returning a record then writes
 * nothing into it, so the exporter thread does not dirty cache lines the next span will use. Its
 * capacity always covers every record ever allocated, so a push never fails. */
static struct tt_span_s **g_pool_arr;
static size_t g_pool_n;
static uint64_t g_pool_total;
/* The process-wide span memory budget (tt__memory_set_budget), in bytes, and what of it the
 * threads' rings and copy slots took (tt__ring_ensure); records may use the rest. Whatever the
 * number of threads, span memory stays within it: a thread's queue and copy slots come out of
 * the budget when it first ends a span, and its free list shrinks as threads multiply
 * (tt__hold.max), so many threads share the records rather than each adding its own. */
static uint64_t g_budget;
static uint64_t g_reserved;
static uint64_t g_nlive; /* thread states a live thread uses: they share the pool */
static void *g_chunks;   /* see pool_grow_locked */
/* Read by every thread as it frees a record, written rarely (a new thread state, a new budget):
 * alone on its line so those reads never miss. */
tt__hold_t tt__hold = {TT__LOCAL_MAX};

static void pool_push_locked(struct tt_span_s *r) {
  g_pool_arr[g_pool_n++] = r;
}

#define TT__RECORDS_MIN 64
/* Records the budget leaves for the pool, under g_pool_mu. Never below TT__RECORDS_MIN, so that a
 * budget smaller than the threads' rings still lets spans through (slowly). */
static uint64_t pool_limit_locked(void) {
  uint64_t left = g_budget > g_reserved ? (g_budget - g_reserved) / TT__RECORD_STRIDE : 0;
  return left > TT__RECORDS_MIN ? left : TT__RECORDS_MIN;
}

/* A ring of cap slots and its copy slots, in bytes. */
static uint64_t ring_cost(uint64_t cap, uint64_t ncopies) {
  return cap * sizeof(uintptr_t) + ncopies * TT__COPY_SIZE;
}

/* Half the pool shared by the live threads, between TT__HOLD_MIN and TT__LOCAL_MAX records each,
 * so free lists never hold the records the other half needs for queued and open spans; under
 * g_pool_mu. One thread keeps the full TT__LOCAL_MAX. The pool is its limit, or what it already
 * holds when that is more (an earlier provider's larger budget: records are never freed). */
static void set_hold_max_locked(void) {
  uint64_t n = g_nlive != 0 ? g_nlive : 1, pool = pool_limit_locked();
  if (g_pool_total > pool)
    pool = g_pool_total;
  uint64_t h = pool / (2 * n);
  if (h > TT__LOCAL_MAX)
    h = TT__LOCAL_MAX;
  if (h < TT__HOLD_MIN)
    h = TT__HOLD_MIN;
  atomic_store_explicit(&tt__hold.max, (uint32_t)h, memory_order_relaxed);
}

uint64_t tt__memory_default_budget(uint32_t queue_size) {
  /* What one thread could use before there was a budget: twice its queue in records plus 864
   * for open spans and its free list, and its ring with its copy slots. So one thread behaves
   * as it did, and more threads share the same memory. */
  uint64_t cap = 512;
  while (cap < 2 * (uint64_t)queue_size)
    cap <<= 1;
  uint64_t ncopies = cap / 2 < TT__COPIES_MAX ? cap / 2 : TT__COPIES_MAX;
  return (2 * (uint64_t)queue_size + 864) * TT__RECORD_STRIDE + ring_cost(cap, ncopies);
}

void tt__memory_set_budget(uint64_t bytes) {
  pthread_mutex_lock(&g_pool_mu);
  g_budget = bytes;
  set_hold_max_locked();
  pthread_mutex_unlock(&g_pool_mu);
}

void tt__memory_get(uint64_t *budget, uint64_t *reserved, uint64_t *records) {
  pthread_mutex_lock(&g_pool_mu);
  *budget = g_budget;
  *reserved = g_reserved;
  *records = g_pool_total;
  pthread_mutex_unlock(&g_pool_mu);
}

/* Takes up to max exported records from t's ring: their slot values (record pointer and tags)
 * into out; *next is taken after them. Two may take: the owner (refilling its free list) and the
 * exporter thread (reclaiming from an idle or exited owner, or the owner itself as it exits), so
 * taken moves by compare-and-swap; only the exporter thread moves done. */
static size_t ring_take(tt__tstate_t *t, uintptr_t *out, size_t max, uint64_t *next) {
  uint64_t tl = atomic_load_explicit(&t->taken, memory_order_acquire);
  for (;;) {
    /* Acquire: the exporter's reads of these records (its export) happen before we reuse them. */
    uint64_t d = atomic_load_explicit(&t->done, memory_order_acquire);
    if (d - tl > t->ring_mask + 1) {
      /* Our taken is older than that done (another taker moved it): look again. If it has not
       * moved, the positions are broken (a fork from inside an export can do that) and nothing
       * is taken: spinning here would hang the thread for good. */
      uint64_t again = atomic_load_explicit(&t->taken, memory_order_acquire);
      if (again == tl)
        return 0;
      tl = again;
      continue;
    }
    size_t n = d - tl < max ? (size_t)(d - tl) : max;
    if (n == 0)
      return 0;
    for (size_t i = 0; i < n; i++)
      out[i] = atomic_load_explicit(&t->ring[(tl + i) & t->ring_mask], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&t->taken, &tl, tl + n, memory_order_acq_rel,
                                              memory_order_acquire)) {
      *next = tl + n;
      return n;
    }
  }
}

static void on_thread_exit(void *arg) {
  tt__tstate_t *t = arg;
  pthread_mutex_lock(&g_pool_mu);
  for (uint32_t i = 0; i < t->free_count; i++)
    pool_push_locked(t->free_arr[i]);
  t->free_count = 0;
  if (g_nlive > 0)
    g_nlive--;
  set_hold_max_locked();
  pthread_mutex_unlock(&g_pool_mu);
  /* Exported records in its ring go to everyone again; those still queued follow from the
   * exporter thread once exported (owned is cleared first: it keeps none of them for us). */
  atomic_store(&t->owned, 0);
  if (t->ring != NULL)
    tt__ring_reclaim(t, 0);
  t->current = NULL;
  /* The ring stays with the state: the exporter thread still drains it, and the adopting thread
   * becomes its producer (the registry mutex orders the hand-over). */
  pthread_mutex_lock(&g_reg_mu);
  t->in_use = 0;
  pthread_mutex_unlock(&g_reg_mu);
  tt__tls = NULL;
}

static void make_key(void) {
  pthread_key_create(&g_key, on_thread_exit);
}

tt__tstate_t *tt__tstate_first(void) {
  return atomic_load_explicit(&g_reg_head, memory_order_acquire);
}

tt__tstate_t *tt__tstate_slow(void) {
  pthread_once(&g_key_once, make_key);
  pthread_mutex_lock(&g_reg_mu);
  tt__tstate_t *t = atomic_load_explicit(&g_reg_head, memory_order_relaxed);
  while (t != NULL && t->in_use)
    t = atomic_load_explicit(&t->next_all, memory_order_relaxed);
  if (t == NULL) {
    /* Over-allocate to align to a cache line; states are never freed, so the raw pointer is
     * not needed later. */
    char *raw = tt__calloc(1, sizeof(tt__tstate_t) + 64);
    if (raw == NULL) {
      pthread_mutex_unlock(&g_reg_mu);
      return NULL;
    }
    t = (tt__tstate_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    atomic_store_explicit(&t->next_all, atomic_load_explicit(&g_reg_head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&g_reg_head, t, memory_order_release);
  }
  t->in_use = 1;
  atomic_store(&t->owned, 1);
  /* Each live thread may hold records back (its free list, exported records in its ring): with
   * one more thread each may hold fewer, so together they never hold the whole pool. */
  pthread_mutex_lock(&g_pool_mu);
  g_nlive++;
  set_hold_max_locked();
  pthread_mutex_unlock(&g_pool_mu);
  t->current = NULL;
  tt__rng_seed(&t->rng);
  t->fork_gen = atomic_load(&tt__fork_gen);
  pthread_mutex_unlock(&g_reg_mu);
  pthread_setspecific(g_key, t);
  tt__tls = t;
  return t;
}

/* Pool growth, under g_pool_mu. Small chunks first, so a program that traces a little stays
 * small. Past TT__SLAB_AFTER records, 2 MB slabs the kernel may back with one huge page: a busy
 * thread cycles through thousands of records, each on its own 4 KB page, and with 4 KB pages the
 * TLB misses cost about a tenth of a span. A slab is a 2 MB-aligned block from
 * tt__alloc_aligned_forever: mapped directly with the default allocator (2 MB reserved), or from
 * the application's allocator hook (4 MB asked, aligned inside); madvise only advises, and
 * failing (memory that is not the kernel's anonymous mapping) changes nothing. Chunks are never
 * freed: each allocated one keeps the previous one's address and its own allocation in its
 * first 16 bytes, so all stay reachable for leak checkers. */
#define TT__SLAB (2u << 20)
#define TT__SLAB_RECORDS ((TT__SLAB - 128) / TT__RECORD_STRIDE)
#define TT__SLAB_AFTER 480

static void pool_grow_locked(void) {
  uint64_t limit = pool_limit_locked();
  size_t n = g_pool_total >= TT__SLAB_AFTER && g_pool_total + TT__SLAB_RECORDS <= limit
                 ? TT__SLAB_RECORDS
                 : TT__CHUNK_RECORDS;
  if (g_pool_total + n > limit)
    return;
  struct tt_span_s **arr = tt__realloc(g_pool_arr, (size_t)(g_pool_total + n) * sizeof *arr);
  if (arr == NULL)
    return;
  g_pool_arr = arr;
  char *block;
  void *raw;
  if (n == TT__SLAB_RECORDS) {
    block = tt__alloc_aligned_forever(TT__SLAB, TT__SLAB, &raw);
    if (block == NULL)
      return;
#ifdef MADV_HUGEPAGE
    (void)madvise(block, TT__SLAB, MADV_HUGEPAGE);
#endif
  } else {
    raw = tt__malloc(256 + n * TT__RECORD_STRIDE);
    if (raw == NULL)
      return;
    block = (char *)(((uintptr_t)raw + 127) & ~(uintptr_t)127);
  }
  if (raw != NULL) { /* a mapping needs no keeping reachable, and leak checkers do not scan it */
    ((void **)block)[0] = g_chunks;
    ((void **)block)[1] = raw;
    g_chunks = block;
  }
  /* Records are 128-byte aligned: ring slots keep tags in the low 7 bits. */
  char *base = block + 128;
  for (size_t i = 0; i < n; i++) {
    struct tt_span_s *r = (struct tt_span_s *)(base + i * TT__RECORD_STRIDE);
    /* A fresh mapping reads as zero (not clean) and stays untouched until used; allocator
     * memory may hold anything. */
    if (raw != NULL)
      r->clean = 0;
    pool_push_locked(r);
  }
  g_pool_total += n;
  set_hold_max_locked();
}

/* Takes up to TT__REFILL exported records from the owner's own ring into its free list, with
 * their extension records. Returns how many span records it took. */
static size_t take_own(tt__tstate_t *t) {
  uintptr_t got[TT__REFILL];
  uint64_t next;
  size_t n = ring_take(t, got, TT__REFILL, &next);
  if (n == 0)
    return 0;
  t->taken_cache = next;
  /* The next take reads the slots after these: start pulling them in now (the ring holds twice
   * the queue, so they were written long ago and may have left this core's caches). */
  for (int i = 0; i < TT__REFILL; i += 8)
    __builtin_prefetch(&t->ring[(next + (uint64_t)i) & t->ring_mask]);
  /* Oldest last: the record exported first is taken first. */
  for (size_t i = n; i-- > 0;) {
    /* The slot's tag says whether the span had extension records; a plain record is not read. A
     * copied span's slot has no record to give back. */
    if (tt__ring_is_copy(got[i]))
      continue;
    if (got[i] & TT__TAG_HAS_EXT)
      tt__record_release_chain(t, tt__ring_record(got[i]));
    else
      tt__record_release_local(t, tt__ring_record(got[i]));
  }
  return n;
}

int tt__ring_make_room(tt__tstate_t *t) {
  t->taken_cache = atomic_load_explicit(&t->taken, memory_order_acquire);
  uint64_t h = atomic_load_explicit(&t->head, memory_order_relaxed);
  if (h - t->taken_cache <= t->ring_mask)
    return 0;
  return take_own(t) != 0 ? 0 : -1;
}

/* Takes a batch from the global pool (growing it up to the cap) into t's free list and returns
 * one record, or NULL when the pool is exhausted: the caller drops the span and counts it. */
struct tt_span_s *tt__record_refill(tt__tstate_t *t) {
  /* Slots of copied spans give nothing back, so a take may bring no record: go on while the ring
   * has exported slots (at most a ring's worth, read once). */
  while (t->ring != NULL && take_own(t) != 0)
    if (t->free_count != 0)
      return t->free_arr[--t->free_count];
  /* No more than the thread may hold: past that, release_local would hand them straight back. */
  uint32_t want = atomic_load_explicit(&tt__hold.max, memory_order_relaxed);
  if (want > TT__REFILL)
    want = TT__REFILL;
  pthread_mutex_lock(&g_pool_mu);
  if (g_pool_n == 0)
    pool_grow_locked();
  for (uint32_t i = 0; i < want && g_pool_n != 0; i++)
    t->free_arr[t->free_count++] = g_pool_arr[--g_pool_n];
  pthread_mutex_unlock(&g_pool_mu);
  return t->free_count != 0 ? t->free_arr[--t->free_count] : NULL;
}

void tt__record_release_local(tt__tstate_t *t, struct tt_span_s *r) {
  t->free_arr[t->free_count++] = r;
  uint32_t hold = atomic_load_explicit(&tt__hold.max, memory_order_relaxed);
  if (__builtin_expect(t->free_count <= hold, 1))
    return;
  /* A thread that ends many spans started elsewhere would hoard records, and with many threads
   * each may keep only its share: give a batch back (at most TT__REFILL, to half the share when
   * the share is smaller). */
  uint32_t give = hold >= TT__REFILL ? TT__REFILL : t->free_count - hold / 2;
  pthread_mutex_lock(&g_pool_mu);
  for (uint32_t i = 0; i < give; i++)
    pool_push_locked(t->free_arr[--t->free_count]);
  pthread_mutex_unlock(&g_pool_mu);
}

void tt__record_release_chain(tt__tstate_t *t, struct tt_span_s *r) {
  tt__exts_mark_unclean(r);
  for (uint32_t i = 0; i < r->n_ext; i++)
    tt__record_release_local(t, TT__EXTS(r)[i]);
  tt__record_release_local(t, r);
}

uint64_t tt__ring_reclaim(tt__tstate_t *t, uint64_t keep) {
  uint64_t total = 0;
  /* The pool lock is held from the take to the pushes: fork's prepare handler takes it, so a
   * child never inherits records taken from a ring and not yet in the pool. */
  pthread_mutex_lock(&g_pool_mu);
  for (;;) {
    /* taken first: done only grows, so the difference never wraps below zero. */
    uint64_t tk = atomic_load_explicit(&t->taken, memory_order_acquire);
    uint64_t held = atomic_load_explicit(&t->done, memory_order_acquire) - tk;
    if (held <= keep || held > t->ring_mask + 1)
      break;
    uintptr_t got[TT__REFILL];
    uint64_t next;
    size_t want = held - keep < TT__REFILL ? (size_t)(held - keep) : TT__REFILL;
    size_t n = ring_take(t, got, want, &next);
    if (n == 0)
      break;
    total += n;
    for (size_t i = 0; i < n; i++) {
      if (tt__ring_is_copy(got[i]))
        continue;
      struct tt_span_s *r = tt__ring_record(got[i]);
      if (got[i] & TT__TAG_HAS_EXT) { /* extension records were used raw: mark them */
        tt__exts_mark_unclean(r);
        for (uint32_t x = 0; x < r->n_ext; x++)
          pool_push_locked(TT__EXTS(r)[x]);
      }
      pool_push_locked(r);
    }
  }
  pthread_mutex_unlock(&g_pool_mu);
  return total;
}

int tt__ring_ensure(tt__tstate_t *t, uint32_t queue_size) {
  if (t->ring != NULL)
    return 0;
  uint64_t cap = 512;
  while (cap < 2 * (uint64_t)queue_size)
    cap <<= 1;
  /* Rings and copy slots may take half the budget, less what records already took, first come
   * first served (a state's ring outlives its thread and goes to the next thread that adopts the
   * state, so thread churn takes nothing more). Records past the budget (an earlier provider's
   * larger one: they are never freed) take nothing from the rings' half. A thread past that
   * share gives up copy slots first (256 bytes each against a ring slot's 8), down to 64; then
   * ring slots, down to TT__RING_FLOOR (a queue of 512 spans, one batch); then its last copy
   * slots, so its plain spans go as records, from the pool. That floor, 8 KB a thread, is granted
   * past the budget: the one part of a thread's span memory outside it. */
  uint64_t floor_cap = cap < TT__RING_FLOOR ? cap : TT__RING_FLOOR;
  pthread_mutex_lock(&g_pool_mu);
  uint64_t records = g_pool_total * TT__RECORD_STRIDE, top = g_budget / 2;
  if (records > g_budget - top && records <= g_budget)
    top = g_budget - records;
  uint64_t room = top > g_reserved ? top - g_reserved : 0;
  uint64_t ncopies = cap / 2 < TT__COPIES_MAX ? cap / 2 : TT__COPIES_MAX;
  while (ncopies > 64 && ring_cost(cap, ncopies) > room)
    ncopies >>= 1;
  while (cap > floor_cap && ring_cost(cap, ncopies) > room) {
    cap >>= 1;
    if (ncopies > cap / 2)
      ncopies = cap / 2;
  }
  if (ring_cost(cap, ncopies) > room)
    ncopies = 0;
  g_reserved += ring_cost(cap, ncopies);
  set_hold_max_locked();
  pthread_mutex_unlock(&g_pool_mu);
  /* The ring is published to the exporter thread by the release store of head that follows the
   * first push, and never replaced, so the consumer never sees a half-set ring.
   *
   * Allocated under the registry mutex, which fork's prepare handler holds, so no thread is inside
   * the allocator for us when another forks. glibc's malloc is safe across fork anyway, but not
   * every allocator is (ASan's is not, nor need an allocator hook's be): a child forked while a
   * thread was allocating its first ring hung at its own first span end, once in ~40 runs of
   * test_fork under ASan on a loaded machine. */
  pthread_mutex_lock(&g_reg_mu);
  _Atomic uintptr_t *ring = tt__calloc(cap, sizeof *ring);
  /* Copy slots are written on first use (copy_plain, span.c), so a thread that ends few spans makes
   * few of these pages resident. Aligned to 128 bytes: the two lines a copy writes are one pair
   * for the adjacent-line prefetcher. Without them (no memory or no budget) spans go as their
   * records. */
  char *raw = ring != NULL && ncopies != 0 ? tt__malloc(ncopies * TT__COPY_SIZE + 128) : NULL;
  pthread_mutex_unlock(&g_reg_mu);
  if (ring == NULL || raw == NULL) {
    pthread_mutex_lock(&g_pool_mu); /* what was not allocated is not used */
    g_reserved -= ring == NULL ? ring_cost(cap, ncopies) : ring_cost(0, ncopies);
    pthread_mutex_unlock(&g_pool_mu);
  }
  if (ring == NULL)
    return TT_ENOMEM;
  if (raw != NULL) {
    t->copies_raw = raw;
    t->copies = (struct tt_span_s *)(((uintptr_t)raw + 127) & ~(uintptr_t)127);
    t->copies_n = ncopies;
  }
  t->ring = ring;
  t->ring_mask = cap - 1;
  return 0;
}

/* ---- current span ---- */

tt_span_t *tt_current_span(void) {
  tt__tstate_t *t = tt__tstate();
  return t != NULL ? t->current : NULL;
}

tt_span_t *tt_make_current(tt_span_t *span) {
  tt__tstate_t *t = tt__tstate();
  if (t == NULL)
    return NULL;
  tt_span_t *prev = t->current;
  t->current = span;
  return prev;
}

void tt_restore_current(tt_span_t *previous) {
  tt__tstate_t *t = tt__tstate();
  if (t != NULL)
    t->current = previous;
}

/* ---- statistics ---- */

/* A caller built against an older header passes a smaller struct: it gets the fields it has, and
 * nothing past its size is written, so new counters can be added without breaking it. */
int tt_stats_get(tt_stats_t *caller) {
  if (caller == NULL || caller->size < sizeof caller->size)
    return TT_EINVAL;
  size_t size = caller->size < sizeof(tt_stats_t) ? caller->size : sizeof(tt_stats_t);
  tt_stats_t all = {.size = caller->size}, *out = &all;
  for (tt__tstate_t *t = tt__tstate_first(); t != NULL;
       t = atomic_load_explicit(&t->next_all, memory_order_acquire)) {
    out->spans_started += atomic_load_explicit(&t->c_started, memory_order_relaxed);
    out->spans_unsampled += atomic_load_explicit(&t->c_unsampled, memory_order_relaxed);
    out->spans_ended += atomic_load_explicit(&t->c_ended, memory_order_relaxed);
    out->dropped_queue_full += atomic_load_explicit(&t->c_queue_full, memory_order_relaxed);
    out->dropped_no_record += atomic_load_explicit(&t->c_no_record, memory_order_relaxed);
    out->dropped_shutdown += atomic_load_explicit(&t->c_shutdown, memory_order_relaxed);
    out->dropped_attributes += atomic_load_explicit(&t->c_dropped_attrs, memory_order_relaxed);
  }
  out->spans_exported = atomic_load(&tt__stat_exported);
  out->dropped_export_failed = atomic_load(&tt__stat_export_failed);
  out->export_calls = atomic_load(&tt__stat_export_calls);
  memcpy(caller, &all, size);
  return 0;
}

/* ---- fork ----
 * prepare takes every library lock (batch, registry, pool, in that order, the only order used
 * anywhere) so no lock is held mid-update by a thread that will not exist in the child. The
 * exporter thread never holds a library lock while it calls the exporter, so fork does not wait
 * for an export. */

static void atfork_prepare(void) {
  tt__provider_t *p = atomic_load(&tt__provider);
  if (p != NULL)
    tt__batch_atfork_prepare(p);
  pthread_mutex_lock(&g_reg_mu);
  pthread_mutex_lock(&g_pool_mu);
}

static void atfork_parent(void) {
  pthread_mutex_unlock(&g_pool_mu);
  pthread_mutex_unlock(&g_reg_mu);
  tt__provider_t *p = atomic_load(&tt__provider);
  if (p != NULL)
    tt__batch_atfork_parent(p);
}

static void atfork_child(void) {
  /* Only this thread exists now. Empty every ring (the child starts with an empty queue; the
   * parent exports those spans), orphan the states of threads that did not survive, and give
   * this thread fresh randomness so parent and child never produce the same ids. */
  for (tt__tstate_t *t = atomic_load(&g_reg_head); t != NULL; t = atomic_load(&t->next_all)) {
    /* Queued records, and those the parent's exporter thread held in its batch, count as
     * exported here: their owner (or, for a vanished thread, the child's exporter thread) takes
     * them back, extension records included. */
    uint64_t h = atomic_load(&t->head);
    atomic_store(&t->tail, h);
    atomic_store(&t->done, h);
    t->tail_cache = h;
    if (t != tt__tls) {
      /* A vanished thread may have been halfway through a free-array update (a release that
       * wrote a slot but not the count, or a refill between taking from its ring and storing),
       * so its free array is abandoned: a bounded leak in the child. Its ring stays the
       * authority (records leave it only by compare-and-swap). */
      t->in_use = 0;
      atomic_store(&t->owned, 0);
      t->current = NULL;
      t->free_count = 0;
    }
  }
  atomic_fetch_add(&tt__fork_gen, 1);
  if (tt__tls != NULL)
    tt__rng_seed(&tt__tls->rng);
  g_nlive = tt__tls != NULL; /* the pool's lock is held: the child's one thread shares it alone */
  set_hold_max_locked();
  pthread_mutex_unlock(&g_pool_mu);
  pthread_mutex_unlock(&g_reg_mu);
  tt__provider_t *p = atomic_load(&tt__provider);
  if (p != NULL)
    tt__batch_atfork_child(p);
}

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static void install_atfork(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
void tt__thread_atfork_install(void) {
  pthread_once(&g_atfork_once, install_atfork);
}
