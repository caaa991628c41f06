/* Batch span processor: the one exporter thread. It drains every thread's ring, groups records
 * into batches of at most max_export_batch_size, calls the exporter (never two calls at once),
 * retries within the export timeout, and returns records to the pool.
 *
 * Ownership: the fields under "mu" are shared with application threads (flush requests, stop,
 * wake-ups); pending/views belong to the exporter thread alone. The exporter thread never holds
 * mu while it calls the exporter, so neither fork nor a flusher waits behind an export. */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The exporter thread bumps these per export call; every span end reads tt__batch_needs_thread,
 * so the two groups get lines of their own. */
_Alignas(64) _Atomic uint64_t tt__stat_exported;
_Alignas(64) _Atomic uint64_t tt__stat_export_failed;
_Alignas(64) _Atomic uint64_t tt__stat_export_calls;
_Alignas(64) _Atomic int tt__batch_needs_thread;
_Atomic int tt__exporter_threads_alive;
_Atomic int tt__queue_full_armed = 1;
_Atomic uint64_t tt__drop_report_ns = 10000000000ull;

struct tt__batch_s {
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* exporter thread waits here */
  pthread_cond_t done_cv; /* flushers and shutdown wait here */
  pthread_t thread;
  int running, stop, exited, wake;
  uint64_t flush_req, flush_done;
  uint64_t stop_deadline;
  /* Shutdown past its deadline: in_export says the exporter thread is inside export_spans;
   * abandon (set by the shutdown caller at the deadline) stops any further export call;
   * cancelling is set while the caller runs the exporter's cancel outside the lock, and holds
   * the exporter's shutdown (which frees its state) back until cancel has returned. */
  int in_export, abandon, cancelling;
  _Atomic int wake_pending;
  tt__provider_t *p;
  /* Exporter thread only. The batch being gathered is views[0..npending), the records' own
   * exporter-visible part, handed to the exporter as is. A batch is kept as runs of records from
   * one thread's ring: once it is exported, each run gives its records back by moving that ring's
   * done position to the run's end (the records never leave the ring). Per record the drain only
   * reads the ring slot and stores the view. */
  const tt_span_data_t **views;
  struct tt__run_s *runs;
  uint32_t npending, nruns, max_runs;
  /* Failed exports not yet reported, and when the last report went out (0: never). */
  uint64_t unreported_spans, unreported_batches, last_report_ns;
  /* Queue-full drops: the total last reported and when the last check ran. */
  uint64_t queue_full_seen, queue_full_check_ns;
};

/* Records of the batch from src's ring, whose positions up to end it covers. A run may hold no
 * view at all (its records were an earlier provider's) and still covers them. */
struct tt__run_s {
  tt__tstate_t *src;
  uint64_t end;
};

static void init_sync(struct tt__batch_s *b) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, &ca);
  pthread_cond_init(&b->done_cv, &ca);
  pthread_condattr_destroy(&ca);
}

static struct timespec abs_ts(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  return ts;
}

