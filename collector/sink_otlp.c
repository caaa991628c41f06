/* OTLP forwarding sink; the delivery contract is in sink_otlp.h.
 *
 * Ownership: shard threads call submit, which only appends to the memory queue under `mu` and
 * signals. In spool mode on_failure, everything else (sending, retrying, spilling to and
 * replaying from the spool) is done by the one sender thread, so the spool has a single writer
 * and a single reader and a shard thread never waits on network I/O.
 *
 * In spool mode always, a second thread, the spooler, owns the writing: it moves each batch
 * from the head of the memory queue to the spool (no lock held during the write and its fsync)
 * and only then takes it off the queue. The sender only reads: it sends the oldest spooled
 * records (coalesced into one request) and acknowledges them once the backend has answered
 * for good. Writing and sending thus overlap, a batch submitted while a slow request is in
 * flight reaches the disk without waiting for that request, and the spool keeps one appender
 * and one reader. The spooler takes batches strictly in order and stops at a batch whose write
 * failed (spill_failed); the sender sends that one from memory once the spool before it is
 * empty, then the spooler goes on. So every spooled batch is older than every batch in memory,
 * which is what keeps the order.
 *
 * The transports are libtailtrace's own (agent/transport_http.c, agent/transport_grpc.c,
 * compiled into the collector too): one OTLP client implementation serves both programs. */
#include "sink_otlp.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "otlp_config.h"
#include "otlp_split.h"
#include "otlp_retry.h"
#include "otlp_transport.h"
#include "spool.h"

#define DEFAULT_QUEUE_BYTES (64ull << 20)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CLOSE_MS 5000
#define DEFAULT_MAX_REQUEST (4ull << 20)

typedef struct batch_s {
  struct batch_s *next;
  int spill_failed; /* always mode: its spool write failed; the sender sends it from memory */
  size_t nspans;
  size_t len;
  uint8_t data[];
} batch_t;

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
  int spool_failing;         /* the last spool write failed (logged once per episode) */
  int read_failing;          /* sender: the last spool read failed (logged once per episode) */
  uint64_t spooled_gen;      /* bumped by the spooler whenever it changed the queue */
  uint64_t idle_gen;         /* bumped whenever the sender found nothing to do */
  batch_t *head, *tail;      /* memory queue; guarded by mu */
  uint64_t queue_bytes, queue_cap;
  int stopping;
  int64_t close_deadline_ns; /* set by close */
  int32_t close_ms;
  int sending; /* the sender holds a batch outside the queue */
  /* The next batches, in send order, to send one per request: a coalesced request holding
   * them was refused permanently. */
  size_t solo_left;
  int finished;                  /* the sender thread has left its loop */
  unsigned logged_permanent[32]; /* status codes already logged (once each) */
  size_t n_logged;
  tt_otlp_sink_stats_t st; /* guarded by mu */
} otlp_sink_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void abs_deadline(struct timespec *ts, int64_t mono_ns) {
  /* Condition variables below are created with CLOCK_MONOTONIC. */
  ts->tv_sec = (time_t)(mono_ns / 1000000000);
  ts->tv_nsec = (long)(mono_ns % 1000000000);
}

static void spool_report(void *ctx, const char *msg) {
  otlp_sink_t *s = ctx;
  TT_LOG(TT_LOG_WARN, msg, "\"exporter\":\"%s\"", s->name);
}

/* A spool record is the span count (4 bytes, little-endian) followed by the request bytes, so
 * counters stay right for batches replayed after a restart. */
static int spill(otlp_sink_t *s, const batch_t *b) {
  uint8_t stackbuf[4096];
  size_t need = 4 + b->len;
  uint8_t *rec = need <= sizeof stackbuf ? stackbuf : malloc(need);
  if (rec == NULL)
    return -ENOMEM;
  uint32_t n = (uint32_t)b->nspans;
  for (int i = 0; i < 4; i++)
    rec[i] = (uint8_t)(n >> (8 * i));
  memcpy(rec + 4, b->data, b->len);
  int rc = tt__spool_append(s->spool, rec, need, unix_ms());
  if (rec != stackbuf)
    free(rec);
  return rc;
}

