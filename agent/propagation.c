/* W3C Trace Context (traceparent, tracestate) codecs and the inject/extract front door.
 * Parsing is strict where the W3C specification is strict: a traceparent that breaks a rule is
 * ignored whole, and a bad tracestate is dropped without invalidating the traceparent. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

_Atomic int tt__propagators = TT__PROP_TRACECONTEXT | TT__PROP_BAGGAGE;

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len) {
  while (*len > 0 && is_ows(**s)) {
    (*s)++;
    (*len)--;
  }
  while (*len > 0 && is_ows((*s)[*len - 1]))
    (*len)--;
}

int tt_traceparent_parse(const char *s, size_t len, tt_span_context_t *out) {
  if (s == NULL || out == NULL)
    return TT_EINVAL;
  memset(out, 0, sizeof *out);
  trim(&s, &len);
  if (len < TT_TRACEPARENT_LEN)
    return TT_EPARSE;
  uint8_t version;
  if (tt__hex_decode_lower(s, 1, &version) != 0 || version == 0xff)
    return TT_EPARSE;
  /* Version 00 has exactly 55 characters; a later version may append fields after a dash, and
   * is read by its first 55 characters as version 00. */
  if (version == 0 && len != TT_TRACEPARENT_LEN)
    return TT_EPARSE;
  if (version != 0 && len > TT_TRACEPARENT_LEN && s[TT_TRACEPARENT_LEN] != '-')
    return TT_EPARSE;
  if (s[2] != '-' || s[35] != '-' || s[52] != '-')
    return TT_EPARSE;
  tt_span_context_t c;
  memset(&c, 0, sizeof c);
  if (tt__hex_decode_lower(s + 3, 16, c.trace_id) != 0 ||
      tt__hex_decode_lower(s + 36, 8, c.span_id) != 0 ||
      tt__hex_decode_lower(s + 53, 1, &c.trace_flags) != 0)
    return TT_EPARSE;
  if (!tt_span_context_is_valid(&c))
    return TT_EPARSE;
  c.is_remote = 1;
  *out = c;
  return 0;
}

void tt_traceparent_format(const tt_span_context_t *ctx, char out[56]) {
  memcpy(out, "00-", 3);
  tt__hex_encode(ctx->trace_id, 16, out + 3);
  out[35] = '-';
  tt__hex_encode(ctx->span_id, 8, out + 36);
  out[52] = '-';
  uint8_t f = ctx->trace_flags;
  tt__hex_encode(&f, 1, out + 53);
}

/* ---- tracestate ---- */

#define TT__TS_MAX_MEMBERS 32
#define TT__TS_MAX_KEY 256
#define TT__TS_MAX_VALUE 256
/* Members longer than this go first when the header must be cut to TT_TRACESTATE_MAX_LEN. */
#define TT__TS_LONG_MEMBER 128

static int lcalpha(char c) {
  return c >= 'a' && c <= 'z';
}
static int digit(char c) {
  return c >= '0' && c <= '9';
}

/* key = ( lcalpha / DIGIT ) 0*255( keychar ), keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" /
 * "@" (W3C Trace Context Level 2). Level 1 split a key at "@" into a tenant of at most 241 and a
 * system of at most 14 characters and wanted a simple key to start with a letter; Level 2 dropped
 * both rules, so "1foo", "foo@", "foo@@bar" and a 242-character tenant are keys, and a peer that
 * sends them must not lose its whole tracestate here. */
static int valid_key(const char *k, size_t n) {
  if (n < 1 || n > TT__TS_MAX_KEY || !(lcalpha(k[0]) || digit(k[0])))
    return 0;
  for (size_t i = 1; i < n; i++) {
    char c = k[i];
    if (!(lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@'))
      return 0;
  }
  return 1;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr excludes "," and "=". */
static int valid_value(const char *v, size_t n) {
  if (n < 1 || n > TT__TS_MAX_VALUE || v[n - 1] == ' ')
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
      return 0;
  }
  return 1;
}

typedef struct member_s {
  const char *p;
  size_t len;
  size_t keylen;
} member_t;

/* What is discarded, and why. The specification lets a receiver discard either the invalid
 * entries or the whole header; the W3C test suite (test/test.py at strict level 2) wants the whole
 * header gone for a malformed member ("foo=,bar=3", "@foo=1,bar=2", a 257-character key) and for
 * more than 32 members, so that is what happens: a peer cannot tell which of its members a
 * half-parsed header lost. A repeated key is not malformed: the specification lets a vendor drop
 * duplicates it did not generate, and since a vendor moves the member it updates to the left, the
 * left-most occurrence is the current one. So a later duplicate is dropped and the rest kept. */
int tt_tracestate_parse(const char *s, size_t len, char *out, size_t cap) {
  if (s == NULL || out == NULL || cap == 0)
    return TT_EINVAL;
  member_t m[TT__TS_MAX_MEMBERS];
  int nm = 0, seen = 0;
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && s[j] != ',')
      j++;
    const char *e = s + i;
    size_t el = j - i;
    trim(&e, &el);
    if (el != 0) { /* empty members are allowed and skipped */
      const char *eq = memchr(e, '=', el);
      if (eq == NULL)
        return TT_EPARSE;
      size_t kl = (size_t)(eq - e);
      if (!valid_key(e, kl) || !valid_value(eq + 1, el - kl - 1))
        return TT_EPARSE;
      if (++seen > TT__TS_MAX_MEMBERS)
        return TT_EPARSE;
      int dup = 0;
      for (int k = 0; k < nm && !dup; k++)
        dup = m[k].keylen == kl && memcmp(m[k].p, e, kl) == 0;
      if (!dup) {
        m[nm].p = e;
        m[nm].len = el;
        m[nm].keylen = kl;
        nm++;
      }
    }
    i = j + 1;
  }
  /* Over TT_TRACESTATE_MAX_LEN (512) characters, counting the commas: whole members go, those
   * longer than 128 characters first (from the right), then members from the right. */
  size_t total = 0;
  for (int k = 0; k < nm; k++)
    total += m[k].len + (k > 0);
  int keep[TT__TS_MAX_MEMBERS];
  for (int k = 0; k < nm; k++)
    keep[k] = 1;
  for (int k = nm - 1; k >= 0 && total > TT_TRACESTATE_MAX_LEN; k--) {
    if (m[k].len > TT__TS_LONG_MEMBER) {
      keep[k] = 0;
      total -= m[k].len + 1;
    }
  }
  for (int k = nm - 1; k >= 0 && total > TT_TRACESTATE_MAX_LEN; k--) {
    if (keep[k]) {
      keep[k] = 0;
      total -= m[k].len + 1;
    }
  }
  size_t o = 0;
  for (int k = 0; k < nm; k++) {
    if (!keep[k])
      continue;
    size_t need = m[k].len + (o > 0);
    if (o + need + 1 > cap)
      return TT_ENOSPC;
    if (o > 0)
      out[o++] = ',';
    memcpy(out + o, m[k].p, m[k].len);
    o += m[k].len;
  }
  out[o] = '\0';
  return (int)o;
}

