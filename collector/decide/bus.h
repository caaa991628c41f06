/* Decision bus: collectors that hold spans of the same traces share their keep decisions.
 *
 * When a collector keeps a trace on evidence the others cannot see (an error span, a slow span,
 * an attribute rule) it publishes {trace id, reason, threshold}. Before a collector finally drops
 * (or ratio-keeps) a trace it looks the trace id up; when found it keeps the trace with the
 * published reason and threshold. The bus is a keyed store, not a broadcast: the cost of each
 * collector grows with the traces it holds, never with the number of collectors.
 *
 * The interface is a small vtable so the decision code can run against a fake in tests and so
 * other stores can be added; the one implementation here is Redis (bus_redis.c).
 *
 * Threading: publish and lookup may be called from any thread (the shard threads); they take
 * one mutex, append to a bounded queue and return, never doing I/O nor waiting on the store.
 * Answers arrive later on the bus's own thread through the answer callback. stats may be called
 * from any thread. free is called once, by the owner, from any thread except the bus's own (so
 * never from the answer callback), after every other call on the bus has returned. */
#ifndef TT_COLLECTOR_DECIDE_BUS_H
#define TT_COLLECTOR_DECIDE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_BUS_REASON_MAX                                                                          \
  40 /* including the NUL; longer reasons are refused with -EINVAL by publish */

/* A keep decision. threshold is the OpenTelemetry consistent-sampling rejection threshold, a
 * 56-bit value (at most 0xffffffffffffff); reason is printable ASCII (0x20..0x7e) without ';',
 * NUL-terminated within TT_BUS_REASON_MAX bytes. Plain value; the caller owns it. */
typedef struct {
  uint8_t trace_id[16];
  uint64_t threshold;
  char reason[TT_BUS_REASON_MAX];
} tt_bus_keep_t;

/* One lookup's answer. Owned by the bus and valid only during the answer callback. */
typedef struct {
  uint8_t trace_id[16];
  uint64_t cookie; /* the caller's, returned unchanged */
  unsigned owner;  /* the caller's (a shard index), returned unchanged */
  /* 0: looked up; negative errno: the bus could not answer (decide locally). -ENOTCONN: the node
   * is down or answered an error; -ETIMEDOUT: the node did not answer within timeout_ms;
   * -EPROTO: the stored value is not one this version understands; -ECANCELED: the bus was
   * freed before the lookup was sent. */
  int status;
  bool found;
  tt_bus_keep_t keep; /* valid when found; keep.trace_id equals trace_id */
} tt_bus_answer_t;

/* Called on the bus's own thread with the answers of one batch (any number, grouped as
 * convenient). Must not block long, and must not call free on this bus; it may call publish and
 * lookup. Every accepted lookup is answered exactly once, at the latest from free. */
typedef void (*tt_bus_answer_fn)(void *ctx, const tt_bus_answer_t *a, size_t n);

/* Upper bounds, in microseconds, of the round-trip histogram buckets; the last bucket has no
 * upper bound. Each bucket counts only the batches that fell in it (not cumulative): sum the
 * buckets from the first up to i to get the Prometheus-style cumulative count for bound i. */
#define TT_BUS_RTT_BUCKETS 12
#define TT_BUS_RTT_BOUNDS_US                                                                       \
  { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, UINT64_MAX }