static void sleep_until(uint64_t until) {
  struct timespec ts = abs_ts(until);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* What the exporter takes itself is not the owner's doing: taken_seen moves with it. */
static void reclaim(tt__tstate_t *t) {
  t->taken_seen += tt__ring_reclaim(
      t, atomic_load_explicit(&t->owned, memory_order_relaxed) ? tt__ret_max() : 0);
}

/* Gives the batch's records back: each run moves its ring's done to its end. A ring's runs are in
 * ring order, so its last run's store is the one that counts. */
static void complete_runs(struct tt__batch_s *b) {
  for (uint32_t k = 0; k < b->nruns; k++) {
    tt__tstate_t *t = b->runs[k].src;
    atomic_store_explicit(&t->done, b->runs[k].end, memory_order_release);
    if (t->idle)
      reclaim(t);
  }
  b->nruns = 0;
}

/* Warnings are on by default, and a backend that is down fails every batch: the first failure is
 * reported at once, later ones at most every 10 s as one line with their sum. */
#define TT__FAIL_REPORT_NS 10000000000ull
static void report_failure(struct tt__batch_s *b, uint32_t n, const char *why) {
  b->unreported_spans += n;
  b->unreported_batches++;
  uint64_t now = tt__now_mono_ns();
  if (b->last_report_ns != 0 && now - b->last_report_ns < TT__FAIL_REPORT_NS)
    return;
  TT_LOG(TT_LOG_WARN, "export failed%s: %llu spans in %llu batches dropped", why,
         (unsigned long long)b->unreported_spans, (unsigned long long)b->unreported_batches);
  b->unreported_spans = 0;
  b->unreported_batches = 0;
  b->last_report_ns = now;
}

void tt__queue_full_first(const tt__provider_t *p) {
  if (atomic_exchange_explicit(&tt__queue_full_armed, 0, memory_order_relaxed))
    TT_LOG(TT_LOG_WARN,
           "a thread's span queue is full (OTEL_BSP_MAX_QUEUE_SIZE=%u spans a thread): spans are "
           "being dropped (tt_stats_t.dropped_queue_full); a count follows at most every %llu s",
           p->max_queue_size,
           (unsigned long long)(atomic_load(&tt__drop_report_ns) / 1000000000ull));
}

void tt__no_record_first(const tt__provider_t *p) {
  if (atomic_exchange_explicit(&tt__queue_full_armed, 0, memory_order_relaxed))
    TT_LOG(TT_LOG_WARN,
           "span memory is at its limit (TT_SPAN_MEMORY_MB: %llu MB for all threads): spans are "
           "being dropped (tt_stats_t.dropped_no_record); a count follows at most every %llu s",
           (unsigned long long)(p->memory_budget >> 20),
           (unsigned long long)(atomic_load(&tt__drop_report_ns) / 1000000000ull));
}

/* Both ways a finished span can be turned away for want of room: a full queue, no record. */
static uint64_t queue_full_total(void) {
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  return st.dropped_queue_full + st.dropped_no_record;
}

/* Exporter thread: at most once per tt__drop_report_ns (and once more at shutdown), the spans
 * dropped on full queues since the last report, in one line. An interval without drops re-arms
 * the at-once warning, so the start of the next episode is told when it happens. */
static void report_queue_full(struct tt__batch_s *b, int final) {
  uint64_t now = tt__now_mono_ns();
  uint64_t since = now - b->queue_full_check_ns;
  if (!final && since < atomic_load_explicit(&tt__drop_report_ns, memory_order_relaxed))
    return;
  uint64_t total = queue_full_total(), n = total - b->queue_full_seen;
  b->queue_full_check_ns = now;
  if (n == 0) {
    if (!final)
      atomic_store_explicit(&tt__queue_full_armed, 1, memory_order_relaxed);
    return;
  }
  b->queue_full_seen = total;
  TT_LOG(TT_LOG_WARN,
         "%llu spans dropped in the last %.1f s because a thread's span queue was full "
         "(OTEL_BSP_MAX_QUEUE_SIZE=%u spans a thread) or span memory was at its limit "
         "(TT_SPAN_MEMORY_MB: %llu MB); %llu in all",
         (unsigned long long)n, (double)since / 1e9, b->p->max_queue_size,
         (unsigned long long)(b->p->memory_budget >> 20), (unsigned long long)total);
}

static void export_pending(struct tt__batch_s *b, uint64_t hard_deadline) {
  tt__provider_t *p = b->p;
  uint32_t n = b->npending;
  if (n == 0) {
    complete_runs(b);
    return;
  }
  uint64_t now = tt__now_mono_ns();
  uint64_t deadline = now + (uint64_t)p->export_timeout_ms * 1000000u;
  if (hard_deadline != 0 && hard_deadline < deadline)
    deadline = hard_deadline;
  uint64_t backoff = 100000000u; /* 100 ms, doubling: gives a struggling backend room */
  if (!p->has_exporter || p->exporter.export_spans == NULL) {
    if (!p->export_disabled) /* no exporter although one was asked for: a failure, warned at init */
      atomic_fetch_add(&tt__stat_export_failed, n);
  } else {
    for (;;) {
      uint64_t retry_after = 0;
      pthread_mutex_lock(&b->mu);
      int abandoned = b->abandon;
      b->in_export = !abandoned;
      pthread_mutex_unlock(&b->mu);
      if (abandoned) {
        /* Shutdown's deadline has passed: the batch is dropped without another export call. */
        atomic_fetch_add(&tt__stat_export_failed, n);
        break;
      }
      atomic_fetch_add(&tt__stat_export_calls, 1);
      tt_export_result_t res =
          p->exporter.export_spans(p->exporter.state, b->views, n, deadline, &retry_after);
      pthread_mutex_lock(&b->mu);
      b->in_export = 0;
      pthread_mutex_unlock(&b->mu);
      if (res == TT_EXPORT_SUCCESS) {
        atomic_fetch_add(&tt__stat_exported, n);
        break;
      }
      now = tt__now_mono_ns();
      uint64_t delay = retry_after != 0 ? retry_after : backoff;
      if (res != TT_EXPORT_RETRYABLE || now + delay >= deadline) {
        report_failure(b, n, res == TT_EXPORT_RETRYABLE ? " past its deadline" : "");
        atomic_fetch_add(&tt__stat_export_failed, n);
        break;
      }
      sleep_until(now + delay);
      if (backoff < 5000000000u)
        backoff *= 2;
    }
  }
  b->npending = 0;
  complete_runs(b);
}

/* Starts a run for records from t's ring (from position pos) unless the last run is t's already.
 * Runs are at most one per view plus one per ring visit; when the array is full the batch goes
 * out first, so a burst of runs holding no view cannot overflow it. */
static inline void run_open(struct tt__batch_s *b, tt__tstate_t *t, uint64_t pos,
                            uint64_t hard_deadline) {
  if (b->nruns != 0 && b->runs[b->nruns - 1].src == t)
    return;
  if (b->nruns == b->max_runs)
    export_pending(b, hard_deadline);
  b->runs[b->nruns].src = t;
  b->runs[b->nruns].end = pos;
  b->nruns++;
}

/* Moves queued records into the batch, exporting each full batch. Only records queued before the
 * call are taken (head is sampled once per ring) so a flush ends even under constant load.
 * Returns how many records it took; *max_ring is the most any one ring held. */
static uint32_t drain(struct tt__batch_s *b, int export_partial, uint64_t hard_deadline,
                      uint32_t *max_ring) {
  tt__provider_t *p = b->p;
  uint32_t found = 0;
  for (tt__tstate_t *t = tt__tstate_first(); t != NULL;
       t = atomic_load_explicit(&t->next_all, memory_order_acquire)) {
    uint64_t h = atomic_load_explicit(&t->head, memory_order_acquire);
    uint64_t tl = atomic_load_explicit(&t->tail, memory_order_relaxed);
    if (h == 0)
      continue; /* no ring yet (the acquire load of a non-zero head orders its set-up before us) */
    /* An owner that took nothing back since the last drain does not reuse what it ends (it ends
     * spans started elsewhere, or went idle): exported records beyond what an idle thread may
     * keep (nothing, once it has exited) go back to everyone. */
    uint64_t tk = atomic_load_explicit(&t->taken, memory_order_relaxed);
    t->idle = tk == t->taken_seen || !atomic_load_explicit(&t->owned, memory_order_relaxed);
    t->taken_seen = tk;
    if (t->idle)
      reclaim(t);
    if (h == tl)
      continue;
    const _Atomic uintptr_t *ring = t->ring; /* set before the head store we saw */
    uint64_t mask = t->ring_mask;
    if (h - tl > *max_ring)
      *max_ring = (uint32_t)(h - tl);
    found += (uint32_t)(h - tl);
    /* A batch goes out once full, or once it holds as many as this ring's queue limit: a ring
     * sized for an earlier provider's smaller queue may never hold a whole batch. */
    uint64_t limit = tt__ring_limit(t, p->max_queue_size);
    uint32_t full = limit < p->max_export_batch_size ? (uint32_t)limit : p->max_export_batch_size;
    run_open(b, t, tl, hard_deadline);
    while (tl != h) {
      uintptr_t v = atomic_load_explicit(&ring[tl & mask], memory_order_relaxed);
      uint64_t pos = tl++;
      /* The exporter thread never reads the record itself: a read would pull the line away from
       * the core that reuses it. The slot's tag says whose span it is. */
      if (__builtin_expect((v & TT__TAG_PROVIDER) != p->tag, 0))
        continue; /* ended just as an earlier provider shut down: never export it into this one */
      b->views[b->npending++] =
          tt__ring_is_copy(v) ? &tt__cslot(t, pos)->data : &tt__ring_record(v)->data;
      if (b->npending >= full) {
        /* Free the ring slots before a possibly long export; one store per batch, not per
         * record, keeps the producer's view of tail from bouncing. */
        atomic_store_explicit(&t->tail, tl, memory_order_release);
        b->runs[b->nruns - 1].end = tl;
        export_pending(b, hard_deadline);
        run_open(b, t, tl, hard_deadline);
      }
    }
    atomic_store_explicit(&t->tail, tl, memory_order_release);
    b->runs[b->nruns - 1].end = tl;
  }
  if (export_partial)
    export_pending(b, hard_deadline);
  return found;
}

/* How the exporter thread waits. Asleep, it blocks on the condition variable until the schedule
 * delay passes or an application thread wakes it (each thread does so once per full batch it
 * queued). Under sustained load those wake-ups put a futex call, a cross-core interrupt and a
 * context switch on the application's thread every batch, which cost more than the spans
 * themselves. So after a drain that found a quarter batch or more the thread polls instead: it
 * keeps wake_pending set, which tells application threads not to wake it, and sleeps on its own
 * timer (poll_interval). A drain that finds little sends it back to sleep. */
#define TT__POLL_MIN_NS 50000u /* 50 us: the shortest poll interval, at any rate */

/* The next poll interval from the last one (prev, 0 when the thread was asleep), the fullest
 * ring's count and the time it took to arrive. Each poll is a wake-up, and when every core is
 * busy a wake-up costs the machine far more than the drain: ~55 core-microseconds on a 2-vCPU
 * Firecracker guest (bench_machine_wake), most of it outside the guest's own CPU accounting. So
 * the aim is the longest interval that stays clear of drops: the fullest ring filling to half the
 * queue, with the other half for a late wake-up. Against a quarter, that halves the wake-ups and
 * raised the 2-thread figure by ~5 % with no more drops; three quarters dropped more
 * (docs/benchmarks-agent.md). A ring past TT__RING_LATE means the estimate failed (a full ring
 * also hides how many spans it turned away), so the interval halves. Growth is at most 2x a
 * step, so one quiet interval does not open a long gap. */
static uint64_t poll_interval(const tt__provider_t *p, uint64_t prev, uint32_t max_ring,
                              uint64_t elapsed) {
  uint64_t cap = (uint64_t)p->schedule_delay_ms * 1000000u;
  uint64_t aim = p->max_queue_size / 2;
  if (elapsed > cap)
    elapsed = cap; /* after a long export: keeps the product below from overflowing */
  uint64_t t;
  if (prev == 0) {
    t = TT__POLL_MIN_NS; /* just woken: the rate is unknown, start short */
  } else if (max_ring >= TT__RING_LATE(p->max_queue_size)) {
    t = prev / 2;
  } else {
    t = elapsed * aim / (max_ring != 0 ? max_ring : 1);
    if (t > 2 * prev)
      t = 2 * prev;
  }
  if (t > cap)
    t = cap;
  return t < TT__POLL_MIN_NS ? TT__POLL_MIN_NS : t;
}

/* On a machine whose cores are all busy with application threads, a woken exporter thread waits
 * for a running thread's time slice to end (0.75 ms and more under EEVDF, Linux 6.6+), and a
 * thread producing 10 M spans/s fills half of a 16k queue in that time. Linux 6.12+ lets a
 * normal thread ask for a shorter slice (sched_attr.sched_runtime), which gives it an earlier
 * deadline when it wakes: the scheduler then runs it promptly. It needs no privilege and only
 * affects this thread's slice (policy, nice and flags are read first and kept); older kernels
 * ignore or refuse it. */
struct tt__sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

static void request_short_slice(void) {
#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
  /* Only a thread under the normal policy (it inherits its creator's): a SCHED_BATCH, SCHED_IDLE
   * or real-time exporter thread is left as the application made it. */
  struct tt__sched_attr a = {.size = sizeof a};
  if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0u) != 0 || a.sched_policy != 0)
    return;
  a.size = sizeof a;
  a.sched_runtime = 100000; /* 100 us, the shortest slice Linux accepts */
  (void)syscall(SYS_sched_setattr, 0, &a, 0u);
