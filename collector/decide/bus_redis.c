/* Decision bus on Redis (see bus.h): client-side sharding over independent nodes, one bus
 * thread speaking RESP2 (resp.h) over plain TCP or TLS (bus_conn.h), every wait bounded by the
 * batch's deadline.
 *
 * Ownership and hand-over: shard threads append publishes and lookups to one bounded queue
 * (bus_t.q) under bus_t.mu and signal bus_t.cv when it turns non-empty. The bus thread swaps the
 * whole queue out under the same mutex (so neither side allocates in steady state), then owns
 * the taken items, every connection, the command and reply buffers, the reply parser and every
 * per-node state without a lock. Counters are
 * kept by the bus thread in a private delta and merged into bus_t.st under the mutex when it
 * takes the lock to wait and before each answer callback; callers' refusals are counted in bus_t.st
 * directly while they hold the mutex.
 *
 * Failure: any I/O error, timeout, error reply or malformed reply closes the node's connection;
 * its batch's unanswered lookups are answered with a negative status at once and its
 * unacknowledged publishes are dropped (counted), since a keep that arrives late is worth less
 * than a shard that waits. While a node is down its new lookups are answered negatively on the
 * next turn and reconnects follow an exponential backoff with jitter. */
#include "bus.h"
#include "bus_conn.h"
#include "log.h"
#include "resp.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MGET_CHUNK 512
#define PREFIX_MAX 64
#define QUEUE_MIN_CAP 256
/* Upper bound on an idle wait, so a lost wake-up could never stall the thread for long. */
#define IDLE_WAIT_NS 1000000000ull
/* The replies this bus asks for are "+OK", nil, an error line, or an MGET array of at most
 * MGET_CHUNK values of under TT_BUS_VALUE_MAX bytes. A longer value under one of our keys is
 * someone else's; the limits refuse a stream that would make the parser hold more than this. */
#define REPLY_MAX_BULK (64u << 10)
#define REPLY_MAX_BYTES (1u << 20)
/* Command buffer memory kept between batches; one huge batch's is given back. */
#define WBUF_KEEP (256u << 10)

enum { ITEM_PUBLISH, ITEM_LOOKUP };

typedef struct {
  uint8_t kind;
  uint8_t vlen;
  unsigned node;
  unsigned owner;
  uint64_t cookie;
  uint8_t trace_id[16];
  char value[TT_BUS_VALUE_MAX]; /* encoded by the caller, so bad keeps are refused at publish */
} item_t;

typedef struct {
  item_t *v;
  size_t n, cap;
} itemvec_t;

/* One Redis node. Owned by the bus thread except host, port and name, immutable after new. */
typedef struct {
  char *host;
  int port;
  char *name;       /* "host:port" made JSON-safe for logs */
  tt_bus_conn_t *c; /* NULL while down */
  bool ever_up;
  bool logged_down; /* one log line per state change, not per failed attempt */
  uint32_t backoff_ms;
  uint64_t next_attempt_ns;
} node_t;

typedef struct {
  tt_bus_t base; /* first, so tt_bus_t * converts */

  /* Immutable after tt__bus_redis_new. */
  node_t *nodes;
  size_t nnodes;
  char *username, *password;
  tt_bus_tls_t *tls; /* NULL: plain TCP */
  char prefix[PREFIX_MAX + 1];
  size_t prefix_len;
  char ttl[16];
  uint32_t timeout_ms, flush_ms, backoff_min_ms, backoff_max_ms;
  size_t queue_limit;
  tt_bus_answer_fn answer;
  void *answer_ctx;
  pthread_t thread;

  /* Guarded by mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  itemvec_t q;
  bool stopping;
  tt_bus_stats_t st;

  /* Set once by free (0 before): the bus thread reads it during I/O to cut its waits short. */
  _Atomic uint64_t stop_deadline_ns;

  /* Bus thread only. */
  itemvec_t work;
  tt_bus_answer_t *ans;
  item_t **pubs, **lks;
  size_t sel_cap;
  char *keys; /* MGET_CHUNK keys of prefix_len + 32 bytes */
  const char *argv[1 + MGET_CHUNK];
  size_t argvlen[1 + MGET_CHUNK];
  tt_bus_stats_t d; /* counters since the last merge into st */
  uint64_t rng;
  /* The commands of the batch being built, then written whole. */
  tt_buf_t wbuf;
  /* Bytes read from the node being served: rbuf[roff..rlen) are not parsed yet. A batch's
   * replies end exactly at its last reply, so anything left over is a protocol error. */
  tt_resp_parser_t rp;
  size_t roff, rlen;
  char why[160]; /* the last I/O or protocol failure, for the node's log line */
  uint8_t rbuf[16384];
} bus_t;