/* Counters since the bus was created; a snapshot copied out by stats. */
typedef struct {
  uint64_t published,  /* publishes the store acknowledged (first keeper or not) */
      publish_dropped, /* queue full or bus down: never reached the store */
      lookups,         /* lookups answered, whatever their status */
      lookups_found,   /* answered with status 0 and found */
      lookups_failed,  /* answered with status < 0 */
      errors,          /* I/O or protocol errors, failed connects and failed AUTH included */
      reconnects,      /* successful connects to a node after its first one */
      commands,        /* Redis commands sent (SET, MGET, and on each connect AUTH, or PING
                          without a password) */
      keys,            /* keys written + read */
      bytes_sent,      /* RESP bytes of the commands sent, exactly */
      bytes_received,  /* RESP bytes of the replies received, exactly (every byte read; over
                          TLS the bytes carried, not the TLS records) */
      batches;         /* pipelined batches sent to a node, completed or failed */
  uint64_t rtt_us_buckets[TT_BUS_RTT_BUCKETS]; /* bounds in TT_BUS_RTT_BOUNDS_US */
  uint64_t rtt_us_sum, rtt_count;              /* completed batches only, from first write to
                                                  last reply read (CLOCK_MONOTONIC) */
  unsigned nodes, nodes_up;
  /* Added fields. */
  uint64_t publish_existing; /* publishes the store refused because an earlier keep held the key
                                (counted in published too) */
  uint64_t lookups_refused;  /* lookups refused with -EAGAIN (queue full) or -ECANCELED */
} tt_bus_stats_t;

typedef struct tt_bus_s tt_bus_t;

typedef struct {
  /* 0, -EINVAL (reason not NUL-terminated within TT_BUS_REASON_MAX, not printable ASCII or with
   * ';', threshold above 56 bits, all-zero trace id), -EAGAIN (queue full; counted in
   * publish_dropped) or -ECANCELED (the bus is being freed). Never blocks on I/O. */
  int (*publish)(tt_bus_t *b, const tt_bus_keep_t *k);
  /* 0 when queued (one answer will follow), -EINVAL (all-zero trace id), -EAGAIN (queue full)
   * or -ECANCELED. Never blocks on I/O. */
  int (*lookup)(tt_bus_t *b, unsigned owner, const uint8_t trace_id[16], uint64_t cookie);
  void (*stats)(tt_bus_t *b, tt_bus_stats_t *out);
  void (*free)(tt_bus_t *b);
} tt_bus_vt_t;

struct tt_bus_s {
  const tt_bus_vt_t *vt;
};

static inline int tt__bus_publish(tt_bus_t *b, const tt_bus_keep_t *k) {
  return b->vt->publish(b, k);
}

static inline int tt__bus_lookup(tt_bus_t *b, unsigned owner, const uint8_t trace_id[16],
                                 uint64_t cookie) {
  return b->vt->lookup(b, owner, trace_id, cookie);
}

static inline void tt__bus_stats(tt_bus_t *b, tt_bus_stats_t *out) {
  b->vt->stats(b, out);
}

/* NULL is a no-op. */
static inline void tt__bus_free(tt_bus_t *b) {
  if (b != NULL)
    b->vt->free(b);
}

/* Redis bus options. Strings are copied by tt__bus_redis_new; the struct may be freed after. */
typedef struct {
  const char *const *endpoints; /* "host:port" each ("[v6addr]:port" too); copied */
  size_t nendpoints;
  const char *username;       /* NULL: AUTH <password> only (Redis 6 ACL form when set) */
  const char *password;       /* NULL or "": no AUTH */
  const char *key_prefix;     /* NULL: "tt:k:" */
  uint32_t key_ttl_s;         /* 0: 300 */
  uint32_t timeout_ms;        /* connect and each batch's round trip; 0: 200 */
  uint32_t flush_interval_ms; /* batching window; 0: 2 */
  size_t queue_limit;         /* queued publishes + lookups; 0: 65536. Past it publish/lookup return
                                 -EAGAIN and count */
  uint32_t backoff_min_ms, backoff_max_ms; /* reconnect backoff with jitter; 0: 100 / 5000 */
  tt_bus_answer_fn answer;                 /* required */
  void *answer_ctx;
  /* Added fields: TLS to every node (OpenSSL). The files are read by tt__bus_redis_new. */
  bool tls;
  const char *tls_ca_file;     /* PEM CA bundle; NULL or "": the system's trust store */
  const char *tls_cert_file;   /* client certificate (PEM chain) for mutual TLS, with its */
  const char *tls_key_file;    /* private key (PEM): both or neither; NULL or "": none */
  const char *tls_server_name; /* NULL or "": each endpoint's host. The name (or IP address)
                                  the server certificate must carry, sent as SNI when a name */
  bool tls_insecure;           /* verify neither the certificate nor the name: for tests only,
                                  since anyone on the path can then read the bus */
} tt_bus_redis_opts_t;