#endif
}

static void *batch_main(void *arg) {
  struct tt__batch_s *b = arg;
  tt__provider_t *p = b->p;
  /* Linux rounds this thread's timed waits up by its timer slack (50 us by default), which
   * would double the shortest poll interval; 10 us keeps polls near their aim. */
  prctl(PR_SET_TIMERSLACK, 10000ul, 0ul, 0ul, 0ul);
  request_short_slice();
  pthread_mutex_lock(&b->mu);
  uint64_t last = tt__now_mono_ns();
  uint64_t next = last + (uint64_t)p->schedule_delay_ms * 1000000u;
  uint64_t poll_ns = 0; /* 0: asleep until woken or the schedule; else the poll interval */
  int rescan = 0;
  for (;;) {
    uint64_t until = poll_ns != 0 && last + poll_ns < next ? last + poll_ns : next;
    while (!rescan && !b->stop && b->flush_req == b->flush_done && !b->wake) {
      struct timespec ts = abs_ts(until);
      if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT)
        break;
    }
    rescan = 0;
    uint64_t want = b->flush_req;
    int stopping = b->stop;
    uint64_t hard = stopping ? b->stop_deadline : 0;
    b->wake = 0;
    atomic_store(&b->wake_pending, poll_ns != 0);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with tt__batch_wake's */
    pthread_mutex_unlock(&b->mu);

    uint64_t now = tt__now_mono_ns();
    int all = now >= next || stopping || want != b->flush_done;
    uint32_t max_ring = 0;
    uint32_t found = drain(b, all, hard, &max_ring);
    report_queue_full(b, stopping);
    if (all)
      next = tt__now_mono_ns() + (uint64_t)p->schedule_delay_ms * 1000000u;
    if (want != b->flush_done && p->has_exporter && p->exporter.force_flush != NULL)
      p->exporter.force_flush(p->exporter.state,
                              tt__now_mono_ns() + (uint64_t)p->export_timeout_ms * 1000000u);
    uint64_t was_polling = poll_ns;
    poll_ns = found >= p->max_export_batch_size / 4 && found != 0
                  ? poll_interval(p, poll_ns, max_ring, now - last)
                  : 0;
    /* Going back to sleep: wake_pending was set during that drain, so a thread that filled a
     * batch meanwhile did not wake us. Clear it and drain once more before blocking. */
    rescan = was_polling && poll_ns == 0;
    last = now;

    pthread_mutex_lock(&b->mu);
    b->flush_done = want;
    pthread_cond_broadcast(&b->done_cv);
    if (stopping)
      break;
  }
  uint64_t deadline = b->stop_deadline;
  while (b->cancelling) /* cancel may still be using the exporter's state */
    pthread_cond_wait(&b->cv, &b->mu);
  pthread_mutex_unlock(&b->mu);
  if (p->has_exporter && p->exporter.shutdown != NULL)
    p->exporter.shutdown(p->exporter.state, deadline);
  pthread_mutex_lock(&b->mu);
  b->exited = 1;
  pthread_cond_broadcast(&b->done_cv);
  pthread_mutex_unlock(&b->mu);
  atomic_fetch_sub(&tt__exporter_threads_alive, 1);
  return NULL;
}