static const uint64_t rtt_bounds_us[TT_BUS_RTT_BUCKETS] = TT_BUS_RTT_BOUNDS_US;

static uint64_t now_ns(void) {
  return tt__bus_now_ns();
}

static struct timespec ns_to_ts(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  return ts;
}

static bool id_is_zero(const uint8_t id[16]) {
  uint8_t acc = 0;
  for (int i = 0; i < 16; i++)
    acc |= id[i];
  return acc == 0;
}

/* Log values must be JSON-safe (log.h): anything that could end or escape the string goes. */
static void json_safe(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  for (; src[0] != '\0' && n + 1 < cap; src++) {
    unsigned char c = (unsigned char)*src;
    dst[n++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
  }
  dst[n] = '\0';
}

static void write_key(const bus_t *b, const uint8_t id[16], char *out) {
  memcpy(out, b->prefix, b->prefix_len);
  for (int i = 0; i < 16; i++) {
    out[b->prefix_len + 2 * (size_t)i] = "0123456789abcdef"[id[i] >> 4];
    out[b->prefix_len + 2 * (size_t)i + 1] = "0123456789abcdef"[id[i] & 0xf];
  }
}

/* ---- Caller side ------------------------------------------------------------------------- */

/* Appends under b->mu. Growing doubles up to queue_limit; it happens only until the two
 * swapped vectors reach the working size. */
static int enqueue_locked(bus_t *b, const item_t *it) {
  if (b->q.n >= b->queue_limit)
    return -EAGAIN;
  if (b->q.n == b->q.cap) {
    size_t cap = b->q.cap < QUEUE_MIN_CAP ? QUEUE_MIN_CAP : b->q.cap * 2;
    if (cap > b->queue_limit)
      cap = b->queue_limit;
    item_t *v = realloc(b->q.v, cap * sizeof *v);
    if (v == NULL)
      return -EAGAIN;
    b->q.v = v;
    b->q.cap = cap;
  }
  b->q.v[b->q.n++] = *it;
  /* Only the empty to non-empty transition needs a wake-up: the bus thread checks the queue
   * before every wait. */
  if (b->q.n == 1)
    pthread_cond_signal(&b->cv);
  return 0;
}

static int redis_publish(tt_bus_t *base, const tt_bus_keep_t *k) {
  bus_t *b = (bus_t *)base;
  if (id_is_zero(k->trace_id))
    return -EINVAL;
  item_t it;
  int n = tt__bus_value_encode(k, it.value, sizeof it.value);
  if (n < 0)
    return -EINVAL;
  it.kind = ITEM_PUBLISH;
  it.vlen = (uint8_t)n;
  it.node = tt__bus_node_of(k->trace_id, b->nnodes);
  it.owner = 0;
  it.cookie = 0;
  memcpy(it.trace_id, k->trace_id, 16);

  pthread_mutex_lock(&b->mu);
  int rc = b->stopping ? -ECANCELED : enqueue_locked(b, &it);
  if (rc < 0)
    b->st.publish_dropped++;
  pthread_mutex_unlock(&b->mu);
  return rc;
}

static int redis_lookup(tt_bus_t *base, unsigned owner, const uint8_t trace_id[16],
                        uint64_t cookie) {
  bus_t *b = (bus_t *)base;
  if (id_is_zero(trace_id))
    return -EINVAL;
  item_t it;
  it.kind = ITEM_LOOKUP;
  it.vlen = 0;
  it.node = tt__bus_node_of(trace_id, b->nnodes);
  it.owner = owner;
  it.cookie = cookie;
  memcpy(it.trace_id, trace_id, 16);

  pthread_mutex_lock(&b->mu);
  int rc = b->stopping ? -ECANCELED : enqueue_locked(b, &it);
  if (rc < 0)
    b->st.lookups_refused++;
  pthread_mutex_unlock(&b->mu);
  return rc;
}

static void redis_stats(tt_bus_t *base, tt_bus_stats_t *out) {
  bus_t *b = (bus_t *)base;
  pthread_mutex_lock(&b->mu);
  *out = b->st;
  pthread_mutex_unlock(&b->mu);
}

/* ---- Bus thread: I/O helpers ------------------------------------------------------------- */

static uint64_t batch_deadline(bus_t *b) {
  uint64_t d = now_ns() + (uint64_t)b->timeout_ms * 1000000ull;
  uint64_t stop = atomic_load(&b->stop_deadline_ns);
  return stop != 0 && stop < d ? stop : d;
}

/* Encodes one command into the batch's buffer; bytes_sent counts exactly what is written. */
static int append_argv(bus_t *b, size_t argc, const char *const *argv, const size_t *lens) {
  long len = tt__resp_encode(&b->wbuf, argc, argv, lens);
  if (len < 0)
    return -ENOMEM;
  b->d.commands++;
  b->d.bytes_sent += (uint64_t)len;
  return 0;
}

static int write_all(bus_t *b, node_t *n, uint64_t deadline) {
  int rc = tt__bus_conn_write(n->c, b->wbuf.data, b->wbuf.len, deadline);
  tt__buf_reset(&b->wbuf);
  tt__buf_shrink(&b->wbuf, WBUF_KEEP);
  if (rc < 0)
    snprintf(b->why, sizeof b->why, "%s", tt__bus_conn_error(n->c));
  return rc;
}

/* Reads until the parser holds one complete reply (b->rp.nodes). Bytes past it stay in rbuf for
 * the next reply of the batch. bytes_received counts every byte read, exactly (TLS records are
 * counted as the RESP bytes they carry). */
static int read_reply(bus_t *b, node_t *n, uint64_t deadline) {
  for (;;) {
    if (b->roff < b->rlen) {
      size_t used = 0;
      int rc = tt__resp_feed(&b->rp, b->rbuf + b->roff, b->rlen - b->roff, &used);
      b->roff += used;
      if (rc == 1)
        return 0;
      if (rc < 0) {
        snprintf(b->why, sizeof b->why, "%s",
                 rc == -E2BIG    ? "reply larger than this client accepts"
                 : rc == -ENOMEM ? "out of memory for a reply"
                                 : "protocol error: not a RESP2 reply");
        return -ENOTCONN;
      }
    }
    long got = tt__bus_conn_read(n->c, b->rbuf, sizeof b->rbuf, deadline);
    if (got < 0) {
      snprintf(b->why, sizeof b->why, "%s", tt__bus_conn_error(n->c));
      return (int)got;
    }
    b->d.bytes_received += (uint64_t)got;
    b->roff = 0;
    b->rlen = (size_t)got;
  }
}

/* The single reply in the parser is the status line "+OK". */
static bool reply_is_ok(const bus_t *b) {
  return b->rp.nodes[0].type == TT_RESP_STATUS && strcmp(tt__resp_str(&b->rp, 0), "OK") == 0;
}

/* ---- Bus thread: node state -------------------------------------------------------------- */

static void schedule_retry(bus_t *b, node_t *n) {
  if (n->backoff_ms == 0)
    n->backoff_ms = b->backoff_min_ms;
  else
    n->backoff_ms = n->backoff_ms > b->backoff_max_ms / 2 ? b->backoff_max_ms : n->backoff_ms * 2;
  /* Jitter over the upper half of the backoff keeps collectors that lost a node together from
   * reconnecting in lockstep, while the wait still grows. xorshift64: bus thread only. */
  b->rng ^= b->rng << 13;
  b->rng ^= b->rng >> 7;
  b->rng ^= b->rng << 17;
  uint64_t half = n->backoff_ms / 2;
  uint64_t delay_ms = n->backoff_ms - half + b->rng % (half + 1);
  n->next_attempt_ns = now_ns() + delay_ms * 1000000ull;
}

static void node_down(bus_t *b, node_t *n, int status, const char *why) {
  if (!n->logged_down) {
    char safe[160];
    json_safe(safe, sizeof safe, why);
    TT_LOG(TT_LOG_WARN, "decision bus node down", "\"node\":\"%s\",\"status\":%d,\"error\":\"%s\"",
           n->name, status, safe);
    n->logged_down = true;
  }
  tt__bus_conn_close(n->c);
  n->c = NULL;
  /* Whatever was half read belonged to the closed stream. */
  tt__resp_parser_reset(&b->rp);
  b->roff = b->rlen = 0;
  b->d.errors++;
  /* A write to a peer that closed raises SIGPIPE; it is blocked on this thread (see
   * tt__bus_redis_new) and left pending, so consume it here to keep the thread's state clean. */
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe, NULL, &zero) > 0) {
  }
  schedule_retry(b, n);
}