/* The span count a spill() record starts with. */
static size_t record_spans(const tt_buf_t *rec) {
  return (size_t)rec->data[0] | (size_t)rec->data[1] << 8 | (size_t)rec->data[2] << 16 |
         (size_t)rec->data[3] << 24;
}

/* Takes the head batch off the memory queue and frees it. mu held. */
static void pop_head(otlp_sink_t *s) {
  batch_t *b = s->head;
  s->head = b->next;
  if (s->head == NULL)
    s->tail = NULL;
  s->queue_bytes -= b->len;
  free(b);
}

/* Moves every batch of the memory queue to the spool, oldest first. Called by the sender with
 * mu held; the batches leave the queue only once they are on disk. */
static void spill_queue(otlp_sink_t *s) {
  while (s->head != NULL) {
    batch_t *b = s->head;
    int rc = spill(s, b);
    if (rc != 0) {
      s->st.spool_errors++;
      TT_LOG(TT_LOG_ERROR, "spool write failed; batch kept in memory",
             "\"exporter\":\"%s\",\"errno\":%d", s->name, -rc);
      return;
    }
    pop_head(s);
  }
  /* solo_left still holds: a memory batch is sent only while the spool is empty, so the
   * batches it counts are now the spool's first ones, in the same order. */
}

static int spool_has_data(otlp_sink_t *s) {
  if (s->spool == NULL)
    return 0;
  tt_spool_stats_t ss;
  tt__spool_stats(s->spool, &ss);
  return ss.records > 0;
}

static void log_permanent_once(otlp_sink_t *s, const tt__export_result_t *r) {
  unsigned code = (unsigned)r->code;
  for (size_t i = 0; i < s->n_logged; i++)
    if (s->logged_permanent[i] == code)
      return;
  if (s->n_logged < sizeof s->logged_permanent / sizeof s->logged_permanent[0])
    s->logged_permanent[s->n_logged++] = code;
  char msg[400];
  snprintf(msg, sizeof msg, "backend refused a batch permanently: %s",
           r->message[0] ? r->message : "(no message)");
  TT_LOG(TT_LOG_ERROR, msg, "\"exporter\":\"%s\",\"code\":%d", s->name, r->code);
}

/* Sleeps until the backoff ends or stop is requested, spilling new batches to the spool as
 * they arrive so they are durable while the backend is down. mu held. */
static void backoff_wait(otlp_sink_t *s, int64_t until_ns) {
  struct timespec ts;
  abs_deadline(&ts, until_ns);
  while (!s->stopping && now_ns() < until_ns) {
    if (s->spool != NULL && !s->always && s->head != NULL)
      spill_queue(s);
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
  }
}

/* Counts and logs (once per episode) a failed read of the spool's oldest record. That record
 * stays in the spool; the sender tries it again after a backoff, and sends nothing newer
 * meanwhile, which would break the order. mu held. Returns -1 for next_batch*. */
static int read_failed(otlp_sink_t *s, int rc) {
  s->st.spool_errors++;
  if (!s->read_failing) {
    s->read_failing = 1;
    TT_LOG(TT_LOG_ERROR, "spool read failed; the batch stays in the spool and is read again",
           "\"exporter\":\"%s\",\"errno\":%d", s->name, -rc);
  }
  return -1;
}

static void read_succeeded(otlp_sink_t *s) {
  if (s->read_failing) {
    s->read_failing = 0;
    TT_LOG(TT_LOG_WARN, "spool reads succeed again", "\"exporter\":\"%s\"", s->name);
  }
}

/* Takes the next batch to send: from the spool while it holds anything (older data), else from
 * the memory queue. Returns 1 with body/len/nspans set, 0 when there is nothing, -1 when the
 * spool could not be read. mu held. */
static int next_batch(otlp_sink_t *s, tt_buf_t *spooled, batch_t **mem, size_t *nspans) {
  *mem = NULL;
  while (spool_has_data(s)) {
    if (s->head != NULL)
      spill_queue(s); /* keep order: memory batches are newer than spooled ones */
    uint64_t enq;
    int rc = tt__spool_peek(s->spool, spooled, &enq);
    if (rc == -ENOENT)
      break;
    if (rc != 0)
      return read_failed(s, rc);
    read_succeeded(s);
    if (spooled->len >= 4) {
      *nspans = record_spans(spooled);
      return 1;
    }
    tt__spool_ack(s->spool); /* too short to be one of ours: skip it */
  }
  if (s->head == NULL)
    return 0;
  *mem = s->head;
  *nspans = s->head->nspans;
  return 1;
}

