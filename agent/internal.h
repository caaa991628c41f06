/* internal.h: types and functions shared by the libtailtrace subsystems (never installed).
 *
 * Data path: a span is a fixed-size record (struct tt_span_s) taken from the calling thread's
 * free list; its exporter-visible part (tt_span_data_t) sits at a fixed offset so the exporter
 * reads the record in place. A plain span writes only the record's first two cache lines.
 * Attributes, events, links and strings live in the record's own bump arena, so a span never
 * allocates. At end a plain span's two lines are copied into the ending thread's copy slots and
 * its record is reused at once; any other span's record goes into the thread's single-producer
 * ring itself. The one exporter thread drains every ring, exports, and gives a batch back by
 * moving each ring's done position past it: that frees the copy slots, and the thread that ended
 * the records takes them from its own ring again, in batches (the exporter thread moves them to
 * the global pool when that thread is idle or gone). */
#ifndef TT_INTERNAL_H
#define TT_INTERNAL_H

#include "tailtrace.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---- allocator (alloc.c) ---- */
void *tt__malloc(size_t n);
void *tt__calloc(size_t n, size_t m);
void *tt__realloc(void *p, size_t n);
void tt__free(void *p);
char *tt__strdup(const char *s);
void tt__allocator_freeze(void);
void *tt__alloc_aligned_forever(size_t size, size_t align, void **raw);

/* Copies a caller's size-versioned struct (its first field the caller's sizeof) into the library's
 * own: a caller built against an older, smaller header gets its fields, the newer ones as zero,
 * and nothing past its size is read. */
