/* The OTLP sink's delivery: what its own threads do with the batches submit queued (the entry
 * points are in sink_otlp.c, the shared state in sink_otlp_int.h).
 *
 * In spool mode on_failure, everything past the memory queue (sending, retrying, spilling to
 * and replaying from the spool) is done by the one sender thread, so the spool has a single
 * writer and a single reader.
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
 * which is what keeps the order. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sink_otlp_int.h"

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
  s->queue_spans -= b->nspans;
  free(b);
}

/* Counts a failed spool write and logs it only when an episode starts: while the disk is full
 * or failing, the writer tries again at every backoff and every new batch, and a line each
 * time would flood the log (and fill the disk further). `what` says what happens to the batch.
 * mu held, by the spool's one writer. */
static void spool_write_failed(otlp_sink_t *s, int rc, const char *what) {
  s->st.spool_errors++;
  if (!s->spool_failing) {
    s->spool_failing = 1;
    s->spool_write_failures = 0;
    TT_LOG(TT_LOG_ERROR, what, "\"exporter\":\"%s\",\"errno\":%d,\"error\":\"%s\"", s->name, -rc,
           strerror(-rc));
  }
  s->spool_write_failures++;
}

/* Ends a failed-write episode, saying how many writes failed in it. mu held. */
static void spool_write_succeeded(otlp_sink_t *s) {
  if (s->spool_failing) {
    s->spool_failing = 0;
    TT_LOG(TT_LOG_WARN, "spool writes succeed again", "\"exporter\":\"%s\",\"failures\":%" PRIu64,
           s->name, s->spool_write_failures);
  }
}

/* Moves every batch of the memory queue to the spool, oldest first. Called by the sender with
 * mu held; the batches leave the queue only once they are on disk. */
static void spill_queue(otlp_sink_t *s) {
  while (s->head != NULL) {
    batch_t *b = s->head;
    int rc = spill(s, b);
    if (rc != 0) {
      spool_write_failed(s, rc,
                         "spool write failed; batches wait in memory until a write succeeds "
                         "(logged once until then)");
      return;
    }
    spool_write_succeeded(s);
    s->st.spans_spooled += b->nspans;
    pop_head(s);
  }
  /* solo_left still holds: a memory batch is sent only while the spool is empty, so the
   * batches it counts are now the spool's first ones, in the same order. */
}

int tt__sink_otlp_spool_has_data(otlp_sink_t *s) {
  if (s->spool == NULL)
    return 0;
  tt_spool_stats_t ss;
  tt__spool_stats(s->spool, &ss);
  return ss.records > 0;
}

/* "spool drained": the spool that held batches after an outage (or from the previous run) is
 * empty. mu held. */
static void check_drained(otlp_sink_t *s) {
  if (s->draining && !tt__sink_otlp_spool_has_data(s)) {
    s->draining = 0;
    TT_LOG(TT_LOG_INFO, "spool drained: every held batch was delivered", "\"exporter\":\"%s\"",
           s->name);
  }
}

/* The backend answered after an outage: said once, with how long it was down, and whether the
 * spool now drains. mu held. */