/* Always mode: the oldest spooled record, else a batch the spooler could not write (it is then
 * older than anything the spooler wrote after it, as the spooler stops at it). Peeks without
 * mu, which the spool does not need; spooled_gen tells whether the spooler moved a batch
 * meanwhile, in which case the empty answer may be stale and we look again. Returns as
 * next_batch does. mu held. */
static int next_batch_always(otlp_sink_t *s, tt_buf_t *spooled, batch_t **mem, size_t *nspans) {
  *mem = NULL;
  for (;;) {
    uint64_t gen = s->spooled_gen;
    pthread_mutex_unlock(&s->mu);
    int rc;
    while ((rc = tt__spool_peek(s->spool, spooled, NULL)) == 0 && spooled->len < 4)
      tt__spool_ack(s->spool); /* too short to be one of ours: skip it */
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
      read_succeeded(s);
      *nspans = record_spans(spooled);
      return 1;
    }
    if (rc != -ENOENT)
      return read_failed(s, rc);
    if (s->spooled_gen != gen)
      continue;
    if (s->head != NULL && s->head->spill_failed) {
      *mem = s->head;
      *nspans = s->head->nspans;
      return 1;
    }
    return 0;
  }
}

/* Always mode: writes each batch of the memory queue to the spool, in order, and wakes the
 * sender for it. A batch whose write fails stays at the head, marked, for the sender to send
 * from memory (not durable, counted in spool_errors); the spooler waits until it is gone. */
static void *spooler_main(void *arg) {
  otlp_sink_t *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    batch_t *b = s->head;
    if (b != NULL && !b->spill_failed) {
      pthread_mutex_unlock(&s->mu);
      int rc = spill(s, b);
      pthread_mutex_lock(&s->mu);
      /* b is still the head: the sender takes only marked batches off the queue. */
      if (rc == 0) {
        pop_head(s);
        if (s->spool_failing) {
          s->spool_failing = 0;
          TT_LOG(TT_LOG_WARN, "spool writes succeed again", "\"exporter\":\"%s\"", s->name);
        }
      } else {
        b->spill_failed = 1;
        s->st.spool_errors++;
        if (!s->spool_failing) {
          s->spool_failing = 1;
          TT_LOG(TT_LOG_ERROR, "spool write failed; sending the batch from memory, not durable",
                 "\"exporter\":\"%s\",\"errno\":%d", s->name, -rc);
        }
      }
      s->spooled_gen++;
      pthread_cond_signal(&s->wake);
      continue;
    }
    if (s->stopping)
      break;
    pthread_cond_wait(&s->spool_wake, &s->mu);
  }
  s->spooler_done = 1;
  pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Where the batches after a request's first one come from. */
typedef struct {
  enum { SRC_NONE, SRC_MEM, SRC_SPOOL } kind;
  const batch_t *mem;  /* SRC_MEM: the last batch taken */
  const batch_t *last; /* SRC_MEM: the queue's tail when the request began */
  tt_spool_t *spool;   /* SRC_SPOOL: records after the peeked one */
  tt_buf_t *rec;       /* SRC_SPOOL: holds the record taken */
} source_t;

/* Takes the batch after the ones already taken if its body fits in room bytes: 1 with
 * body/len/nspans set, 0 when there is none or it does not fit (it waits for the next request).
 * Runs without mu. Memory: only the sender takes batches off an on_failure queue, and submit
 * only links new ones after the tail, so the batches up to `last` are stable; last's next
 * pointer is never read, as submit may be setting it. Spool: a taken record joins the spool's
 * peeked run, acknowledged with the request. */
