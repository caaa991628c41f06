/* Internals of the OTLP forwarding sink, shared by its two files and by nothing else:
 *   sink_otlp.c           the entry points: open, submit, flush, healthy, close and stats;
 *   sink_otlp_delivery.c  the sink's own threads: the sender (coalescing, retries, the spool's
 *                         replay and consumed marks) and, in spool mode always, the spooler.
 * The rest of the collector includes sink_otlp.h. */
#ifndef TT_COLLECTOR_SINK_OTLP_INT_H
#define TT_COLLECTOR_SINK_OTLP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "otlp_config.h"
#include "otlp_retry.h"
#include "otlp_transport.h"
#include "sink_otlp.h"
#include "spool.h"

/* One queued batch: a request's bytes, at most max_req apart from a lone oversized span. */
typedef struct batch_s {
  struct batch_s *next;
  int spill_failed; /* always mode: its spool write failed; the sender sends it from memory */
  size_t nspans;
  size_t len;
  uint8_t data[];
} batch_t;

/* One sink; mu guards what changes after open. Submit (shard threads) only appends to the
 * memory queue; the sink's own threads, in sink_otlp_delivery.c, do the rest. */
typedef struct {
  tt_sink_t base;
  char *name;
  tt__otlp_config_t cfg;
  tt__transport_t *transport;
  tt__retry_policy_t retry;
  uint64_t rng;
  tt_spool_t *spool;   /* NULL without a spool directory */
  int always;          /* spool mode always: every batch is spooled before it is sent */
  size_t max_req;      /* largest request: submit splits to it, the sender coalesces up to it */
  int oversize_logged; /* a span bigger than max_req was logged (once per sink) */

  pthread_mutex_t mu;
  pthread_cond_t wake; /* sender: new work or stop */
  pthread_cond_t idle; /* flush: queue drained */
  pthread_t thread;
  pthread_t spooler;         /* always mode only */
  pthread_cond_t spool_wake; /* spooler: new batch in memory, the failed head left, or stop */
  int spooler_done;          /* the spooler has left its loop (always mode) */
  /* The last spool write failed: logged when an episode starts and when it ends, with the
   * episode's count, never once per failure. Its one writer (the sender in on_failure mode, the
   * spooler in always mode) updates these under mu. */
  int spool_failing;
  uint64_t spool_write_failures; /* in the current or last episode */
  int read_failing;              /* sender: the last spool read failed (logged once per episode) */
  uint64_t spooled_gen;          /* bumped by the spooler whenever it changed the queue */
  uint64_t idle_gen;             /* bumped whenever the sender found nothing to do */
  batch_t *head, *tail;          /* memory queue; guarded by mu */
  uint64_t queue_bytes, queue_cap;
  uint64_t queue_spans; /* spans of the batches in the memory queue; guarded by mu */
  int stopping;
  int64_t close_deadline_ns; /* set by close */
  int32_t close_ms;
  int64_t stop_by_ns; /* tt__sink_otlp_stop_by; 0: not stopping yet */
  /* Spans of the records the spool's budget dropped: counted by the spool's hook, on whichever
   * thread appends, without mu. */
  atomic_uint_fast64_t spans_dropped_budget;
  int sending; /* the sender holds a batch outside the queue */
  /* The next batches, in send order, to send one per request: a coalesced request holding
   * them was refused permanently. */
  size_t solo_left;
  int finished;                  /* the sender thread has left its loop */
  unsigned logged_permanent[32]; /* status codes already logged (once each) */
  size_t n_logged;
  /* State changes, logged once each (sender thread, under mu): the backend failed retryably
   * and has not answered a request since (down_since_ns: when that began); the spool holds
   * batches being delivered after an outage or from the previous run. */
  int backend_down;
  int64_t down_since_ns;
  int draining;
  tt_otlp_sink_stats_t st; /* guarded by mu */
} otlp_sink_t;

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void abs_deadline(struct timespec *ts, int64_t mono_ns) {
  /* The sink's condition variables are created with CLOCK_MONOTONIC (tt__sink_otlp_open). */
  ts->tv_sec = (time_t)(mono_ns / 1000000000);
  ts->tv_nsec = (long)(mono_ns % 1000000000);
}

/* The deadline after which the sender sends nothing more: the close deadline once close was
 * called, else the stop_by deadline, else 0 (none). mu held. */
static inline int64_t tt__sink_otlp_end_ns(const otlp_sink_t *s) {
  return s->stopping ? s->close_deadline_ns : s->stop_by_ns;
}

/* Whether the spool holds records not yet acknowledged; 0 without a spool. Takes the spool's
 * lock, not mu: callable with or without mu held. */
int tt__sink_otlp_spool_has_data(otlp_sink_t *s);

/* The sender thread's body (arg: the sink), started by open, in every mode. */
void *tt__sink_otlp_sender_main(void *arg);

/* The spooler thread's body (arg: the sink), started by open in spool mode always only. */
void *tt__sink_otlp_spooler_main(void *arg);

#endif