static void node_connect(bus_t *b, node_t *n) {
  uint64_t deadline = now_ns() + (uint64_t)b->timeout_ms * 1000000ull;
  char why[160];
  int rc = tt__bus_conn_open(n->host, n->port, b->tls, deadline, &n->c, why, sizeof why);
  if (rc < 0) {
    n->c = NULL;
    node_down(b, n, rc, why);
    return;
  }
  tt__resp_parser_reset(&b->rp);
  b->roff = b->rlen = 0;
  /* A node is up only once it answered a command: AUTH, or PING without a password. A TCP or
   * TLS connect alone proves too little: under TLS 1.3 a server that refuses the client
   * certificate says so after the handshake, and a server that wants a password only at the
   * first command. Either would otherwise look up, fail its first batch, reconnect at once
   * (the backoff starts over after a success) and log twice per attempt. */
  const char *argv[3] = {"AUTH", NULL, NULL};
  size_t lens[3] = {4, 0, 0};
  size_t argc = 1;
  if (b->password != NULL) {
    if (b->username != NULL) {
      argv[argc] = b->username;
      lens[argc++] = strlen(b->username);
    }
    argv[argc] = b->password;
    lens[argc++] = strlen(b->password);
  } else {
    argv[0] = "PING";
  }
  tt__buf_reset(&b->wbuf);
  b->why[0] = '\0';
  rc = append_argv(b, argc, argv, lens);
  if (rc == 0)
    rc = write_all(b, n, deadline);
  if (rc == 0)
    rc = read_reply(b, n, deadline);
  if (rc == 0 && b->roff != b->rlen) {
    snprintf(b->why, sizeof b->why, "protocol error: bytes after the %s reply", argv[0]);
    rc = -ENOTCONN;
  }
  if (rc < 0) {
    node_down(b, n, rc, b->why[0] != '\0' ? b->why : "no answer");
    return;
  }
  const tt_resp_node_t *r = &b->rp.nodes[0];
  const char *want = b->password != NULL ? "OK" : "PONG";
  if (r->type != TT_RESP_STATUS || strcmp(tt__resp_str(&b->rp, 0), want) != 0) {
    snprintf(why, sizeof why, "%s refused: %.100s", argv[0],
             r->type == TT_RESP_ERROR || r->type == TT_RESP_STATUS ? tt__resp_str(&b->rp, 0) : "?");
    node_down(b, n, -EACCES, why);
    return;
  }
  if (n->ever_up)
    b->d.reconnects++;
  TT_LOG(TT_LOG_INFO, n->ever_up ? "decision bus node reconnected" : "decision bus node connected",
         "\"node\":\"%s\",\"tls\":%s", n->name, b->tls != NULL ? "true" : "false");
  n->ever_up = true;
  n->logged_down = false;
  n->backoff_ms = 0;
}