static int source_next(source_t *src, size_t room, const uint8_t **body, size_t *len,
                       size_t *nspans) {
  if (src->kind == SRC_MEM) {
    if (src->mem == src->last || src->mem->next->len > room)
      return 0;
    src->mem = src->mem->next;
    *body = src->mem->data;
    *len = src->mem->len;
    *nspans = src->mem->nspans;
    return 1;
  }
  /* A read error, like a record too short to be ours, ends the request here; the next peek
   * at the head meets it again and deals with it. */
  if (src->kind != SRC_SPOOL || tt__spool_peek_next(src->spool, src->rec, room + 4) != 0 ||
      src->rec->len < 4)
    return 0;
  *body = src->rec->data + 4;
  *len = src->rec->len - 4;
  *nspans = record_spans(src->rec);
  return 1;
}

/* Coalescing: the batches waiting behind the first one join its request while the total stays
 * within max_req (concatenated ExportTraceServiceRequests are one message holding all their
 * resource_spans), so a distant backend is not paid one round trip per small batch, whether
 * they wait in memory or in the spool. They stay queued (or unacknowledged in the spool), in
 * order, until the answer. Returns how many batches the request holds; with more than one,
 * out holds the request and *nspans counts all their spans. Runs without mu. */
static size_t coalesce(size_t max_req, source_t *src, const uint8_t *first, size_t first_len,
                       tt_buf_t *out, size_t *nspans) {
  const uint8_t *body;
  size_t len, spans;
  if (first_len >= max_req || !source_next(src, max_req - first_len, &body, &len, &spans))
    return 1; /* alone: sent from where it is, uncopied */
  tt__buf_reset(out);
  size_t nb = 1;
  if (tt__buf_append(out, first, first_len) != 0)
    return 1;
  do {
    if (tt__buf_append(out, body, len) != 0)
      break; /* a spool record taken but left out is peeked again with the next request */
    nb++;
    *nspans += spans;
  } while (out->len < max_req && source_next(src, max_req - out->len, &body, &len, &spans));
  return nb;
}

