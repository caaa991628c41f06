/* Request splitting (collector/otlp/otlp_split.c): pieces stay within the limit, and decoding them
 * with the protobuf-c generated code gives back the original spans, in order, each under its
 * own resource and scope (schema urls included); a span bigger than the limit goes alone;
 * malformed input is refused before any piece is handed out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "otlp_split.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rs_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ss_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

#define MAXR 4
#define MAXS 3
#define MAXSP 400

/* A request of nr resources x ns scopes x nsp spans; span k's name is "s<r>.<s>.<k>" and it
 * carries a string attribute of pad[k % npad] bytes. */
typedef struct {
  req_t req;
  rs_t rs[MAXR], *rsp[MAXR];
  Opentelemetry__Proto__Resource__V1__Resource res[MAXR];
  kv_t res_kv[MAXR], *res_kvp[MAXR];
  any_t res_any[MAXR];
  char res_name[MAXR][16];
  ss_t ss[MAXR][MAXS], *ssp[MAXR][MAXS];
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope[MAXR][MAXS];
  char scope_name[MAXR][MAXS][16];
  span_t sp[MAXR][MAXS][MAXSP], *spp[MAXR][MAXS][MAXSP];
  kv_t sp_kv[MAXR][MAXS][MAXSP], *sp_kvp[MAXR][MAXS][MAXSP];
  any_t sp_any[MAXR][MAXS][MAXSP];
  char sp_name[MAXR][MAXS][MAXSP][24];
  uint8_t tid[16], sid[MAXR][MAXS][MAXSP][8];
  char *pad;
} fixture_t;

static uint8_t *build(fixture_t *f, int nr, int ns, int nsp, const size_t *pads, int npad,
                      size_t *len) {
  memset(f, 0, sizeof *f);
  size_t maxpad = 0;
  for (int i = 0; i < npad; i++)
    maxpad = pads[i] > maxpad ? pads[i] : maxpad;
  f->pad = malloc(maxpad + 1);
  memset(f->pad, 'x', maxpad);
  f->tid[0] = 0x42;
  f->req = (req_t)OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  f->req.n_resource_spans = (size_t)nr;
  f->req.resource_spans = f->rsp;
  for (int r = 0; r < nr; r++) {
    f->rsp[r] = &f->rs[r];
    f->rs[r] = (rs_t)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    f->res[r] = (Opentelemetry__Proto__Resource__V1__Resource)
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    f->res_kv[r] = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    f->res_any[r] = (any_t)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    snprintf(f->res_name[r], sizeof f->res_name[r], "svc-%d", r);
    f->res_any[r].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    f->res_any[r].string_value = f->res_name[r];
    f->res_kv[r].key = "service.name";
    f->res_kv[r].value = &f->res_any[r];
    f->res_kvp[r] = &f->res_kv[r];
    f->res[r].n_attributes = 1;
    f->res[r].attributes = &f->res_kvp[r];
    f->rs[r].resource = &f->res[r];
    f->rs[r].schema_url = f->res_name[r]; /* the schema url names the resource too */
    f->rs[r].n_scope_spans = (size_t)ns;
    f->rs[r].scope_spans = f->ssp[r];
    for (int s = 0; s < ns; s++) {
      ss_t *ss = &f->ss[r][s];
      f->ssp[r][s] = ss;
      *ss = (ss_t)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
      f->scope[r][s] = (Opentelemetry__Proto__Common__V1__InstrumentationScope)
          OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
      snprintf(f->scope_name[r][s], sizeof f->scope_name[r][s], "scope-%d.%d", r, s);
      f->scope[r][s].name = f->scope_name[r][s];
      ss->scope = &f->scope[r][s];
      ss->schema_url = f->scope_name[r][s];
      ss->n_spans = (size_t)nsp;
      ss->spans = f->spp[r][s];
      for (int k = 0; k < nsp; k++) {
        span_t *sp = &f->sp[r][s][k];
        f->spp[r][s][k] = sp;
        *sp = (span_t)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        snprintf(f->sp_name[r][s][k], sizeof f->sp_name[r][s][k], "s%d.%d.%d", r, s, k);
        sp->name = f->sp_name[r][s][k];
        sp->trace_id.data = f->tid;
        sp->trace_id.len = 16;
        f->sid[r][s][k][0] = 1;
        f->sid[r][s][k][7] = (uint8_t)k;
        sp->span_id.data = f->sid[r][s][k];
        sp->span_id.len = 8;
        size_t pl = pads[k % npad];
        f->sp_any[r][s][k] = (any_t)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        f->sp_any[r][s][k].value_case =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        f->sp_any[r][s][k].string_value = f->pad + (maxpad - pl);
        f->sp_kv[r][s][k] = (kv_t)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        f->sp_kv[r][s][k].key = "pad";
        f->sp_kv[r][s][k].value = &f->sp_any[r][s][k];
        f->sp_kvp[r][s][k] = &f->sp_kv[r][s][k];
        sp->n_attributes = 1;
        sp->attributes = &f->sp_kvp[r][s][k];
      }
    }
  }
  f->pad[maxpad] = '\0';
  *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &f->req);
  uint8_t *buf = malloc(*len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&f->req, buf);
  return buf;
}