static void reconnect_due(bus_t *b) {
  if (atomic_load(&b->stop_deadline_ns) != 0)
    return;
  uint64_t now = now_ns();
  for (size_t i = 0; i < b->nnodes; i++)
    if (b->nodes[i].c == NULL && b->nodes[i].next_attempt_ns <= now)
      node_connect(b, &b->nodes[i]);
}

/* ---- Bus thread: batches ----------------------------------------------------------------- */

static void merge_stats_locked(bus_t *b);

static void deliver(bus_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    b->d.lookups++;
    if (b->ans[i].status < 0)
      b->d.lookups_failed++;
    else if (b->ans[i].found)
      b->d.lookups_found++;
  }
  if (n == 0)
    return;
  /* Merged before the callback so that a caller who saw an answer sees it counted too. */
  pthread_mutex_lock(&b->mu);
  merge_stats_locked(b);
  pthread_mutex_unlock(&b->mu);
  b->answer(b->answer_ctx, b->ans, n);
}

static void record_rtt(bus_t *b, uint64_t ns) {
  uint64_t us = ns / 1000;
  size_t i = 0;
  while (i + 1 < TT_BUS_RTT_BUCKETS && us > rtt_bounds_us[i])
    i++;
  b->d.rtt_us_buckets[i]++;
  b->d.rtt_us_sum += us;
  b->d.rtt_count++;
}