static void *sender_main(void *arg) {
  otlp_sink_t *s = arg;
  tt_buf_t spooled = TT_BUF_INIT;
  tt_buf_t coalesced = TT_BUF_INIT; /* several batches sent as one request */
  tt_buf_t rec = TT_BUF_INIT;       /* one spool record read to join a request */
  unsigned attempt = 0;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    batch_t *mem = NULL;
    size_t nspans = 0;
    int have = s->always ? next_batch_always(s, &spooled, &mem, &nspans)
                         : next_batch(s, &spooled, &mem, &nspans);
    if (have < 0) {
      /* The spool could not be read: what it holds stays there. Try again after a backoff
       * (new work may never come to wake us); at close it is left for the next start. */
      if (s->stopping)
        break;
      backoff_wait(s, now_ns() + tt__retry_backoff_ms(&s->retry, attempt, &s->rng) * 1000000);
      if (attempt < 64)
        attempt++;
      continue;
    }
    if (!have) {
      s->st.degraded = 0;
      s->idle_gen++;
      pthread_cond_broadcast(&s->idle);
      /* Always mode: a batch the spooler is still writing is work to wait for, not idleness;
       * it signals wake once the batch is on disk. */
      if (s->stopping && (!s->always || s->head == NULL))
        break;
      pthread_cond_wait(&s->wake, &s->mu);
      continue;
    }
    if (s->stopping && now_ns() >= s->close_deadline_ns)
      break;
    const uint8_t *body = mem ? mem->data : spooled.data + 4;
    size_t len = mem ? mem->len : spooled.len - 4;
    /* What may join this request: the memory batches queued behind it (on_failure mode only:
     * in always mode the spooler takes batches off the queue concurrently, and a memory batch
     * there is a lone one its write failed on), or the spool records after it. */
    source_t src = {.kind = SRC_NONE, .spool = s->spool, .rec = &rec};
    if (s->solo_left == 0) {
      if (mem != NULL && !s->always)
        src = (source_t){.kind = SRC_MEM, .mem = mem, .last = s->tail};
      else if (mem == NULL)
        src.kind = SRC_SPOOL;
    }
    s->sending = 1;
    int64_t deadline = now_ns() + (int64_t)s->cfg.timeout_ms * 1000000;
    if (s->stopping && deadline > s->close_deadline_ns)
      deadline = s->close_deadline_ns;
    pthread_mutex_unlock(&s->mu);

    size_t nb = coalesce(s->max_req, &src, body, len, &coalesced, &nspans);
    if (nb > 1) {
      body = coalesced.data;
      len = coalesced.len;
    }

    tt__export_result_t r;
    tt__export_result_init(&r);
    tt__transport_send(s->transport, body, len, deadline, &r);

    pthread_mutex_lock(&s->mu);
    s->sending = 0;
    int done = 0;
    if (r.outcome == TT__EXPORT_PERMANENT && nb > 1) {
      /* One bad batch must not take the ones coalesced with it down: send each alone again,
       * so the refusal lands on the batch that earned it. They are the next nb to go, from
       * memory or (peek starts over at the head) from the spool, unacknowledged. */
      s->solo_left = nb;
      continue;
    }
    switch (r.outcome) {
      case TT__EXPORT_OK:
        s->st.batches_sent += nb;
        s->st.spans_sent += nspans;
        if (r.rejected_spans > 0) {
          s->st.spans_rejected += (uint64_t)r.rejected_spans;
          char msg[400];
          snprintf(msg, sizeof msg, "backend rejected some spans (partial success): %s",
                   r.message[0] ? r.message : "(no message)");
          TT_LOG(TT_LOG_WARN, msg, "\"exporter\":\"%s\",\"rejected\":%" PRId64, s->name,
                 r.rejected_spans);
        }
        done = 1;
        attempt = 0;
        break;
      case TT__EXPORT_PERMANENT:
        s->st.batches_failed_permanent++;
        s->st.spans_failed_permanent += nspans;
        log_permanent_once(s, &r);
        done = 1;
        attempt = 0;
        break;
      case TT__EXPORT_RETRYABLE:
      case TT__EXPORT_ABORTED:
      default:
        break;
    }
    if (done) {
      if (s->solo_left > 0)
        s->solo_left--;
      if (mem != NULL) {
        for (size_t i = 0; i < nb; i++)
          pop_head(s); /* the first one is mem: nobody else dequeues meanwhile */
        if (s->always)
          pthread_cond_signal(&s->spool_wake); /* the spooler waits for a marked head to go */
      } else {
        /* Between the backend's answer and these marks is the at-least-once window: a crash
         * here replays the request's batches at the next start. A failed mark still moves
         * the spool on (never twice in one run), and is counted. The spool is asked without
         * mu, as in next_batch_always; only this thread reads it. */
        pthread_mutex_unlock(&s->mu);
        size_t failed = 0;
        int err = 0;
        for (size_t i = 0; i < nb; i++) {
          int rc = tt__spool_ack(s->spool);
          if (rc != 0 && rc != -ENOENT) {
            failed++;
            err = rc;
          }
        }
        pthread_mutex_lock(&s->mu);
        if (failed > 0) {
          s->st.spool_errors += failed;
          TT_LOG(TT_LOG_ERROR, "spool: cannot mark sent batches consumed; a restart resends them",
                 "\"exporter\":\"%s\",\"batches\":%zu,\"errno\":%d", s->name, failed, -err);
        }
      }
      continue;
    }
    if (r.outcome == TT__EXPORT_ABORTED || (s->stopping && now_ns() >= s->close_deadline_ns))
      break;
    /* Retryable: the backend is down or throttling. Hold everything, durably if we can. */
    s->st.batches_retried++;
    if (!s->st.degraded) {
      s->st.degraded = 1;
      char msg[400];
      snprintf(msg, sizeof msg, "backend unavailable, holding batches%s: %s",
               s->spool ? " in the spool" : " in memory",
               r.message[0] ? r.message : "(no message)");
      TT_LOG(TT_LOG_WARN, msg, "\"exporter\":\"%s\",\"code\":%d", s->name, r.code);
    }
    if (s->spool != NULL && !s->always)
      spill_queue(s); /* always mode: the spooler has written, or is writing, all of it */
    int64_t delay_ms = r.retry_after_ms >= 0 ? r.retry_after_ms
                                             : tt__retry_backoff_ms(&s->retry, attempt, &s->rng);
    if (attempt < 64)
      attempt++;
    backoff_wait(s, now_ns() + delay_ms * 1000000);
  }
  /* Stopped: what is still in memory goes to the spool for the next run, or is lost. In
   * always mode the spooler writes it; wait for it to finish (bounded by the queue's size). */
  if (s->always) {
    while (!s->spooler_done)
      pthread_cond_wait(&s->idle, &s->mu);
  } else if (s->spool != NULL) {
    spill_queue(s);
  }
  for (batch_t *b = s->head; b != NULL; b = b->next)
    s->st.batches_lost_at_shutdown++;
  if (s->st.batches_lost_at_shutdown > 0)
    TT_LOG(TT_LOG_ERROR, "batches not delivered by the close deadline were lost",
           "\"exporter\":\"%s\",\"batches\":%" PRIu64, s->name, s->st.batches_lost_at_shutdown);
  s->finished = 1;
  pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->mu);
  tt__buf_free(&spooled);
  tt__buf_free(&coalesced);
  tt__buf_free(&rec);
  return NULL;
}