static void backend_answered(otlp_sink_t *s) {
  if (!s->backend_down)
    return;
  s->backend_down = 0;
  tt_spool_stats_t ss = {0};
  if (s->spool != NULL)
    tt__spool_stats(s->spool, &ss);
  TT_LOG(TT_LOG_INFO, "backend available again",
         "\"exporter\":\"%s\",\"down_ms\":%" PRId64 ",\"spooled_batches\":%" PRIu64
         ",\"queued_bytes\":%" PRIu64,
         s->name, (now_ns() - s->down_since_ns) / 1000000, ss.records, s->queue_bytes);
  if (ss.records > 0 && !s->draining) {
    s->draining = 1;
    TT_LOG(TT_LOG_INFO, "spool draining",
           "\"exporter\":\"%s\",\"batches\":%" PRIu64 ",\"bytes\":%" PRIu64, s->name, ss.records,
           ss.bytes);
  }
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

/* Sleeps until the backoff ends, close is called or the stop_by deadline passes, spilling new
 * batches to the spool as they arrive so they are durable while the backend is down. mu held. */
static void backoff_wait(otlp_sink_t *s, int64_t until_ns) {
  for (;;) {
    int64_t end = tt__sink_otlp_end_ns(s); /* stop_by may be set meanwhile: it wakes us */
    int64_t until = end != 0 && end < until_ns ? end : until_ns;
    if (s->stopping || now_ns() >= until)
      return;
    if (s->spool != NULL && !s->always && s->head != NULL)
      spill_queue(s);
    struct timespec ts;
    abs_deadline(&ts, until);
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
           "\"exporter\":\"%s\",\"errno\":%d,\"error\":\"%s\"", s->name, -rc, strerror(-rc));
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
  while (tt__sink_otlp_spool_has_data(s)) {
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
void *tt__sink_otlp_spooler_main(void *arg) {
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
        s->st.spans_spooled += b->nspans;
        pop_head(s);
        spool_write_succeeded(s);
      } else {
        b->spill_failed = 1;
        spool_write_failed(s, rc,
                           "spool write failed; sending batches from memory, not durable "
                           "(logged once until a write succeeds)");
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

void *tt__sink_otlp_sender_main(void *arg) {
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
      check_drained(s);
      s->idle_gen++;
      pthread_cond_broadcast(&s->idle);
      /* Always mode: a batch the spooler is still writing is work to wait for, not idleness;
       * it signals wake once the batch is on disk. */
      if (s->stopping && (!s->always || s->head == NULL))
        break;
      pthread_cond_wait(&s->wake, &s->mu);
      continue;
    }
    int64_t end = tt__sink_otlp_end_ns(s);
    if (end != 0 && now_ns() >= end) {
      if (s->stopping)
        break;
      /* Past stop_by and close not called yet: send nothing more, close comes to spool (or
       * count) what is left. */
      pthread_cond_wait(&s->wake, &s->mu);
      continue;
    }
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
    /* A request sent while the collector stops ends by its deadline; one already in flight when
     * stop_by was set is aborted by close at that time. */
    int64_t deadline = now_ns() + (int64_t)s->cfg.timeout_ms * 1000000;
    if (end != 0 && deadline > end)
      deadline = end;
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
    if (r.outcome == TT__EXPORT_OK || r.outcome == TT__EXPORT_PERMANENT)
      backend_answered(s);
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
        s->st.refusing = 0;
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
        s->st.refusing = 1;
        s->st.refused_code = r.code;
        snprintf(s->st.refused_message, sizeof s->st.refused_message, "%.159s", r.message);
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
                 "\"exporter\":\"%s\",\"batches\":%zu,\"errno\":%d,\"error\":\"%s\"", s->name,
                 failed, -err, strerror(-err));
        }
        check_drained(s);
      }
      continue;
    }
    /* Cut short by the shutdown, not failed by the backend: no retry, no degraded state. The
     * batches are still queued (or unacknowledged in the spool): the loop's top waits for close
     * or leaves, and what is left is spooled or counted below. */
    end = tt__sink_otlp_end_ns(s);
    if (r.outcome == TT__EXPORT_ABORTED || (end != 0 && now_ns() >= end)) {
      if (s->stopping)
        break;
      continue;
    }
    /* Retryable: the backend is down or throttling. Hold everything, durably if we can. */
    s->st.batches_retried++;
    s->st.degraded = 1;
    if (!s->backend_down) {
      /* Once per outage: the line "backend available again" ends it. */
      s->backend_down = 1;
      s->down_since_ns = now_ns();
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
  uint64_t lost = 0, lost_spans = 0;
  for (batch_t *b = s->head; b != NULL; b = b->next) {
    lost++;
    lost_spans += b->nspans;
  }
  s->st.batches_lost_at_shutdown += lost;
  s->st.spans_lost_at_shutdown += lost_spans;
  if (lost > 0)
    TT_LOG(TT_LOG_ERROR,
           s->spool != NULL ? "batches not delivered by the close deadline could not be spooled "
                              "and were lost"
                            : "batches not delivered by the close deadline were lost (no spool)",
           "\"exporter\":\"%s\",\"batches\":%" PRIu64 ",\"spans\":%" PRIu64, s->name, lost,
           lost_spans);
  if (s->spool != NULL) {
    tt_spool_stats_t ss;
    tt__spool_stats(s->spool, &ss);
    if (ss.records > 0)
      TT_LOG(TT_LOG_WARN, "batches not delivered wait in the spool for the next start",
             "\"exporter\":\"%s\",\"batches\":%" PRIu64 ",\"bytes\":%" PRIu64, s->name, ss.records,
             ss.bytes);
  }
  s->finished = 1;
  pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->mu);
  tt__buf_free(&spooled);
  tt__buf_free(&coalesced);
  tt__buf_free(&rec);
  return NULL;
}