/* Reads the MGET reply in the parser into the answers of its chunk. 0, or a negative status
 * that takes the node down (error reply, wrong shape). A value that does not decode is not the
 * node's fault: that lookup alone answers -EPROTO. The parser's depth limit of 1 makes an array
 * of n values exactly n + 1 nodes. */
static int take_mget(bus_t *b, tt_bus_answer_t *a, size_t n) {
  const tt_resp_parser_t *p = &b->rp;
  if (p->nodes[0].type != TT_RESP_ARRAY || p->nodes[0].len != n || p->nnodes != n + 1)
    return -ENOTCONN;
  for (size_t i = 0; i < n; i++) {
    const tt_resp_node_t *e = &p->nodes[1 + i];
    if (e->type == TT_RESP_NIL) {
      a[i].status = 0;
    } else if (e->type == TT_RESP_BULK &&
               tt__bus_value_decode(tt__resp_str(p, 1 + i), e->len, &a[i].keep) == 0) {
      a[i].status = 0;
      a[i].found = true;
      memcpy(a[i].keep.trace_id, a[i].trace_id, 16);
    } else if (e->type == TT_RESP_BULK) {
      a[i].status = -EPROTO;
      b->d.errors++;
    } else {
      return -ENOTCONN;
    }
  }
  return 0;
}

static bool grow_scratch(bus_t *b) {
  size_t need = b->work.n;
  if (need > b->sel_cap) {
    item_t **p = realloc(b->pubs, need * sizeof *p);
    if (p != NULL)
      b->pubs = p;
    item_t **l = realloc(b->lks, need * sizeof *l);
    if (l != NULL)
      b->lks = l;
    tt_bus_answer_t *a = realloc(b->ans, need * sizeof *a);
    if (a != NULL)
      b->ans = a;
    if (p == NULL || l == NULL || a == NULL)
      return false;
    b->sel_cap = need;
  }
  return true;
}

/* Sends node ni's share of the taken work as one pipelined batch and answers its lookups.
 * final (from free): lookups are not sent but answered -ECANCELED; publishes get one try. */