static batch_t *batch_new(const uint8_t *req, size_t len, size_t nspans) {
  batch_t *b = malloc(sizeof *b + len);
  if (b == NULL)
    return NULL;
  b->next = NULL;
  b->spill_failed = 0;
  b->nspans = nspans;
  b->len = len;
  memcpy(b->data, req, len);
  return b;
}

/* The pieces of one submitted batch, linked in order before they are queued together. */
typedef struct {
  batch_t *head, *tail;
  size_t n, nspans;
  uint64_t bytes;
} piece_list_t;

static int add_piece(void *ctx, const uint8_t *req, size_t len, size_t nspans) {
  piece_list_t *l = ctx;
  batch_t *b = batch_new(req, len, nspans);
  if (b == NULL)
    return -ENOMEM;
  if (l->tail)
    l->tail->next = b;
  else
    l->head = b;
  l->tail = b;
  l->n++;
  l->nspans += nspans;
  l->bytes += len;
  return 0;
}

static void free_pieces(piece_list_t *l) {
  for (batch_t *b = l->head, *n; b != NULL; b = n) {
    n = b->next;
    free(b);
  }
  *l = (piece_list_t){0};
}

/* Runs on a shard thread: splitting a batch over max_req here (wire scanning and copying, no
 * I/O) means every queued or spooled batch is at most one request, whatever path sends it. */
static int otlp_submit(tt_sink_t *base, const uint8_t *req, size_t len, size_t nspans) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  piece_list_t l = {0};
  tt_otlp_split_stats_t sp = {0};
  if (len > s->max_req) {
    int rc = tt__otlp_split(req, len, s->max_req, add_piece, &l, &sp);
    if (rc == -ENOMEM) {
      free_pieces(&l);
      return rc;
    }
    if (rc != 0) {
      /* Cannot happen with what the shards frame; the backend decides on the whole. */
      free_pieces(&l);
      TT_LOG(TT_LOG_WARN, "cannot split a malformed batch over max_request_size; sent whole",
             "\"exporter\":\"%s\",\"bytes\":%zu", s->name, len);
    }
  }
  if (l.n == 0 && add_piece(&l, req, len, nspans) != 0)
    return -ENOMEM;
  pthread_mutex_lock(&s->mu);
  /* All pieces or none: a trace is not queued in part. */
  if (s->stopping || s->queue_bytes + l.bytes > s->queue_cap) {
    s->st.batches_dropped_queue_full += l.n;
    s->st.spans_dropped_queue_full += l.nspans;
    pthread_mutex_unlock(&s->mu);
    free_pieces(&l);
    return -ENOBUFS;
  }
  if (sp.oversized > 0) {
    s->st.requests_oversized += sp.oversized;
    if (!s->oversize_logged) {
      s->oversize_logged = 1;
      TT_LOG(TT_LOG_WARN, "a span bigger than max_request_size is sent alone in a request over it",
             "\"exporter\":\"%s\",\"max_request_size\":%zu", s->name, s->max_req);
    }
  }
  if (s->tail)
    s->tail->next = l.head;
  else
    s->head = l.head;
  s->tail = l.tail;
  s->queue_bytes += l.bytes;
  pthread_cond_signal(s->always ? &s->spool_wake : &s->wake);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* Waits until everything queued was handed to the backend, up to one export timeout. */
