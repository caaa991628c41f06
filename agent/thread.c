/* Thread state: per-thread span free lists, rings and current span; the global record pool;
 * fork handling.
 *
 * Ownership: a tt__tstate_t is written only by its owning thread, except its ring's tail (the
 * exporter thread) and in_use (under g_reg_mu). The registry is an append-only list so the
 * exporter thread can walk it without a lock. The record pool (g_pool_*) is shared under
 * g_pool_mu; threads touch it once per TT__REFILL records, never per span. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TT__CHUNK_RECORDS 32
/* Records sit 4 KB + 128 bytes apart, not 4 KB. At a 4 KB stride the same field of every record
 * falls into the same few cache sets (the set index is address bits 6-15 on this class of CPU),
 * so the L2 cache could hold that field for only ~256 records, fewer than a thread has in flight
 * between polls, and every span start missed. The extra 128 bytes walk each record two sets
 * further (and keep the 128-byte alignment the ring tags need). */
#define TT__RECORD_STRIDE (TT__RECORD_SIZE + 128)

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
static uint64_t g_pool_cap;         /* raised by tt_init (2 * queue + 512), never lowered */
static uint64_t g_thread_allowance; /* plus this much per thread state ever created */
static void *g_chunks;              /* see pool_grow_locked */

static void pool_push_locked(struct tt_span_s *r) {
  g_pool_arr[g_pool_n++] = r;
}

/* Takes up to max records from t's return ring into out. Two may take: the owner (refilling its
 * free list, or at exit) and the exporter thread (reclaiming from a thread that went idle), so
 * the tail moves by compare-and-swap; only the exporter thread adds. */
static size_t ret_take(tt__tstate_t *t, struct tt_span_s **out, size_t max) {
  /* Acquire on the tail too: a tail another taker moved must not be paired with an older head
   * (tail past head would hand records out twice). */
  uint64_t tl = atomic_load_explicit(&t->ret_tail, memory_order_acquire);
  for (;;) {
    uint64_t h = atomic_load_explicit(&t->ret_head, memory_order_acquire);
    if (h - tl > t->ring_mask + 1) { /* cannot happen with the orders above; never trust it */
      tl = atomic_load_explicit(&t->ret_tail, memory_order_acquire);
      continue;
    }
    size_t n = h - tl < max ? (size_t)(h - tl) : max;
    if (n == 0)
      return 0;
    for (size_t i = 0; i < n; i++)
      out[i] = atomic_load_explicit(&t->ret[(tl + i) & t->ring_mask], memory_order_relaxed);
    if (atomic_compare_exchange_weak_explicit(&t->ret_tail, &tl, tl + n, memory_order_acq_rel,
                                              memory_order_acquire))
      return n;
  }
}

static void on_thread_exit(void *arg) {
  tt__tstate_t *t = arg;
  pthread_mutex_lock(&g_pool_mu);
  for (uint32_t i = 0; i < t->free_count; i++)
    pool_push_locked(t->free_arr[i]);
  t->free_count = 0;
  pthread_mutex_unlock(&g_pool_mu);
  /* Records the exporter gave back to this thread go to everyone again (owned is cleared first,
   * so nothing more is given back to it). */
  atomic_store(&t->owned, 0);
  tt__record_reclaim_idle(t, 0);
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
    /* Each thread may hold records back (its free list and return ring); the cap grows by that
     * much per thread state, so many threads do not starve each other. */
    pthread_mutex_lock(&g_pool_mu);
    g_thread_allowance += TT__LOCAL_MAX + TT__RET_MAX;
    pthread_mutex_unlock(&g_pool_mu);
  }
  t->in_use = 1;
  atomic_store(&t->owned, 1);
  t->current = NULL;
  tt__rng_seed(&t->rng);
  t->fork_gen = atomic_load(&tt__fork_gen);
  pthread_mutex_unlock(&g_reg_mu);
  pthread_setspecific(g_key, t);
  tt__tls = t;
  return t;
}

void tt__pool_set_cap(uint64_t cap) {
  pthread_mutex_lock(&g_pool_mu);
  if (cap > g_pool_cap)
    g_pool_cap = cap;
  pthread_mutex_unlock(&g_pool_mu);
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
  uint64_t limit = g_pool_cap + g_thread_allowance;
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
}

/* Takes a batch from the global pool (growing it up to the cap) into t's free list and returns
 * one record, or NULL when the pool is exhausted: the caller drops the span and counts it. */
struct tt_span_s *tt__record_refill(tt__tstate_t *t) {
  if (t->ret != NULL) {
    struct tt_span_s *got[TT__REFILL];
    size_t n = ret_take(t, got, TT__REFILL);
    if (n != 0) {
      /* The exporter thread wrote the next slots on its core: start pulling them over now, so
       * the next refill, TT__REFILL spans from now, does not wait for four cache misses. */
      uint64_t next = atomic_load_explicit(&t->ret_tail, memory_order_relaxed);
      for (int i = 0; i < TT__REFILL; i += 8)
        __builtin_prefetch(&t->ret[(next + (uint64_t)i) & t->ring_mask]);
      /* Oldest last: got[0] is taken now, got[1] next, ... */
      for (size_t i = n; i-- > 1;)
        t->free_arr[t->free_count++] = got[i];
      return got[0];
    }
  }
  pthread_mutex_lock(&g_pool_mu);
  if (g_pool_n == 0)
    pool_grow_locked();
  for (int i = 0; i < TT__REFILL && g_pool_n != 0; i++)
    t->free_arr[t->free_count++] = g_pool_arr[--g_pool_n];
  pthread_mutex_unlock(&g_pool_mu);
  return t->free_count != 0 ? t->free_arr[--t->free_count] : NULL;
}