static inline void tt__copy_sized(void *dst, size_t dst_size, const void *src, size_t src_size) {
  memset(dst, 0, dst_size);
  memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

/* ---- baggage (baggage.c) ---- */
/* Formats the members of b that fit a W3C baggage header (at most TT_BAGGAGE_MAX_BYTES encoded
 * bytes and TT_BAGGAGE_MAX_ENTRIES members), in order, leaving out whole the ones that do not.
 * Returns the length and stores the number left out in *left_out. Pure; any thread. */
int tt__baggage_format_header(const tt_baggage_t *b, char out[TT_BAGGAGE_MAX_BYTES + 1],
                              int *left_out);

/* ---- logging (log.c) ---- */
extern _Atomic int tt__log_level;
void tt__log_init_from_env(void);
void tt__log(tt_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TT_LOG(level, ...)                                                                         \
  do {                                                                                             \
    if ((int)(level) <= atomic_load_explicit(&tt__log_level, memory_order_relaxed))                \
      tt__log((level), __VA_ARGS__);                                                               \
  } while (0)

/* ---- write prefetch ----
 * __builtin_prefetch(p, 1) is a read prefetch unless the compiler targets PREFETCHW, and a line
 * fetched for reading that another core also holds still needs that core's copy invalidated at
 * the store; the stores behind it then wait (x86 commits stores in order). So where a span is
 * about to write a line the exporter thread may have read (ring slots, records), the library asks
 * for the line for writing, on CPUs that have PREFETCHW (checked once, at tt_init). */
extern int tt__has_prefetchw;
void tt__cpu_detect(void);
static inline void tt__prefetch_w(const void *p) {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_expect(tt__has_prefetchw, 1)) {
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
    return;
  }
#endif
  __builtin_prefetch(p, 1);
}

/* ---- clocks ---- */
static inline uint64_t tt__now_unix_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t tt__now_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- ids (id.c) ---- */
typedef struct tt__rng_s {
  uint64_t state;
} tt__rng_t;
void tt__rng_seed(tt__rng_t *r);
static inline uint64_t tt__rng_next(tt__rng_t *r) {
  /* wyrand: one multiply per 64 random bits, passes BigCrush; state seeded from getrandom. */
  r->state += 0xa0761d6478bd642full;
  __uint128_t t = (__uint128_t)r->state * (r->state ^ 0xe7037ed1a0b428dbull);
  return (uint64_t)(t >> 64) ^ (uint64_t)t;
}
void tt__hex_encode(const uint8_t *in, size_t n, char *out);
int tt__hex_decode_lower(const char *in, size_t n, uint8_t *out);

/* ---- limits and configuration (config.c) ---- */
typedef struct tt__limits_s {
  uint32_t attr_count;     /* per span */
  uint32_t attr_value_len; /* UINT32_MAX: unlimited */
  uint32_t event_count;
  uint32_t link_count;
  uint32_t event_attr_count;
  uint32_t link_attr_count;
} tt__limits_t;

typedef enum tt__propagator_e { TT__PROP_TRACECONTEXT = 1, TT__PROP_BAGGAGE = 2 } tt__propagator_t;
extern _Atomic int tt__propagators; /* bit set of tt__propagator_t */
void tt__propagators_from_env(void);

/* ---- the provider (config.c), immutable after tt_init publishes it ---- */
typedef struct tt__provider_s {
  tt__limits_t limits;
  tt_sampler_kind_t sampler;
  uint64_t ratio_threshold; /* sample when the trace id's random 56 bits >= threshold */
  tt_resource_t resource;
  tt_attribute_t *resource_attrs;
  uint32_t max_queue_size, schedule_delay_ms, max_export_batch_size, export_timeout_ms;
  uint64_t memory_budget; /* bytes of span memory for all threads (TT_SPAN_MEMORY_MB) */
  tt_exporter_t exporter;
  struct tt__batch_s *batch;
  const tt_scope_t *default_scope; /* the default tracer's, cached off the hot path */
  uintptr_t tag;                   /* 1..63, differs from the previous provider's */
  int has_exporter;
  int export_disabled; /* OTEL_TRACES_EXPORTER=none: no exporter, and none is missed */
} tt__provider_t;

/* The live provider, or NULL. Spans remember the provider that started them; one ended after
 * that provider was shut down is dropped, never exported into the next one. Providers are
 * never freed (a retired list keeps them reachable) so a racing reader never touches freed
 * memory. */
extern _Atomic(tt__provider_t *) tt__provider;

/* ---- span records (span.c) ---- */
#define TT__RECORD_SIZE 4096

struct tt_span_s {
  /* The first two cache lines are all a plain span (no attributes, events, links, status or
   * tracestate, a name under TT__NAME_INLINE bytes) writes between start and end: this header,
   * the name and the first 88 bytes of data. Every other field is "extra": it keeps its default
   * (clean == 1) until a span uses it, and only then is reset by the next span that takes the
   * record. A record circulates through the exporter and comes back cold, so each line a span
   * start does not write is a cache miss saved (docs/benchmarks-agent.md). */
  tt__provider_t *provider;
  uint32_t blk_used; /* bytes used in the current block (the arena, or the last extension) */
  uint8_t recording;
  uint8_t live;  /* between start and end: guards double end */
  uint8_t clean; /* every extra field holds its default; 0 in fresh and extension records */
  uint8_t n_ext; /* extension records in use, listed in TT__EXTS(r) */
  char name_inline[24];
  tt_span_data_t data; /* exporters read records (and copy slots) through this view */
  /* Extras. */
  uint32_t *attr_prints; /* key fingerprints, parallel to attrs */
  uint64_t attr_bloom;   /* one bit per fingerprint seen: a clear bit means "key is new" */
  uint32_t attr_cap, event_cap, link_cap;
  uint8_t status_final;
  uint8_t pad_[3];
  uint64_t dropped_total; /* for stats */
  /* Allocation block: the record's own arena, then whole extension records (used raw, all
   * TT__RECORD_SIZE bytes, so one can hold a 128-attribute array) taken from the thread's free
   * list when it fills up, listed in TT__EXTS(r) and returned with the span. Meaningful only
   * while n_ext != 0 (the arena is implied otherwise), so a plain span never writes them. */
  char *blk;
  uint32_t blk_cap;
  _Alignas(16) char arena[];
};
/* Records sit 4 KB + 128 bytes apart, not 4 KB. At a 4 KB stride the same field of every record
 * falls into the same few cache sets (the set index is address bits 6-15 on this class of CPU),
 * so the L2 cache could hold that field for only ~256 records, fewer than a thread has in flight
 * between polls, and every span start missed. The extra 128 bytes walk each record two sets
 * further (and keep the 128-byte alignment the ring tags need). */
#define TT__RECORD_STRIDE (TT__RECORD_SIZE + 128)
#define TT__NAME_INLINE sizeof(((struct tt_span_s *)0)->name_inline)
/* The extension list lives in the record's last 64 bytes, not in the header: few spans need it. */
#define TT__MAX_EXT 7 /* a span uses at most 8 records (32 KB) */
#define TT__EXTS(r) ((struct tt_span_s **)((char *)(r) + TT__RECORD_SIZE - 64))
#define TT__ARENA_SIZE (TT__RECORD_SIZE - 64 - sizeof(struct tt_span_s))
_Static_assert(TT__MAX_EXT * sizeof(struct tt_span_s *) <= 64, "extension list fits the tail");
_Static_assert(sizeof(struct tt_span_s) + 64 < TT__RECORD_SIZE, "header and tail fit a record");
_Static_assert(offsetof(struct tt_span_s, data) + offsetof(tt_span_data_t, status_message) == 128,
               "what every span writes fills exactly the record's first two cache lines");
/* Extension records were used raw, so whatever ends up at their clean byte is arena data: mark
 * them before they are reused as span records. Called where a finished span's extensions are
 * released, never while the span's data may still be read. */
static inline void tt__exts_mark_unclean(struct tt_span_s *r) {
  for (uint32_t i = 0; i < r->n_ext; i++)
    TT__EXTS(r)[i]->clean = 0;
}

/* ---- thread state (thread.c) ---- */
#define TT__REFILL 32    /* records a thread takes from its ring or the pool at once */
#define TT__LOCAL_MAX 96 /* free records a thread keeps; above this a batch goes to the pool */
#define TT__FREE_CAP (TT__LOCAL_MAX + TT__REFILL)
/* One per thread that ever used spans; never freed. A thread's exit orphans its state, and a new
 * thread adopts an orphan before creating another, so thread churn does not grow memory.
 *
 * The ring is both the queue and the way records come back. Four positions run along it:
 *   taken <= done <= tail <= head,   head - taken <= ring size.
 * [tail, head) is queued (the owner pushes at head); [done, tail) is in the exporter thread's
 * batch; [taken, done) is exported, and those records are free for the owner to take again. So
 * the exporter gives a whole batch back by storing one position, and a record keeps living in the
 * cache of the core that ends its spans. The ring has room for twice the queue, so exported
 * records wait there while the queue fills. The owner takes from [taken, done) when it needs
 * records; the exporter thread takes what an idle or exited owner does not (both by
 * compare-and-swap on taken) and puts it in the shared pool. */
typedef struct tt__tstate_s {
  /* Cache-line layout is the point of this struct. The exporter thread must not read a line the
   * owner writes on every span (it would steal the line once per record it drains), so what the
   * exporter reads is either set once (the first line) or written once per batch by one side. */
  /* Set once, read by both: the registry link, the ring and the exporter's reclaim gate. */
  _Alignas(64) struct tt__tstate_s *_Atomic next_all; /* registry, append-only */
  _Atomic uintptr_t *ring; /* record pointer | provider tag bits. Slots are atomic: the exporter
                              may read one as the owner rewrites it (its take then fails and the
                              value is discarded) */
  uint64_t ring_mask;
  /* Copies of plain spans (see tt__cslot): copies_n slots, a power of two, or none. */
  struct tt_span_s *copies;
  uint64_t copies_n;
  void *copies_raw;  /* the allocation behind copies, kept reachable */
  _Atomic int owned; /* mirrors in_use for the exporter thread's reclaim decision */
  /* Owner's hot line: ring head (the exporter reads it once per drain), free list, current. */
  _Alignas(64) _Atomic uint64_t head;
  uint64_t tail_cache;  /* producer's last view of tail */
  uint64_t taken_cache; /* and of taken (never ahead of it) */
  uint32_t free_count;  /* records in free_arr */
  /* Lines tt__record_take prefetches: 0 after a non-recording span, 2 after a plain one, 6 after
   * one that used extras (its attribute array starts on the fifth line). */
  uint32_t last_recording;
  uint32_t since_wake; /* spans queued since this thread last woke the exporter */
  const struct tt__provider_s *wake_provider; /* the provider since_wake counts for */
  tt_span_t *current;
  tt__rng_t rng;
  uint64_t fork_gen;
  uint64_t done_cache;   /* owner's last view of done: copy slots below it are free */
  uint64_t copies_ready; /* copy slots [0, copies_ready) hold the defaults (copy_plain, span.c) */
  int in_use;            /* under the registry mutex */
  /* Free records, a stack. An array rather than a list threaded through the records: taking one
   * then reads no record (they are often cold when they come back from the exporter), and the
   * span start can prefetch the records it will take next. */
  struct tt_span_s *free_arr[TT__FREE_CAP];
  /* Counters written only by the owner (relaxed atomics compile to plain adds) and read by
   * tt_stats_get. */
  _Atomic uint64_t c_started, c_unsampled, c_ended, c_queue_full, c_no_record, c_shutdown,
      c_dropped_attrs;
  /* Written by the exporter thread, once per batch each: drained up to tail, exported up to
   * done. The owner reads tail when its queue looks full and done when it takes records. */
  _Alignas(64) _Atomic uint64_t tail;
  _Atomic uint64_t done;
  /* Exporter thread only: taken at its last drain. An owner that has not moved taken since does
   * not reuse what it ends (it ends spans started elsewhere, or it went idle), so the exporter
   * takes all but TT__RET_MAX of it for everyone else (idle), at the drain and once the batch
   * holding its records has gone out. */
  uint64_t taken_seen;
  int idle;
  /* Moved by the owner once per TT__REFILL records it takes, or by the exporter reclaiming. */
  _Alignas(64) _Atomic uint64_t taken;
} tt__tstate_t;

extern __thread tt__tstate_t *tt__tls __attribute__((tls_model("initial-exec")));
tt__tstate_t *tt__tstate_slow(void);
static inline tt__tstate_t *tt__tstate(void) {
  tt__tstate_t *t = tt__tls;
  return t != NULL ? t : tt__tstate_slow();
}
static inline void tt__count(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
tt__tstate_t *tt__tstate_first(void);
struct tt_span_s *tt__record_refill(tt__tstate_t *t); /* slow path of allocation */
/* Takes a free record for a new span (NULL: none left, counted by the caller). When this thread's
 * last span was recording it also prefetches the header of the record the span after next will
 * take, so that record's cache misses (records come back from the exporter cold) overlap this
 * span's work. Not after a non-recording span: those reuse one record while the others may sit
 * on pages never touched, and a prefetch there costs a page walk every time (~40 ns here). */
static inline struct tt_span_s *tt__record_take(tt__tstate_t *t) {
  uint32_t n = t->free_count;
  if (__builtin_expect(n == 0, 0))
    return tt__record_refill(t);
  t->free_count = n - 1;
  if (n >= 3 && t->last_recording) {
    const char *ahead = (const char *)t->free_arr[n - 3];
    tt__prefetch_w(ahead); /* the two lines a plain span writes */
    tt__prefetch_w(ahead + 64);
    if (t->last_recording > 2) /* and those a span with attributes writes next */
      for (int i = 2; i < 6; i++)
        tt__prefetch_w(ahead + 64 * i);
  }
  return t->free_arr[n - 1];
}
void tt__record_release_local(tt__tstate_t *t, struct tt_span_s *r);
/* Releases r and its extension records to t's free list. */
void tt__record_release_chain(tt__tstate_t *t, struct tt_span_s *r);
#define TT__RET_MAX 256 /* exported records an idle thread may hold back from others */
/* Moves exported records of t beyond keep from its ring to the shared pool: from the exporter
 * thread when t did not take any since the last drain (keep TT__RET_MAX for a live thread, 0 for
 * an exited one), and from t itself as it exits (keep 0). */
uint64_t tt__ring_reclaim(tt__tstate_t *t, uint64_t keep); /* returns how many it took */
/* The owner's push found every slot of its ring in use (queued, in the batch, or exported and
 * not taken back): takes exported records back into its free list. Returns 0 when a slot is
 * free now, -1 when none could be freed. */
int tt__ring_make_room(tt__tstate_t *t);
/* A ring holding this many of its limit means the polling exporter thread is late: the thread
 * that fills it signals it regardless, and the exporter shortens its poll interval. */
/* The largest queue a provider takes (per thread: each ring holds twice it). The specification sets
 * no bound, but a ring is allocated whole when its thread first ends a span: 2^20 is a 16 MB ring
 * (and 4 MB of copy slots), while an unchecked OTEL_BSP_MAX_QUEUE_SIZE=4294967295 asked for 64 GB,
 * the allocation failed and every span was dropped. */
#define TT__QUEUE_MAX (1u << 20)
#define TT__SPAN_MEMORY_MB_MAX (1u << 16) /* 64 GB */
#define TT__RING_LATE(limit) ((limit) - (limit) / 4)
/* The queue limit of a ring: the provider's queue size, at most half the ring (the rest holds
 * exported records until their owner takes them back). */
static inline uint64_t tt__ring_limit(const tt__tstate_t *t, uint64_t max_queue_size) {
  uint64_t half = (t->ring_mask + 1) / 2;
  return max_queue_size < half ? max_queue_size : half;
}
/* The process-wide span memory budget, in bytes (TT_SPAN_MEMORY_MB; docs/agent.md, "Memory"):
 * records, rings and copy slots of every thread together. Set by tt_init; a lower budget stops
 * growth, memory already taken stays (records are never freed). */
void tt__memory_set_budget(uint64_t bytes);
uint64_t tt__memory_default_budget(uint32_t queue_size);
/* The budget, what rings and copy slots reserved of it, and the records allocated. */
void tt__memory_get(uint64_t *budget, uint64_t *reserved, uint64_t *records);
/* Free records a thread keeps (its share of the pool: TT__LOCAL_MAX for one thread, down to
 * TT__HOLD_MIN as threads multiply), and the exported records an idle one may hold back. */
#define TT__HOLD_MIN 8
#define TT__RING_FLOOR 1024 /* slots: the smallest ring a thread gets, whatever the budget */
typedef struct tt__hold_s {
  _Alignas(64) _Atomic uint32_t max; /* the struct fills its cache line: no false sharing */
} tt__hold_t;
extern tt__hold_t tt__hold;
static inline uint64_t tt__ret_max(void) {
  uint32_t h = atomic_load_explicit(&tt__hold.max, memory_order_relaxed);
  return h >= TT__LOCAL_MAX ? TT__RET_MAX : 2 * (uint64_t)h;
}
int tt__ring_ensure(tt__tstate_t *t, uint32_t queue_size);
/* Ring slots carry the ending provider's tag beside the 128-byte-aligned record pointer, so the
 * exporter can reject a span of an earlier provider without touching the record. */
#define TT__TAG_MASK ((uintptr_t)127) /* records are 128-byte aligned */
#define TT__TAG_PROVIDER ((uintptr_t)63)
#define TT__TAG_HAS_EXT ((uintptr_t)64) /* extension records: who takes it back reads the list */
static inline struct tt_span_s *tt__ring_record(uintptr_t v) {
  return (struct tt_span_s *)(v & ~TT__TAG_MASK);
}
/* A plain span (nothing in its arena, no extras: the two header lines are all of it) is not
 * queued as its record. Its two lines are copied into a slot of the thread's copy array, and the
 * record goes straight back to the free list, where the next span start finds it still in this
 * core's cache. Records that circulate through the queue come back cold a queue later; with two
 * threads that cost more than the copy (docs/benchmarks-agent.md, session 8).
 *
 * The ring slot of a copied span holds only the provider tag (a null record pointer); ring
 * position h uses copy slot h modulo TT__COPIES(t). A copy slot is laid out as the
 * first TT__COPY_SIZE bytes of a record, so its data view is where a record's would be; the
 * lines past the first two hold the defaults of a plain span's other fields, written once, when
 * the thread first reaches the slot, and never again. A slot is free again once done has passed
 * its position: when it has not (a long export), the span is queued as its record instead. */
#define TT__COPY_SIZE 256
#define TT__COPY_HOT 128 /* what a plain span writes: the record's first two cache lines */
_Static_assert(offsetof(struct tt_span_s, data) + sizeof(tt_span_data_t) <= TT__COPY_SIZE,
               "a copy slot holds the header and the whole data view");
/* Half the ring (so the queue's whole limit fits), at most TT__COPIES_MAX: 4 MB of copies per
 * thread at most, 512 KB at the default queue of 2048. Past that a deep queue's older spans go
 * as their records. */
#define TT__COPIES_MAX (1u << 14)
#define TT__COPIES(t) ((t)->copies_n)
static inline int tt__ring_is_copy(uintptr_t v) {
  return (v & ~TT__TAG_MASK) == 0;
}
static inline struct tt_span_s *tt__cslot(const tt__tstate_t *t, uint64_t pos) {
  return (struct tt_span_s *)((char *)t->copies + (pos & (TT__COPIES(t) - 1)) * TT__COPY_SIZE);
}
extern _Atomic uint64_t tt__fork_gen;
void tt__thread_atfork_install(void);

/* ---- sampler (sampler.c) ---- */
/* parent_ts: the parent's tracestate ("" or NULL when none); its ot=rv value, if any, is the
 * ratio sampler's randomness (consistent_sampling.h). *ts is set to the tracestate the span
 * carries: parent_ts, or ts_buf when the ratio samplers wrote or erased the ot member's th. */
int tt__sample(const tt__provider_t *p, const tt_span_context_t *parent, int has_parent,
               const uint8_t trace_id[16], const char *parent_ts,
               char ts_buf[TT_TRACESTATE_MAX_LEN + 1], const char **ts);
int tt__sampler_from_env(tt_sampler_kind_t *kind, double *ratio);

/* ---- resource (resource.c) ---- */
int tt__resource_build(tt__provider_t *p, const tt_options_t *o);
void tt__resource_free(tt__provider_t *p);
void tt__resource_set_pid(tt__provider_t *p, int64_t pid);
/* Parses OTEL_RESOURCE_ATTRIBUTES syntax; calls cb for each decoded pair only when the whole
 * value is well-formed. Returns the pair count or TT_EPARSE. Pure; used by the fuzzer. */
int tt__resource_attrs_parse(const char *s, size_t len,
                             void (*cb)(void *arg, const char *key, const char *value), void *arg);

/* ---- batch processor (batch.c) ---- */
struct tt__batch_s;
int tt__batch_start(tt__provider_t *p);
void tt__batch_wake(tt__provider_t *p, int urgent);
void tt__batch_ensure_thread(tt__provider_t *p);
int tt__batch_flush(tt__provider_t *p, uint64_t deadline_ns);
int tt__batch_shutdown(tt__provider_t *p, uint64_t deadline_ns);
void tt__batch_atfork_prepare(tt__provider_t *p);
void tt__batch_atfork_parent(tt__provider_t *p);
void tt__batch_atfork_child(tt__provider_t *p);
extern _Atomic uint64_t tt__stat_exported, tt__stat_export_failed, tt__stat_export_calls;
/* Queue-full drops are told as they start, at once, by the application thread that drops (one
 * line, then disarmed), and counted by the exporter thread, which sums them at most once per
 * tt__drop_report_ns (10 s; tests lower it) and re-arms the first warning after an interval
 * without drops. */
extern _Atomic int tt__queue_full_armed;
extern _Atomic uint64_t tt__drop_report_ns;
void tt__queue_full_first(const tt__provider_t *p);
/* The same for a span start that found no record: span memory is at its budget. */
void tt__no_record_first(const tt__provider_t *p);
/* Non-zero when the exporter thread needs starting (after fork): checked on span end. */
extern _Atomic int tt__batch_needs_thread;
/* Exporter threads still running. The rings are single-consumer, so a new provider may only
 * start once the previous provider's thread (left running by a timed-out shutdown) is gone. */
extern _Atomic int tt__exporter_threads_alive;

/* ---- scopes (tracer.c) ---- */
struct tt_tracer_s {
  tt_scope_t scope;
  char name[128];
  char version[64];
};
tt_tracer_t *tt__default_tracer(void);

/* ---- exporters chosen by name (config.c) ----
 * The OTLP one (exporter_otlp.c) fills *out from the OTEL_EXPORTER_OTLP_* environment and
 * returns 0, or a TT_E* code. A strong reference on purpose: a weak one never pulls
 * exporter_otlp.o out of libtailtrace.a, so a static link silently had no OTLP exporter. */
int tt__exporter_otlp_from_env(tt_exporter_t *out);
int tt__exporter_console(tt_exporter_t *out);

#endif /* TT_INTERNAL_H */