/* Starts the bus thread and returns at once: it succeeds even when no Redis is reachable yet
 * (the thread keeps trying, and lookups are answered with a negative status meanwhile).
 * -EINVAL for bad options (no endpoint, endpoint without a port or with a bad one, no answer
 * callback, a key prefix over 64 bytes, backoff_min above backoff_max, with tls a CA,
 * certificate or key file that does not load, a certificate without its key or the reverse:
 * logged with the reason), -ENOMEM, or a negative errno from pthread_create. The caller frees
 * *out with tt__bus_free.
 *
 * Sharding: a trace lives on node tt__bus_node_of(trace_id, nendpoints), a pure function of the
 * id and the number of endpoints, so every collector configured with the same endpoint list in
 * the same order picks the same node. Keys are <key_prefix><32 lowercase hex digits of the id>;
 * publish is SET key value EX key_ttl_s NX (the first keeper wins), lookup is MGET, at most 512
 * keys per command, one pipelined batch per node and turn.
 *
 * Waiting design: the bus thread serves the nodes one after the other, each connect (the TLS
 * handshake included) and each batch bounded by timeout_ms (non-blocking sockets and poll). A
 * connect to an unreachable (not refusing) node therefore holds the other nodes' batches for up
 * to timeout_ms each backoff period; host names are resolved with getaddrinfo, which is not
 * bounded, so configure addresses where that matters. The protocol is RESP2 (resp.h), over
 * plain TCP or TLS (bus_conn.h). */
int tt__bus_redis_new(const tt_bus_redis_opts_t *o, tt_bus_t **out);

/* Node of a trace among n (n > 0): the first 8 bytes of the id read little-endian, through the
 * splitmix64 finalizer (so ids whose first bytes are a timestamp or a counter still spread),
 * modulo n. Stable across versions: changing it would split the bus of a mixed-version fleet. */
static inline unsigned tt__bus_node_of(const uint8_t trace_id[16], size_t n) {
  uint64_t z = 0;
  for (int i = 7; i >= 0; i--)
    z = (z << 8) | trace_id[i];
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  z ^= z >> 31;
  return (unsigned)(z % n);
}

/* Value codec. The stored value is text, small and versioned:
 *
 *   1;<threshold>;<reason>
 *
 * "1" is the format version. <threshold> is the 56-bit threshold in lowercase hex, 1 to 14
 * digits (the encoder writes no leading zeros; the decoder accepts them). <reason> is 0 to 39
 * printable ASCII characters (0x20..0x7e) other than ';'. Anything else, another version
 * included, does not decode: a newer writer's values are refused, not misread.
 * Encoded values are at most TT_BUS_VALUE_MAX - 1 bytes. */
#define TT_BUS_VALUE_MAX 64
#define TT_BUS_THRESHOLD_MAX UINT64_C(0xffffffffffffff)

/* Writes the value and a NUL into out; returns its length (without the NUL), -ENOSPC when cap
 * cannot hold it and the NUL, or -EINVAL for a keep that cannot be encoded (see tt_bus_keep_t).
 * k->trace_id is not encoded (it is in the key). Pure; any thread. */
int tt__bus_value_encode(const tt_bus_keep_t *k, char *out, size_t cap);

/* Parses len bytes (no NUL needed) into k->threshold and k->reason; 0 or -EINVAL, and then k is
 * untouched. k->trace_id is never touched. Pure; any thread. */
int tt__bus_value_decode(const char *v, size_t len, tt_bus_keep_t *k);

#endif