static void node_batch(bus_t *b, size_t ni, bool final) {
  node_t *n = &b->nodes[ni];
  size_t np = 0, nl = 0;
  for (size_t i = 0; i < b->work.n; i++) {
    item_t *it = &b->work.v[i];
    if (it->node != ni)
      continue;
    if (it->kind == ITEM_PUBLISH)
      b->pubs[np++] = it;
    else
      b->lks[nl++] = it;
  }
  if (np == 0 && nl == 0)
    return;
  int fail = final ? -ECANCELED : 0;
  for (size_t i = 0; i < nl; i++) {
    tt_bus_answer_t *a = &b->ans[i];
    memset(a, 0, sizeof *a);
    memcpy(a->trace_id, b->lks[i]->trace_id, 16);
    a->cookie = b->lks[i]->cookie;
    a->owner = b->lks[i]->owner;
    a->status = fail != 0 ? fail : 1; /* 1: not answered yet */
  }
  if (n->c == NULL) {
    for (size_t i = 0; i < nl; i++)
      if (b->ans[i].status > 0)
        b->ans[i].status = -ENOTCONN;
    b->d.publish_dropped += np;
    deliver(b, nl);
    return;
  }
  size_t nsend = final ? 0 : nl;
  if (np == 0 && nsend == 0) {
    deliver(b, nl);
    return;
  }

  int rc = 0;
  size_t klen = b->prefix_len + 32;
  char key[PREFIX_MAX + 32];
  tt__buf_reset(&b->wbuf);
  for (size_t i = 0; i < np && rc == 0; i++) {
    write_key(b, b->pubs[i]->trace_id, key);
    const char *argv[6] = {"SET", key, b->pubs[i]->value, "EX", b->ttl, "NX"};
    size_t lens[6] = {3, klen, b->pubs[i]->vlen, 2, strlen(b->ttl), 2};
    rc = append_argv(b, 6, argv, lens);
    b->d.keys++;
  }
  for (size_t off = 0; off < nsend && rc == 0; off += MGET_CHUNK) {
    size_t m = nsend - off < MGET_CHUNK ? nsend - off : MGET_CHUNK;
    b->argv[0] = "MGET";
    b->argvlen[0] = 4;
    for (size_t j = 0; j < m; j++) {
      char *k = b->keys + j * klen;
      write_key(b, b->lks[off + j]->trace_id, k);
      b->argv[1 + j] = k;
      b->argvlen[1 + j] = klen;
    }
    rc = append_argv(b, 1 + m, b->argv, b->argvlen);
    b->d.keys += m;
  }

  b->d.batches++;
  uint64_t deadline = batch_deadline(b);
  uint64_t t0 = now_ns();
  /* why: the first failure's description, for the one log line of the state change. */
  char why[sizeof b->why] = "";
  b->why[0] = '\0';
  if (rc == 0)
    rc = write_all(b, n, deadline);
  size_t acked = 0;
  while (acked < np && rc == 0) {
    rc = read_reply(b, n, deadline);
    if (rc < 0)
      break;
    /* "OK": this collector is the first keeper; nil: an earlier keep holds the key (NX). */
    uint8_t t = b->rp.nodes[0].type;
    if (reply_is_ok(b)) {
      b->d.published++;
      acked++;
    } else if (t == TT_RESP_NIL) {
      b->d.published++;
      b->d.publish_existing++;
      acked++;
    } else {
      snprintf(why, sizeof why, "unexpected SET reply: %.90s",
               t == TT_RESP_ERROR ? tt__resp_str(&b->rp, 0) : "wrong type");
      rc = -ENOTCONN;
    }
  }
  for (size_t off = 0; off < nsend && rc == 0; off += MGET_CHUNK) {
    size_t m = nsend - off < MGET_CHUNK ? nsend - off : MGET_CHUNK;
    rc = read_reply(b, n, deadline);
    if (rc < 0)
      break;
    rc = take_mget(b, b->ans + off, m);
    if (rc < 0)
      snprintf(why, sizeof why, "unexpected MGET reply: %.90s",
               b->rp.nodes[0].type == TT_RESP_ERROR ? tt__resp_str(&b->rp, 0) : "wrong shape");
  }
  if (rc == 0 && b->roff != b->rlen) {
    snprintf(why, sizeof why, "protocol error: bytes after the batch's replies");
    rc = -ENOTCONN;
  }
  if (rc == 0) {
    record_rtt(b, now_ns() - t0);
  } else {
    if (why[0] == '\0')
      snprintf(why, sizeof why, "%s",
               b->why[0] != '\0'  ? b->why
               : rc == -ETIMEDOUT ? "timed out"
                                  : "connection failed");
    node_down(b, n, rc, why);
    b->d.publish_dropped += np - acked;
    for (size_t i = 0; i < nl; i++)
      if (b->ans[i].status > 0)
        b->ans[i].status = rc;
  }
  deliver(b, nl);
}

/* ---- Bus thread: main loop --------------------------------------------------------------- */

static void merge_stats_locked(bus_t *b) {
  tt_bus_stats_t *s = &b->st, *d = &b->d;
  s->published += d->published;
  s->publish_dropped += d->publish_dropped;
  s->publish_existing += d->publish_existing;
  s->lookups += d->lookups;
  s->lookups_found += d->lookups_found;
  s->lookups_failed += d->lookups_failed;
  s->errors += d->errors;
  s->reconnects += d->reconnects;
  s->commands += d->commands;
  s->keys += d->keys;
  s->bytes_sent += d->bytes_sent;
  s->bytes_received += d->bytes_received;
  s->batches += d->batches;
  for (size_t i = 0; i < TT_BUS_RTT_BUCKETS; i++)
    s->rtt_us_buckets[i] += d->rtt_us_buckets[i];
  s->rtt_us_sum += d->rtt_us_sum;
  s->rtt_count += d->rtt_count;
  memset(d, 0, sizeof *d);
  unsigned up = 0;
  for (size_t i = 0; i < b->nnodes; i++)
    up += b->nodes[i].c != NULL;
  s->nodes_up = up;
}

static uint64_t next_retry_ns(const bus_t *b) {
  uint64_t t = UINT64_MAX;
  for (size_t i = 0; i < b->nnodes; i++)
    if (b->nodes[i].c == NULL && b->nodes[i].next_attempt_ns < t)
      t = b->nodes[i].next_attempt_ns;
  return t;
}

/* Waits for work, a due reconnect or free, then the batching window; takes the queue. Returns
 * true when the bus is stopping (the taken work is then the last). */