/* One line per span, "resource|rs schema|scope|ss schema|span name", in wire order. */
typedef struct {
  char (*lines)[96];
  size_t n, cap;
  size_t pieces, max_len, limit, over_limit;
  size_t piece_spans[512];
  int stop_after; /* >0: the callback answers 7 at that piece */
} collect_t;

static void add_lines(collect_t *c, const req_t *req) {
  for (size_t r = 0; r < req->n_resource_spans; r++) {
    const rs_t *rs = req->resource_spans[r];
    const char *svc = rs->resource && rs->resource->n_attributes == 1
                          ? rs->resource->attributes[0]->value->string_value
                          : "?";
    for (size_t s = 0; s < rs->n_scope_spans; s++) {
      const ss_t *ss = rs->scope_spans[s];
      for (size_t k = 0; k < ss->n_spans; k++) {
        if (c->n == c->cap) {
          c->cap = c->cap ? c->cap * 2 : 256;
          c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
        }
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s|%s|%s|%s|%s", svc, rs->schema_url,
                 ss->scope ? ss->scope->name : "?", ss->schema_url, ss->spans[k]->name);
      }
    }
  }
}

static int collect_piece(void *ctx, const uint8_t *p, size_t len, size_t nspans) {
  collect_t *c = ctx;
  req_t *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, len, p);
  assert_non_null(req);
  size_t before = c->n;
  add_lines(c, req);
  assert_int_equal(c->n - before, nspans); /* the count the sink's metrics use */
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
  if (c->pieces < 512)
    c->piece_spans[c->pieces] = nspans;
  c->pieces++;
  if (len > c->max_len)
    c->max_len = len;
  if (len > c->limit)
    c->over_limit++;
  if (c->stop_after > 0 && (int)c->pieces == c->stop_after)
    return 7;
  return 0;
}

/* Splits req at limit and checks the pieces against the original's spans. */
static void split_and_compare(const uint8_t *req, size_t len, size_t limit, collect_t *got,
                              tt_otlp_split_stats_t *st) {
  collect_t want = {0};
  req_t *orig = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, len, req);
  assert_non_null(orig);
  add_lines(&want, orig);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(orig,
                                                                                          NULL);
  memset(got, 0, sizeof *got);
  got->limit = limit;
  assert_int_equal(tt__otlp_split(req, len, limit, collect_piece, got, st), 0);
  assert_int_equal(got->n, want.n);
  for (size_t i = 0; i < want.n; i++)
    assert_string_equal(got->lines[i], want.lines[i]);
  assert_int_equal(st->spans, want.n);
  assert_int_equal(st->pieces, got->pieces);
  size_t counted;
  assert_int_equal(tt__otlp_count_spans(req, len, &counted), 0);
  assert_int_equal(counted, want.n);
  free(want.lines);
}

static void split_should_hand_a_request_within_the_limit_over_unchanged(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {100}, len;
  uint8_t *req = build(&f, 2, 2, 5, pads, 1, &len);
  collect_t c = {0};
  tt_otlp_split_stats_t st;
  split_and_compare(req, len, len, &c, &st);
  assert_int_equal(st.pieces, 1);
  assert_int_equal(c.max_len, len);
  free(c.lines);
  free(f.pad);
  free(req);
}

static void
split_should_keep_pieces_within_the_limit_and_every_span_with_its_resource_and_scope(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {300, 1000, 40, 2500}, len;
  uint8_t *req = build(&f, 3, 2, 60, pads, 4, &len);
  collect_t c;
  tt_otlp_split_stats_t st;
  split_and_compare(req, len, 20000, &c, &st);
  assert_true(len > 20000 * 10);
  assert_true(st.pieces >= len / 20000);
  assert_int_equal(c.over_limit, 0);
  assert_int_equal(st.oversized, 0);
  assert_true(c.max_len <= 20000);
  /* Packing: no two neighbouring pieces could have been one. */
  assert_true(st.pieces <= 2 * (len / 20000 + 1));
  free(c.lines);
  free(f.pad);
  free(req);
}

static void split_should_cut_one_huge_resource_and_scope_between_spans(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {1000}, len;
  uint8_t *req = build(&f, 1, 1, 200, pads, 1, &len);
  collect_t c;
  tt_otlp_split_stats_t st;
  split_and_compare(req, len, 8192, &c, &st);
  assert_true(st.pieces >= len / 8192);
  assert_int_equal(c.over_limit, 0);
  for (size_t i = 0; i < st.pieces && i < 512; i++)
    assert_true(c.piece_spans[i] >= 1);
  free(c.lines);
  free(f.pad);
  free(req);
}

