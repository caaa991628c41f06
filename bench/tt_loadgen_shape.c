/* tt_loadgen's request shape: traces of `per_trace` spans (a root and a binary tree of children
 * under it), `attrs` string attributes a span, spread over `spread` requests of about
 * `request_spans` spans each, out of order: children first, the root in the trace's last
 * fragment, and each trace's fragments rotated over the group's requests so that its root comes
 * first, last or in between.
 *
 * Trace ids: the low 8 bytes are a bijective mix of <connection, counter>, so one run never
 * repeats an id; the high 8 bytes mix the seed with the low ones, so runs with distinct seeds
 * never share an id either (equal low halves would need equal seeds). The collector's ratio
 * policy reads the low 56 bits, which the mix spreads evenly. */
#include "tt_loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire.h"

/* splitmix64's finalizer: a bijection on 64-bit values. */
uint64_t lg_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static const char *const ATTR_KEYS[] = {
    "http.request.method",
    "http.route",
    "url.path",
    "server.address",
    "network.protocol.version",
    "user_agent.original",
    "client.address",
    "http.response.status_code",
};
static const char *const ATTR_VALUES[] = {
    "GET",
    "/api/orders/{id}",
    "/api/orders/12345",
    "orders.internal",
    "1.1",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "10.1.2.3",
    "200",
};
static const char *const CHILD_NAMES[] = {"SELECT orders", "GET inventory", "redis GET",
                                          "POST /payments"};

static int kv_str(tt_buf_t *b, const char *k, const char *v) {
  tt_buf_t any = TT_BUF_INIT, kv = TT_BUF_INIT;
  int rc = tt__buf_append_lenfield(&any, 1, v, strlen(v));
  rc |= tt__buf_append_lenfield(&kv, 1, k, strlen(k));
  rc |= tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  rc |= tt__buf_append_lenfield(b, 9, kv.data, kv.len);
  tt__buf_free(&any);
  tt__buf_free(&kv);
  return rc;
}

int lg_shape_init(lg_shape_t *s, const lg_opts_t *o, unsigned conn) {
  memset(s, 0, sizeof *s);
  s->o = o;
  s->conn = conn;
  unsigned n =
      (unsigned)(((uint64_t)o->request_spans * o->spread + o->per_trace / 2) / o->per_trace);
  s->ntraces = n ? n : 1;
  s->traces = calloc(s->ntraces, sizeof *s->traces);
  if (s->traces == NULL)
    return -1;
  int rc = 0;
  for (unsigned i = 0; i < o->attrs; i++) {
    char k[32], v[32];
    if (i < 8) {
      rc |= kv_str(&s->attrs, ATTR_KEYS[i], ATTR_VALUES[i]);
    } else {
      snprintf(k, sizeof k, "app.attr_%u", i);
      snprintf(v, sizeof v, "value-%u", i);
      rc |= kv_str(&s->attrs, k, v);
    }
  }
  return rc ? -1 : 0;
}

void lg_shape_free(lg_shape_t *s) {
  free(s->traces);
  tt__buf_free(&s->attrs);
  tt__buf_free(&s->spans);
  tt__buf_free(&s->req);
}