static bool take_work(bus_t *b) {
  pthread_mutex_lock(&b->mu);
  merge_stats_locked(b);
  for (;;) {
    if (b->stopping || b->q.n > 0)
      break;
    uint64_t now = now_ns(), retry = next_retry_ns(b);
    if (retry <= now)
      break;
    uint64_t until = retry - now < IDLE_WAIT_NS ? retry : now + IDLE_WAIT_NS;
    struct timespec ts = ns_to_ts(until);
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
  }
  if (!b->stopping && b->q.n > 0 && b->flush_ms > 0) {
    /* The batching window: producers do not signal a non-empty queue, so only free (or the
     * window's end) wakes this wait. */
    struct timespec ts = ns_to_ts(now_ns() + (uint64_t)b->flush_ms * 1000000ull);
    while (!b->stopping && pthread_cond_timedwait(&b->cv, &b->mu, &ts) != ETIMEDOUT) {
    }
  }
  itemvec_t t = b->work;
  b->work = b->q;
  b->q = t;
  b->q.n = 0;
  bool stop = b->stopping;
  pthread_mutex_unlock(&b->mu);
  return stop;
}

static void *bus_main(void *arg) {
  bus_t *b = arg;
  for (;;) {
    bool stop = take_work(b);
    if (!stop)
      reconnect_due(b);
    if (!grow_scratch(b)) {
      /* No memory for this turn's scratch arrays: fail the taken work item by item rather than
       * keep it, since an accepted lookup must always be answered. */
      for (size_t i = 0; i < b->work.n; i++) {
        item_t *it = &b->work.v[i];
        if (it->kind == ITEM_PUBLISH) {
          b->d.publish_dropped++;
          continue;
        }
        tt_bus_answer_t a;
        memset(&a, 0, sizeof a);
        memcpy(a.trace_id, it->trace_id, 16);
        a.cookie = it->cookie;
        a.owner = it->owner;
        a.status = stop ? -ECANCELED : -ENOMEM;
        b->d.lookups++;
        b->d.lookups_failed++;
        b->answer(b->answer_ctx, &a, 1);
      }
    } else {
      for (size_t i = 0; i < b->nnodes; i++)
        node_batch(b, i, stop);
    }
    b->work.n = 0;
    if (stop)
      break;
  }
  for (size_t i = 0; i < b->nnodes; i++) {
    tt__bus_conn_close(b->nodes[i].c);
    b->nodes[i].c = NULL;
  }
  return NULL;
}

/* ---- Construction and teardown ----------------------------------------------------------- */

static void destroy(bus_t *b) {
  for (size_t i = 0; b->nodes != NULL && i < b->nnodes; i++) {
    free(b->nodes[i].host);
    free(b->nodes[i].name);
  }
  free(b->nodes);
  free(b->username);
  free(b->password);
  free(b->q.v);
  free(b->work.v);
  free(b->ans);
  free(b->pubs);
  free(b->lks);
  free(b->keys);
  tt__buf_free(&b->wbuf);
  tt__resp_parser_free(&b->rp);
  tt__bus_tls_free(b->tls);
  free(b);
}

static void redis_free(tt_bus_t *base) {
  bus_t *b = (bus_t *)base;
  pthread_mutex_lock(&b->mu);
  b->stopping = true;
  atomic_store(&b->stop_deadline_ns, now_ns() + (uint64_t)b->timeout_ms * 1000000ull);
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
  pthread_join(b->thread, NULL);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  destroy(b);
}

static const tt_bus_vt_t redis_vt = {redis_publish, redis_lookup, redis_stats, redis_free};

/* "host:port" or "[v6]:port"; a bare IPv6 address without brackets is ambiguous and refused. */
static int parse_endpoint(const char *s, node_t *n) {
  const char *host = s, *host_end, *port;
  if (s[0] == '[') {
    host = s + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL || host_end[1] != ':')
      return -EINVAL;
    port = host_end + 2;
  } else {
    host_end = strrchr(s, ':');
    if (host_end == NULL || memchr(s, ':', (size_t)(host_end - s)) != NULL)
      return -EINVAL;
    port = host_end + 1;
  }
  if (host_end == host)
    return -EINVAL;
  long p = 0;
  size_t nd = 0;
  for (; port[nd] != '\0'; nd++) {
    if (port[nd] < '0' || port[nd] > '9' || nd == 5)
      return -EINVAL;
    p = p * 10 + (port[nd] - '0');
  }
  if (nd == 0 || p < 1 || p > 65535)
    return -EINVAL;
  n->port = (int)p;
  n->host = strndup(host, (size_t)(host_end - host));
  char safe[128];
  json_safe(safe, sizeof safe, s);
  n->name = strdup(safe);
  return n->host != NULL && n->name != NULL ? 0 : -ENOMEM;
}