/* Starts the thread; mu held. */
static int start_locked(struct tt__batch_s *b) {
  if (b->running || b->exited)
    return 0;
  pthread_attr_t a;
  pthread_attr_init(&a);
  int rc = pthread_create(&b->thread, &a, batch_main, b);
  pthread_attr_destroy(&a);
  if (rc != 0) {
    TT_LOG(TT_LOG_ERROR, "cannot start the exporter thread (%d)", rc);
    return TT_ENOMEM;
  }
  b->running = 1;
  atomic_fetch_add(&tt__exporter_threads_alive, 1);
  return 0;
}

int tt__batch_start(tt__provider_t *p) {
  struct tt__batch_s *b = tt__calloc(1, sizeof *b);
  if (b == NULL)
    return TT_ENOMEM;
  b->p = p;
  b->queue_full_seen = queue_full_total(); /* counters run across providers */
  b->queue_full_check_ns = tt__now_mono_ns();
  atomic_store_explicit(&tt__queue_full_armed, 1, memory_order_relaxed); /* a new provider */
  b->views = tt__calloc(p->max_export_batch_size, sizeof *b->views);
  b->max_runs = p->max_export_batch_size + 64;
  b->runs = tt__calloc(b->max_runs, sizeof *b->runs);
  if (b->views == NULL || b->runs == NULL) {
    tt__free(b->runs);
    tt__free(b->views);
    tt__free(b);
    return TT_ENOMEM;
  }
  init_sync(b);
  p->batch = b;
  pthread_mutex_lock(&b->mu);
  int rc = start_locked(b);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

void tt__batch_wake(tt__provider_t *p, int urgent) {
  struct tt__batch_s *b = p->batch;
  /* A plain load first: while the exporter thread polls the flag stays set, and an exchange
   * would take the line exclusive on every call. An urgent wake (a ring past TT__RING_LATE: the
   * polling thread has not been scheduled in time) signals regardless. The fence pairs with the
   * one after the exporter clears wake_pending: either we see the flag cleared, or its next
   * drain sees the head we just stored (a store-buffering pattern: two plain accesses could
   * miss both, and a full batch would wait for the schedule delay). */
  atomic_thread_fence(memory_order_seq_cst);
  if (!urgent && (atomic_load_explicit(&b->wake_pending, memory_order_relaxed) ||
                  atomic_exchange(&b->wake_pending, 1)))
    return;
  pthread_mutex_lock(&b->mu);
  b->wake = 1;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

void tt__batch_ensure_thread(tt__provider_t *p) {
  struct tt__batch_s *b = p->batch;
  pthread_mutex_lock(&b->mu);
  if (!b->stop)
    start_locked(b);
  atomic_store(&tt__batch_needs_thread, 0);
  pthread_mutex_unlock(&b->mu);
}

int tt__batch_flush(tt__provider_t *p, uint64_t deadline) {
  struct tt__batch_s *b = p->batch;
  pthread_mutex_lock(&b->mu);
  if (!b->stop)
    start_locked(b);
  if (!b->running) {
    pthread_mutex_unlock(&b->mu);
    return TT_ENOTINIT;
  }
  uint64_t mine = ++b->flush_req;
  pthread_cond_signal(&b->cv);
  int rc = 0;
  struct timespec ts = abs_ts(deadline);
  while (b->flush_done < mine && !b->exited) {
    if (pthread_cond_timedwait(&b->done_cv, &b->mu, &ts) == ETIMEDOUT) {
      rc = b->flush_done < mine ? TT_ETIMEDOUT : 0;
      break;
    }
  }
  pthread_mutex_unlock(&b->mu);
  return rc;
}

int tt__batch_shutdown(tt__provider_t *p, uint64_t deadline) {
  struct tt__batch_s *b = p->batch;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  b->stop_deadline = deadline;
  if (!b->running) {
    /* Never started (or not restarted after fork): start it to drain and shut down, so the
     * exporter is still only ever called from the exporter thread. */
    b->stop = 0;
    int rc = start_locked(b);
    b->stop = 1;
    if (rc != 0) {
      pthread_mutex_unlock(&b->mu);
      return rc;
    }
  }
  pthread_cond_signal(&b->cv);
  struct timespec ts = abs_ts(deadline);
  int rc = 0;
  while (!b->exited) {
    if (pthread_cond_timedwait(&b->done_cv, &b->mu, &ts) == ETIMEDOUT && !b->exited) {
      rc = TT_ETIMEDOUT;
      break;
    }
  }
  if (rc == TT_ETIMEDOUT) {
    /* The deadline passed with the exporter thread still busy. No further export starts, and an
     * export in flight is interrupted through the exporter's cancel hook, so the thread finishes
     * promptly instead of at the export timeout (a hung collector would otherwise hold it, and
     * tt_init's TT_EBUSY, for as long as OTEL_BSP_EXPORT_TIMEOUT). cancel runs here, on the
     * caller's thread, without the lock: the exporter thread is not blocked behind it, and waits
     * for it only before calling the exporter's shutdown. */
    b->abandon = 1;
    int cancel = b->in_export && p->has_exporter && p->exporter.cancel != NULL;
    if (cancel) {
      b->cancelling = 1;
      pthread_mutex_unlock(&b->mu);
      p->exporter.cancel(p->exporter.state);
      pthread_mutex_lock(&b->mu);
      b->cancelling = 0;
      pthread_cond_broadcast(&b->cv);
    }
  }
  pthread_mutex_unlock(&b->mu);
  if (rc == 0) {
    pthread_join(b->thread, NULL);
  } else {
    /* The thread finishes on its own; the provider and batch are never freed, so it is safe. */
    pthread_detach(b->thread);
  }
  return rc;
}

void tt__batch_atfork_prepare(tt__provider_t *p) {
  pthread_mutex_lock(&p->batch->mu);
}

void tt__batch_atfork_parent(tt__provider_t *p) {
  pthread_mutex_unlock(&p->batch->mu);
}

void tt__batch_atfork_child(tt__provider_t *p) {
  struct tt__batch_s *b = p->batch;
  /* The exporter thread did not survive the fork. Records it held in pending are forgotten: the
   * fork handler counted every ring's records up to its head as exported, so their owners take
   * them back. */
  init_sync(b);
  atomic_store(&tt__exporter_threads_alive, 0);
  b->running = 0;
  b->npending = 0;
  b->nruns = 0;
  b->wake = 0;
  b->in_export = 0;
  b->cancelling = 0;
  atomic_store(&b->wake_pending, 0);
  b->flush_req = b->flush_done = 0;
  if (!b->stop)
    atomic_store(&tt__batch_needs_thread, 1);
  tt__resource_set_pid(p, (int64_t)getpid());
}