unsigned lg_group_spans(const lg_shape_t *s) {
  return s->ntraces * s->o->per_trace;
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lg_shape_next_group(lg_shape_t *s, uint64_t *errors, uint64_t *slow) {
  const lg_opts_t *o = s->o;
  uint64_t now = wall_ns();
  for (unsigned i = 0; i < s->ntraces; i++) {
    lg_trace_t *t = &s->traces[i];
    uint64_t x = ((uint64_t)s->conn << 48) | s->counter++;
    t->lo = lg_mix(x);
    uint64_t hi = lg_mix(o->seed ^ lg_mix(t->lo ^ 0x5bd1e9955bd1e995ull));
    for (int b = 0; b < 8; b++) {
      t->id[b] = (uint8_t)(hi >> (56 - 8 * b));
      t->id[8 + b] = (uint8_t)(t->lo >> (56 - 8 * b));
    }
    uint64_t r = lg_mix(t->lo ^ o->seed);
    double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    t->err_span = -1;
    t->slow = false;
    if (u < o->error_fraction) {
      /* A child when there is one: the errors policy must find it wherever it is. */
      t->err_span = o->per_trace > 1 ? 1 + (int)((r >> 3) % (o->per_trace - 1)) : 0;
      (*errors)++;
    } else if (u < o->error_fraction + o->slow_fraction) {
      t->slow = true;
      (*slow)++;
    }
    t->dur_ns = t->slow ? (uint64_t)o->slow_ms * 1000000ull : (5 + (r >> 20) % 45) * 1000000ull;
    t->start_ns = now - t->dur_ns; /* the trace has just ended */
    t->rot = o->spread > 1 ? (unsigned)((r >> 40) % o->spread) : 0;
  }
}

static void put_id8(uint8_t out[8], uint64_t v) {
  for (int b = 0; b < 8; b++)
    out[b] = (uint8_t)(v >> (56 - 8 * b));
}

static uint64_t span_id(const lg_trace_t *t, unsigned k) {
  uint64_t v = lg_mix(t->lo + 0x632be59bd9b4e019ull * (k + 1));
  return v ? v : 1;
}

static int encode_span(lg_shape_t *s, const lg_trace_t *t, unsigned k, tt_buf_t *out) {
  const lg_opts_t *o = s->o;
  uint8_t b[512];
  size_t n = 0;
  uint8_t sid[8], pid[8];
  put_id8(sid, span_id(t, k));
  /* Fixed-size fields written by hand: trace id, span id, parent id. */
  b[n++] = 0x0a, b[n++] = 16;
  memcpy(b + n, t->id, 16), n += 16;
  b[n++] = 0x12, b[n++] = 8;
  memcpy(b + n, sid, 8), n += 8;
  if (k != 0) {
    put_id8(pid, span_id(t, (k - 1) / 2));
    b[n++] = 0x22, b[n++] = 8;
    memcpy(b + n, pid, 8), n += 8;
  }
  const char *name = k == 0 ? "GET /api/orders/{id}" : CHILD_NAMES[k % 4];
  size_t nl = strlen(name);
  b[n++] = 0x2a, b[n++] = (uint8_t)nl;
  memcpy(b + n, name, nl), n += nl;
  b[n++] = 0x30, b[n++] = k == 0 ? 2 : 3; /* SERVER root, CLIENT children */
  uint64_t start = t->start_ns, end = t->start_ns + t->dur_ns;
  if (k != 0) {
    uint64_t slot = t->dur_ns / (o->per_trace + 1);
    start = t->start_ns + slot * k;
    end = start + slot;
  }
  b[n++] = 0x39;
  for (int i = 0; i < 8; i++)
    b[n++] = (uint8_t)(start >> (8 * i));
  b[n++] = 0x41;
  for (int i = 0; i < 8; i++)
    b[n++] = (uint8_t)(end >> (8 * i));
  /* The span's length: what is in b, the attributes, and Status. */
  bool err = (int)k == t->err_span;
  static const uint8_t st_ok[] = {0x7a, 0x02, 0x18, 0x01};
  static const uint8_t st_err[] = {0x7a, 0x08, 0x12, 0x04, 'b', 'o', 'o', 'm', 0x18, 0x02};
  const uint8_t *st = err ? st_err : st_ok;
  size_t stlen = err ? sizeof st_err : sizeof st_ok;
  size_t len = n + s->attrs.len + stlen;
  int rc = tt__buf_append_tag(out, 2, TT_WT_LEN);
  rc |= tt__buf_append_varint(out, len);
  rc |= tt__buf_append(out, b, n);
  rc |= tt__buf_append(out, s->attrs.data, s->attrs.len);
  rc |= tt__buf_append(out, st, stlen);
  return rc;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80)
    v >>= 7, n++;
  return n;
}

int lg_shape_request(lg_shape_t *s, unsigned j, unsigned *nspans) {
  const lg_opts_t *o = s->o;
  unsigned per = o->per_trace, spread = o->spread < per ? o->spread : per;
  int rc = 0;
  unsigned count = 0;
  tt__buf_reset(&s->spans);
  for (unsigned i = 0; i < s->ntraces; i++) {
    const lg_trace_t *t = &s->traces[i];
    unsigned f = (j + spread - t->rot % spread) % spread;
    /* Fragment f holds positions [f*per/spread, (f+1)*per/spread) of the trace's order:
     * children 1..per-1, then the root. */
    for (unsigned p = f * per / spread; p < (f + 1) * per / spread; p++, count++)
      rc |= encode_span(s, t, p == per - 1 ? 0 : p + 1, &s->spans);
  }
  /* ExportTraceServiceRequest{1: ResourceSpans{1: Resource{1: service.name}, 2: ScopeSpans{
   * 1: InstrumentationScope{1: name}, 2: spans...}}} written outside in. */
  static const uint8_t res[] = {0x0a, 0x16, 0x0a, 0x0c, 's',  'e',  'r',  'v',  'i', 'c', 'e', '.',
                                'n',  'a',  'm',  'e',  0x12, 0x06, 0x0a, 0x04, 'a', 'p', 'i', 's'};
  static const uint8_t scope[] = {0x0a, 0x0c, 0x0a, 0x0a, 't', 't', '_',
                                  'l',  'o',  'a',  'd',  'g', 'e', 'n'};
  size_t ss_len = sizeof scope + s->spans.len;
  size_t rs_len = 1 + varint_len(sizeof res) + sizeof res + 1 + varint_len(ss_len) + ss_len;
  tt__buf_reset(&s->req);
  rc |= tt__buf_reserve(&s->req, rs_len + 16);
  rc |= tt__buf_append_tag(&s->req, 1, TT_WT_LEN);
  rc |= tt__buf_append_varint(&s->req, rs_len);
  rc |= tt__buf_append_lenfield(&s->req, 1, res, sizeof res);
  rc |= tt__buf_append_tag(&s->req, 2, TT_WT_LEN);
  rc |= tt__buf_append_varint(&s->req, ss_len);
  rc |= tt__buf_append(&s->req, scope, sizeof scope);
  rc |= tt__buf_append(&s->req, s->spans.data, s->spans.len);
  *nspans = count;
  return rc ? -1 : 0;
}