static int otlp_flush(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  int64_t until = now_ns() + (int64_t)s->cfg.timeout_ms * 1000000;
  struct timespec ts;
  abs_deadline(&ts, until);
  pthread_mutex_lock(&s->mu);
  /* While the backend is failing nothing can be delivered; waiting would only stall shutdown.
   * What is queued stays queued (and spooled, with a spool) for when it returns. */
  int rc = s->st.degraded ? -EAGAIN : 0;
  while (rc == 0) {
    if (s->head == NULL && !s->sending) {
      /* The spool is asked without mu, so that a caller here never holds up submit behind
       * the spool's lock; idle_gen catches the sender going idle meanwhile. */
      uint64_t gen = s->idle_gen;
      pthread_mutex_unlock(&s->mu);
      int pending = spool_has_data(s);
      pthread_mutex_lock(&s->mu);
      if (!pending && s->head == NULL && !s->sending)
        break;
      if (gen != s->idle_gen)
        continue;
    }
    if (pthread_cond_timedwait(&s->idle, &s->mu, &ts) == ETIMEDOUT)
      rc = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static bool otlp_healthy(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  bool ok = !s->st.degraded;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static void otlp_free(otlp_sink_t *s) {
  while (s->head) {
    batch_t *n = s->head->next;
    free(s->head);
    s->head = n;
  }
  tt__transport_destroy(s->transport);
  tt__spool_close(s->spool);
  tt__otlp_config_free(&s->cfg);
  pthread_cond_destroy(&s->wake);
  pthread_cond_destroy(&s->idle);
  pthread_cond_destroy(&s->spool_wake);
  pthread_mutex_destroy(&s->mu);
  free(s->name);
  free(s);
}

/* Gives the sender until the close deadline to deliver what is queued, then aborts the
 * request in flight so close never waits longer than that (plus the spill to disk). */
static void otlp_close(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  s->close_deadline_ns = now_ns() + (int64_t)s->close_ms * 1000000;
  pthread_cond_broadcast(&s->wake);
  pthread_cond_broadcast(&s->spool_wake);
  struct timespec ts;
  abs_deadline(&ts, s->close_deadline_ns);
  while (!s->finished && pthread_cond_timedwait(&s->idle, &s->mu, &ts) != ETIMEDOUT) {
  }
  int finished = s->finished;
  pthread_mutex_unlock(&s->mu);
  if (!finished)
    tt__transport_abort(s->transport);
  pthread_join(s->thread, NULL);
  if (s->always)
    pthread_join(s->spooler, NULL); /* done already: the sender waited for it */
  otlp_free(s);
}

void tt__sink_otlp_stats(tt_sink_t *base, tt_otlp_sink_stats_t *out) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  out->queue_bytes = s->queue_bytes;
  pthread_mutex_unlock(&s->mu);
  /* The spool has its own lock; asking it without mu keeps a metrics scrape from holding up
   * submit while the spool is busy. */
  if (s->spool != NULL) {
    tt_spool_stats_t ss;
    tt__spool_stats(s->spool, &ss);
    out->spool_bytes = ss.bytes;
    out->spool_batches = ss.records;
    out->batches_dropped_spool_budget = ss.dropped_records;
    uint64_t now = unix_ms();
    out->oldest_spooled_age_ms =
        ss.records > 0 && ss.oldest_unix_ms <= now ? now - ss.oldest_unix_ms : 0;
  }
}

void tt__sink_otlp_set_close_deadline(tt_sink_t *base, int32_t ms) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  s->close_ms = ms;
  pthread_mutex_unlock(&s->mu);
}

static const tt_sink_vtable_t otlp_vtable = {
    .name = "otlp",
    .submit = otlp_submit,
    .flush = otlp_flush,
    .healthy = otlp_healthy,
    .close = otlp_close,
};

/* The collector's settings come from its YAML file, never from OTEL_* variables meant for the
 * applications next to it: resolve against an empty environment. */
static const char *no_env(const char *name, void *ud) {
  (void)name;
  (void)ud;
  return NULL;
}

bool tt__sink_is_otlp(const tt_sink_t *s) {
  return s != NULL && s->vt == &otlp_vtable;
}

const char *tt__sink_otlp_name(const tt_sink_t *s) {
  return ((const otlp_sink_t *)s)->name;
}

int tt__sink_otlp_open(const tt_otlp_sink_opts_t *o, tt_sink_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (o->endpoint == NULL || o->endpoint[0] == '\0') {
    snprintf(err, errlen, "exporter %s: no endpoint", o->name ? o->name : "?");
    return -EINVAL;
  }
  otlp_sink_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->base.vt = &otlp_vtable;
  s->name = strdup(o->name ? o->name : "otlp");
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wake, &ca);
  pthread_cond_init(&s->idle, &ca);
  pthread_cond_init(&s->spool_wake, &ca);
  pthread_condattr_destroy(&ca);
  s->queue_cap = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
  s->max_req = o->max_request_bytes ? (size_t)o->max_request_bytes : DEFAULT_MAX_REQUEST;
  s->close_ms = DEFAULT_CLOSE_MS;
  s->rng = (uint64_t)now_ns() | 1;

  tt_otlp_options_t opts = {0};
  opts.size = sizeof opts;
  opts.protocol =
      o->protocol == TT_FWD_PROTOCOL_GRPC ? TT_OTLP_PROTOCOL_GRPC : TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  opts.endpoint = o->endpoint;
  opts.headers = o->headers;
  opts.timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  opts.compression = o->gzip ? TT_OTLP_COMPRESSION_GZIP : TT_OTLP_COMPRESSION_NONE;
  opts.insecure = o->insecure ? TT_OTLP_INSECURE_TRUE : TT_OTLP_INSECURE_FALSE;
  opts.certificate = o->ca_file;
  opts.client_certificate = o->cert_file;
  opts.client_key = o->key_file;
  int rc = s->name ? tt__otlp_config_resolve(&s->cfg, &opts, no_env, NULL) : -ENOMEM;
  if (rc != 0) {
    snprintf(err, errlen, "exporter %s: cannot resolve its settings", o->name ? o->name : "?");
    otlp_free(s);
    return rc;
  }
  s->retry.initial_ms = o->retry_initial_ms > 0 ? o->retry_initial_ms : 1000;
  s->retry.max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : 30000;
  s->retry.multiplier = 1.5;
  s->retry.jitter = 0.2;
  rc = s->cfg.protocol == TT_OTLP_PROTOCOL_GRPC ? tt__transport_grpc_new(&s->cfg, &s->transport)
                                                : tt__transport_http_new(&s->cfg, &s->transport);
  if (rc != 0) {
    snprintf(err, errlen, "exporter %s: invalid endpoint or TLS files (%s)", s->name, o->endpoint);
    otlp_free(s);
    return rc;
  }
  if (o->spool_dir != NULL && o->spool_dir[0] != '\0') {
    tt_spool_opts_t so = {0};
    so.dir = o->spool_dir;
    so.max_bytes = o->spool_bytes;
    so.fsync = o->spool_fsync;
    so.report = spool_report;
    so.report_ctx = s;
    char serr[256] = "";
    rc = tt__spool_open(&so, &s->spool, serr, sizeof serr);
    if (rc != 0) {
      snprintf(err, errlen, "exporter %s: %s", s->name, serr);
      otlp_free(s);
      return rc;
    }
  }
  if (o->spool_always && s->spool == NULL) {
    snprintf(err, errlen, "exporter %s: spool mode always needs a spool directory", s->name);
    otlp_free(s);
    return -EINVAL;
  }
  s->always = o->spool_always;
  if (s->always && pthread_create(&s->spooler, NULL, spooler_main, s) != 0) {
    snprintf(err, errlen, "exporter %s: cannot start its spool thread", s->name);
    otlp_free(s);
    return -EAGAIN;
  }
  if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
    snprintf(err, errlen, "exporter %s: cannot start its thread", s->name);
    if (s->always) {
      pthread_mutex_lock(&s->mu);
      s->stopping = 1;
      pthread_cond_broadcast(&s->spool_wake);
      pthread_mutex_unlock(&s->mu);
      pthread_join(s->spooler, NULL);
    }
    otlp_free(s);
    return -EAGAIN;
  }
  *out = &s->base;
  return 0;
}