/* ---- inject / extract ---- */

int tt_extract(tt_carrier_get_fn get, void *carrier, tt_remote_context_t *out) {
  if (get == NULL || out == NULL)
    return TT_EINVAL;
  memset(&out->span_context, 0, sizeof out->span_context);
  out->tracestate[0] = '\0';
  int props = atomic_load_explicit(&tt__propagators, memory_order_relaxed);
  int rc = TT_ENOTFOUND;
  if (props & TT__PROP_TRACECONTEXT) {
    const char *tp = get(carrier, "traceparent");
    if (tp != NULL && tt_traceparent_parse(tp, strlen(tp), &out->span_context) == 0) {
      rc = 0;
      const char *ts = get(carrier, "tracestate");
      if (ts != NULL &&
          tt_tracestate_parse(ts, strlen(ts), out->tracestate, sizeof out->tracestate) < 0)
        out->tracestate[0] = '\0';
    }
  }
  return rc;
}

/* Baggage has its own call so that the remote context stays small: its 8 KB live where the
 * caller chooses, and a caller that does not use baggage never pays for parsing it. */
int tt_extract_baggage(tt_carrier_get_fn get, void *carrier, tt_baggage_t *out) {
  if (get == NULL || out == NULL)
    return TT_EINVAL;
  tt_baggage_init(out);
  if (!(atomic_load_explicit(&tt__propagators, memory_order_relaxed) & TT__PROP_BAGGAGE))
    return TT_ENOTFOUND;
  const char *bg = get(carrier, "baggage");
  if (bg == NULL)
    return TT_ENOTFOUND;
  return tt_baggage_parse(out, bg, strlen(bg));
}

int tt_inject(const tt_span_t *span, const tt_baggage_t *baggage, tt_carrier_set_fn set,
              void *carrier) {
  if (set == NULL)
    return TT_EINVAL;
  int props = atomic_load_explicit(&tt__propagators, memory_order_relaxed);
  if ((props & TT__PROP_TRACECONTEXT) && span != NULL) {
    tt_span_context_t c;
    tt_span_get_context(span, &c);
    if (tt_span_context_is_valid(&c)) {
      char tp[56];
      tt_traceparent_format(&c, tp);
      set(carrier, "traceparent", tp);
      if (span->data.tracestate != NULL && span->data.tracestate[0] != '\0')
        set(carrier, "tracestate", span->data.tracestate);
    }
  }
  if ((props & TT__PROP_BAGGAGE) && baggage != NULL && baggage->count > 0) {
    char buf[TT_BAGGAGE_MAX_BYTES + 1];
    int left_out;
    int n = tt__baggage_format_header(baggage, buf, &left_out);
    /* Once per process: inject runs on every outgoing request, and warnings are on by default. */
    static _Atomic int warned;
    if (left_out > 0 && !atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
      TT_LOG(TT_LOG_WARN,
             "baggage: %d of %d members left out to keep the header within %d encoded bytes and "
             "%d members (reported once)",
             left_out, baggage->count, TT_BAGGAGE_MAX_BYTES, TT_BAGGAGE_MAX_ENTRIES);
    if (n > 0)
      set(carrier, "baggage", buf);
  }
  return 0;
}

/* OTEL_PROPAGATORS: a comma list. tracecontext and baggage are supported; "none" disables;
 * others (b3, jaeger, ...) are warned about and ignored. */
void tt__propagators_from_env(void) {
  const char *v = getenv("OTEL_PROPAGATORS");
  if (v == NULL || *v == '\0') {
    atomic_store(&tt__propagators, TT__PROP_TRACECONTEXT | TT__PROP_BAGGAGE);
    return;
  }
  int props = 0;
  const char *p = v;
  while (*p != '\0') {
    const char *e = strchr(p, ',');
    size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
    const char *w = p;
    trim(&w, &n);
    if (n == 12 && memcmp(w, "tracecontext", 12) == 0)
      props |= TT__PROP_TRACECONTEXT;
    else if (n == 7 && memcmp(w, "baggage", 7) == 0)
      props |= TT__PROP_BAGGAGE;
    else if (!(n == 4 && memcmp(w, "none", 4) == 0) && n != 0)
      TT_LOG(TT_LOG_WARN, "OTEL_PROPAGATORS: propagator '%.*s' is not supported", (int)n, w);
    if (e == NULL)
      break;
    p = e + 1;
  }
  atomic_store(&tt__propagators, props);
}