static void split_should_send_a_span_bigger_than_the_limit_alone(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {100, 100, 50000, 100}, len;
  uint8_t *req = build(&f, 1, 1, 8, pads, 4, &len); /* spans 2 and 6 are huge */
  collect_t c;
  tt_otlp_split_stats_t st;
  split_and_compare(req, len, 8192, &c, &st);
  assert_int_equal(st.oversized, 2);
  assert_int_equal(c.over_limit, 2);
  /* [0 1] [2] [3 4 5] [6] [7] */
  assert_int_equal(st.pieces, 5);
  size_t want[] = {2, 1, 3, 1, 1};
  for (size_t i = 0; i < 5; i++)
    assert_int_equal(c.piece_spans[i], want[i]);
  free(c.lines);
  free(f.pad);
  free(req);
}

static void split_should_stop_when_the_callback_says_so(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {1000}, len;
  uint8_t *req = build(&f, 1, 1, 100, pads, 1, &len);
  collect_t c = {0};
  c.limit = 4096;
  c.stop_after = 2;
  assert_int_equal(tt__otlp_split(req, len, 4096, collect_piece, &c, NULL), 7);
  assert_int_equal(c.pieces, 2);
  free(c.lines);
  free(f.pad);
  free(req);
}

static int never_called(void *ctx, const uint8_t *p, size_t len, size_t nspans) {
  (void)ctx;
  (void)p;
  (void)len;
  (void)nspans;
  fail_msg("a malformed request must not give pieces");
  return 0;
}

/* For mutated input, whose spans may no longer decode: each piece must still be well-formed
 * and hold the span count it is handed with. */
static int count_piece(void *ctx, const uint8_t *p, size_t len, size_t nspans) {
  size_t *total = ctx, n;
  assert_int_equal(tt__otlp_count_spans(p, len, &n), 0);
  assert_int_equal(n, nspans);
  *total += n;
  return 0;
}

static void split_should_refuse_malformed_input_before_any_piece(void **state) {
  (void)state;
  static fixture_t f;
  size_t pads[] = {500}, len;
  uint8_t *req = build(&f, 2, 2, 10, pads, 1, &len);
  /* Truncated anywhere inside the last span: a length runs past the end. */
  assert_int_equal(tt__otlp_split(req, len - 3, 1000, never_called, NULL, NULL), -EINVAL);
  /* resource_spans with a varint wire type. */
  const uint8_t bad_rs[] = {0x08, 0x01};
  assert_int_equal(tt__otlp_split(bad_rs, sizeof bad_rs, 1, never_called, NULL, NULL), -EINVAL);
  /* scope_spans (field 2 of ResourceSpans) as a fixed32. */
  const uint8_t bad_ss[] = {0x0a, 0x05, 0x15, 0x01, 0x02, 0x03, 0x04};
  assert_int_equal(tt__otlp_split(bad_ss, sizeof bad_ss, 1, never_called, NULL, NULL), -EINVAL);
  /* spans (field 2 of ScopeSpans) as a varint. */
  const uint8_t bad_sp[] = {0x0a, 0x04, 0x12, 0x02, 0x10, 0x01};
  assert_int_equal(tt__otlp_split(bad_sp, sizeof bad_sp, 1, never_called, NULL, NULL), -EINVAL);
  size_t n;
  assert_int_equal(tt__otlp_count_spans(bad_sp, sizeof bad_sp, &n), -EINVAL);
  /* Flipped bytes: refused or split consistently, never a crash (ASan watches). */
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 300; i++) {
    uint8_t *m = malloc(len);
    memcpy(m, req, len);
    for (int j = 0; j < 4; j++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      m[x % len] = (uint8_t)(x >> 32);
    }
    tt_otlp_split_stats_t st;
    size_t total;
    int crc = tt__otlp_count_spans(m, len, &total);
    size_t pieces_total = 0;
    int rc =
        tt__otlp_split(m, len, 2000, crc == 0 ? count_piece : never_called, &pieces_total, &st);
    assert_int_equal(rc, crc);
    if (rc == 0) {
      assert_int_equal(st.spans, total);
      assert_int_equal(pieces_total, total);
    }
    free(m);
  }
  free(f.pad);
  free(req);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(split_should_hand_a_request_within_the_limit_over_unchanged),
      cmocka_unit_test(
          split_should_keep_pieces_within_the_limit_and_every_span_with_its_resource_and_scope),
      cmocka_unit_test(split_should_cut_one_huge_resource_and_scope_between_spans),
      cmocka_unit_test(split_should_send_a_span_bigger_than_the_limit_alone),
      cmocka_unit_test(split_should_stop_when_the_callback_says_so),
      cmocka_unit_test(split_should_refuse_malformed_input_before_any_piece),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