void tt__record_release_local(tt__tstate_t *t, struct tt_span_s *r) {
  t->free_arr[t->free_count++] = r;
  if (t->free_count <= TT__LOCAL_MAX)
    return;
  /* A thread that ends many spans started elsewhere would hoard records; give a batch back. */
  pthread_mutex_lock(&g_pool_mu);
  for (int i = 0; i < TT__REFILL; i++)
    pool_push_locked(t->free_arr[--t->free_count]);
  pthread_mutex_unlock(&g_pool_mu);
}

void tt__record_release_chain(tt__tstate_t *t, struct tt_span_s *r) {
  tt__exts_mark_unclean(r);
  for (uint32_t i = 0; i < r->n_ext; i++)
    tt__record_release_local(t, TT__EXTS(r)[i]);
  tt__record_release_local(t, r);
}

void tt__pool_return(struct tt_span_s **recs, size_t n) {
  if (n == 0)
    return;
  pthread_mutex_lock(&g_pool_mu);
  for (size_t i = 0; i < n; i++)
    pool_push_locked(recs[i]);
  pthread_mutex_unlock(&g_pool_mu);
}

size_t tt__record_give_back_many(tt__tstate_t *t, const tt_span_data_t *const *views, size_t n) {
  if (t->ret == NULL || !atomic_load_explicit(&t->owned, memory_order_relaxed))
    return 0;
  uint64_t h = atomic_load_explicit(&t->ret_head, memory_order_relaxed);
  uint64_t used = h - atomic_load_explicit(&t->ret_tail, memory_order_acquire);
  uint64_t cap = t->ring_mask + 1;
  if (!t->ret_reusing && cap > TT__RET_MAX)
    cap = TT__RET_MAX;
  size_t room = used >= cap ? 0 : (size_t)(cap - used);
  if (n > room)
    n = room;
  for (size_t i = 0; i < n; i++)
    atomic_store_explicit(&t->ret[(h + i) & t->ring_mask], tt__record_of(views[i]),
                          memory_order_relaxed);
  if (n != 0)
    atomic_store_explicit(&t->ret_head, h + n, memory_order_release);
  return n;
}

void tt__record_reclaim_idle(tt__tstate_t *t, uint64_t keep) {
  if (t->ret == NULL)
    return;
  for (;;) {
    uint64_t used = atomic_load_explicit(&t->ret_head, memory_order_acquire) -
                    atomic_load_explicit(&t->ret_tail, memory_order_acquire);
    if (used <= keep)
      return;
    struct tt_span_s *got[TT__REFILL];
    size_t want = used - keep < TT__REFILL ? (size_t)(used - keep) : TT__REFILL;
    size_t n = ret_take(t, got, want);
    if (n == 0)
      return;
    tt__pool_return(got, n);
  }
}

int tt__record_give_back(tt__tstate_t *t, struct tt_span_s *r) {
  const tt_span_data_t *v = &r->data;
  return tt__record_give_back_many(t, &v, 1) == 1 ? 0 : -1;
}

int tt__ring_ensure(tt__tstate_t *t, uint32_t capacity) {
  if (t->ring != NULL)
    return 0;
  uint64_t cap = 256;
  while (cap < capacity)
    cap <<= 1;
  /* The ring is published to the exporter thread by the release store of head that follows the
   * first push, and never replaced, so the consumer never sees a half-set ring.
   *
   * Allocated under the registry mutex, which fork's prepare handler holds, so no thread is inside
   * the allocator for us when another forks. glibc's malloc is safe across fork anyway, but not
   * every allocator is (ASan's is not, nor need an allocator hook's be): a child forked while a
   * thread was allocating its first ring hung at its own first span end, once in ~40 runs of
   * test_fork under ASan on a loaded machine. */
  pthread_mutex_lock(&g_reg_mu);
  _Atomic(struct tt_span_s *) *ret = tt__calloc(cap, sizeof *ret);
  uintptr_t *ring = ret != NULL ? tt__calloc(cap, sizeof *ring) : NULL;
  pthread_mutex_unlock(&g_reg_mu);
  if (ring == NULL) {
    tt__free(ret);
    return TT_ENOMEM;
  }
  t->ring = ring;
  t->ring_mask = cap - 1;
  t->ret = ret;
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

int tt_stats_get(tt_stats_t *out) {
  if (out == NULL || out->size < sizeof(tt_stats_t))
    return TT_EINVAL;
  memset((char *)out + sizeof out->size, 0, sizeof *out - sizeof out->size);
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
    uint64_t h = atomic_load(&t->head), tl = atomic_load(&t->tail);
    for (; tl != h; tl++) {
      struct tt_span_s *r = tt__ring_record(t->ring[tl & t->ring_mask]);
      if (r->recording) {
        tt__exts_mark_unclean(r);
        for (uint32_t i = 0; i < r->n_ext; i++)
          pool_push_locked(TT__EXTS(r)[i]);
      }
      pool_push_locked(r);
    }
    atomic_store(&t->tail, h);
    t->tail_cache = h;
    if (t != tt__tls) {
      /* A vanished thread may have been halfway through a free-array update (a release that
       * wrote a slot but not the count, or a refill between taking from the return ring and
       * storing), so its free array is abandoned: a bounded leak in the child. Its return ring
       * stays the authority (records leave it only by compare-and-swap). */
      t->in_use = 0;
      atomic_store(&t->owned, 0);
      t->current = NULL;
      t->free_count = 0;
    }
  }
  atomic_fetch_add(&tt__fork_gen, 1);
  if (tt__tls != NULL)
    tt__rng_seed(&tt__tls->rng);
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