int tt__bus_redis_new(const tt_bus_redis_opts_t *o, tt_bus_t **out) {
  *out = NULL;
  if (o == NULL || o->answer == NULL || o->endpoints == NULL || o->nendpoints == 0 ||
      o->nendpoints > 4096)
    return -EINVAL;
  const char *prefix = o->key_prefix != NULL ? o->key_prefix : "tt:k:";
  if (strlen(prefix) > PREFIX_MAX)
    return -EINVAL;
  uint32_t bmin = o->backoff_min_ms != 0 ? o->backoff_min_ms : 100;
  uint32_t bmax = o->backoff_max_ms != 0 ? o->backoff_max_ms : 5000;
  if (bmin > bmax)
    return -EINVAL;

  bus_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  b->base.vt = &redis_vt;
  b->nnodes = o->nendpoints;
  b->nodes = calloc(b->nnodes, sizeof *b->nodes);
  if (b->nodes == NULL) {
    destroy(b);
    return -ENOMEM;
  }
  for (size_t i = 0; i < b->nnodes; i++) {
    int rc = o->endpoints[i] != NULL ? parse_endpoint(o->endpoints[i], &b->nodes[i]) : -EINVAL;
    if (rc < 0) {
      destroy(b);
      return rc;
    }
  }
  bool auth = o->password != NULL && o->password[0] != '\0';
  if (auth) {
    b->password = strdup(o->password);
    b->username = o->username != NULL ? strdup(o->username) : NULL;
    if (b->password == NULL || (o->username != NULL && b->username == NULL)) {
      destroy(b);
      return -ENOMEM;
    }
  }
  b->prefix_len = strlen(prefix);
  memcpy(b->prefix, prefix, b->prefix_len + 1);
  snprintf(b->ttl, sizeof b->ttl, "%u", o->key_ttl_s != 0 ? o->key_ttl_s : 300);
  b->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : 200;
  b->flush_ms = o->flush_interval_ms != 0 ? o->flush_interval_ms : 2;
  b->queue_limit = o->queue_limit != 0 ? o->queue_limit : 65536;
  b->backoff_min_ms = bmin;
  b->backoff_max_ms = bmax;
  b->answer = o->answer;
  b->answer_ctx = o->answer_ctx;
  b->st.nodes = (unsigned)b->nnodes;
  b->rng = now_ns() ^ (uint64_t)(uintptr_t)b ^ 0x9e3779b97f4a7c15ull;
  if (b->rng == 0)
    b->rng = 1;
  b->keys = malloc(MGET_CHUNK * (b->prefix_len + 32));
  if (b->keys == NULL) {
    destroy(b);
    return -ENOMEM;
  }
  tt_resp_limits_t lim = {.max_bulk = REPLY_MAX_BULK,
                          .max_elements = MGET_CHUNK,
                          .max_depth = 1,
                          .max_nodes = MGET_CHUNK + 1,
                          .max_bytes = REPLY_MAX_BYTES};
  tt__resp_parser_init(&b->rp, &lim);
  if (o->tls) {
    tt_bus_tls_opts_t to = {o->tls_ca_file, o->tls_cert_file, o->tls_key_file, o->tls_server_name,
                            o->tls_insecure};
    char why[256], safe[256];
    int rc = tt__bus_tls_new(&to, &b->tls, why, sizeof why);
    if (rc < 0) {
      json_safe(safe, sizeof safe, why);
      TT_LOG(TT_LOG_ERROR, "decision bus TLS settings refused", "\"error\":\"%s\"", safe);
      destroy(b);
      return rc;
    }
    if (o->tls_insecure)
      TT_LOG(TT_LOG_WARN, "decision bus TLS without verification: for tests only",
             "\"insecure\":%s", "true");
  }

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&b->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&b->mu, NULL);

  /* The bus thread runs with every signal blocked: process signals go to the daemon's threads,
   * and a write to a closed socket yields EPIPE here instead of killing the process when the
   * host did not ignore SIGPIPE. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&b->thread, NULL, bus_main, b);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    destroy(b);
    return -rc;
  }
  *out = &b->base;
  return 0;
}
