/* Test fixtures for the collector core: build OTLP ExportTraceServiceRequest bytes with
 * protobuf-c (an independent encoder, so the wire scanner is checked against real protobuf), a
 * capturing sink that unpacks what the pipeline exports, and a controllable clock. Header-only,
 * included by one test file each. */
#ifndef TT_TEST_OTLP_FIXTURE_H
#define TT_TEST_OTLP_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "sink.h"

typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;

typedef struct {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_id[8];
  bool has_parent;
  size_t trace_id_len; /* 0: 16 */
  const char *name;
  uint64_t start_ns, end_ns;
  int status;          /* 0 unset, 2 error */
  const char *service; /* NULL: "svc" */
  int64_t http_status; /* 0: none */
  const char *attr_key, *attr_str;
  bool exception_event;
  const char *trace_state;
  uint32_t flags; /* Span.flags: W3C flags and the remote-parent bits (0x100 | 0x200) */
} span_spec_t;

static inline void fx_id(uint8_t *out, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = (uint8_t)(seed >> 56);
  }
  out[0] |= 1; /* never all zero */
}

/* A span of trace `t` with span `s` (child of span `parent` when parent != 0). */
static inline span_spec_t fx_span(uint64_t t, uint64_t s, uint64_t parent) {
  span_spec_t sp;
  memset(&sp, 0, sizeof sp);
  fx_id(sp.trace_id, 16, t);
  fx_id(sp.span_id, 8, s * 7919 + 1);
  if (parent != 0) {
    fx_id(sp.parent_id, 8, parent * 7919 + 1);
    sp.has_parent = true;
  }
  sp.name = "op";
  sp.start_ns = 1000000000ull;
  sp.end_ns = 1010000000ull;
  return sp;
}

static inline pb_kv_t *fx_kv_str(const char *k, const char *v) {
  pb_kv_t *kv = malloc(sizeof *kv);
  pb_any_t *a = malloc(sizeof *a);
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(a);
  a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  a->string_value = (char *)v;
  kv->key = (char *)k;
  kv->value = a;
  return kv;
}

static inline pb_kv_t *fx_kv_int(const char *k, int64_t v) {
  pb_kv_t *kv = fx_kv_str(k, "");
  kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  kv->value->int_value = v;
  return kv;
}

static inline void fx_kv_free(pb_kv_t *kv) {
  free(kv->value);
  free(kv);
}

/* Packs spans into one request: a ResourceSpans per distinct service, one scope each. Caller
 * frees the result. */
static inline uint8_t *fx_request(const span_spec_t *sp, size_t n, size_t *len) {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = calloc(n, sizeof *rs);
  Opentelemetry__Proto__Trace__V1__ResourceSpans **rsp = calloc(n, sizeof *rsp);
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = calloc(n, sizeof *ss);
  Opentelemetry__Proto__Trace__V1__ScopeSpans **ssp = calloc(n, sizeof *ssp);
  Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = calloc(n, sizeof *sc);
  Opentelemetry__Proto__Resource__V1__Resource *res = calloc(n, sizeof *res);
  pb_kv_t **reskv = calloc(n, sizeof *reskv);
  pb_span_t *spans = calloc(n, sizeof *spans);
  pb_span_t **spanp = calloc(n * n, sizeof *spanp);
  Opentelemetry__Proto__Trace__V1__Status *st = calloc(n, sizeof *st);
  Opentelemetry__Proto__Trace__V1__Span__Event *ev = calloc(n, sizeof *ev);
  Opentelemetry__Proto__Trace__V1__Span__Event **evp = calloc(n, sizeof *evp);
  pb_kv_t **attrs = calloc(n * 2, sizeof *attrs);
  const char **svc = calloc(n, sizeof *svc);
  size_t nrs = 0;
  for (size_t i = 0; i < n; i++) {
    const char *service = sp[i].service ? sp[i].service : "svc";
    size_t r = 0;
    while (r < nrs && strcmp(svc[r], service) != 0)
      r++;
    if (r == nrs) {
      svc[r] = service;
      opentelemetry__proto__trace__v1__resource_spans__init(&rs[r]);
      opentelemetry__proto__trace__v1__scope_spans__init(&ss[r]);
      opentelemetry__proto__common__v1__instrumentation_scope__init(&sc[r]);
      opentelemetry__proto__resource__v1__resource__init(&res[r]);
      sc[r].name = "fixture";
      sc[r].version = "1.0";
      reskv[r] = fx_kv_str("service.name", service);
      res[r].n_attributes = 1;
      res[r].attributes = &reskv[r];
      rs[r].resource = &res[r];
      rs[r].schema_url = "https://opentelemetry.io/schemas/1.24.0";
      ss[r].scope = &sc[r];
      ss[r].spans = &spanp[r * n];
      rsp[r] = &rs[r];
      ssp[r] = &ss[r];
      rs[r].n_scope_spans = 1;
      rs[r].scope_spans = &ssp[r];
      nrs++;
    }
    pb_span_t *s = &spans[i];
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id.data = (uint8_t *)sp[i].trace_id;
    s->trace_id.len = sp[i].trace_id_len ? sp[i].trace_id_len : 16;
    s->span_id.data = (uint8_t *)sp[i].span_id;
    s->span_id.len = 8;
    if (sp[i].has_parent) {
      s->parent_span_id.data = (uint8_t *)sp[i].parent_id;
      s->parent_span_id.len = 8;
    }
    s->name = (char *)(sp[i].name ? sp[i].name : "op");
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s->start_time_unix_nano = sp[i].start_ns;
    s->end_time_unix_nano = sp[i].end_ns;
    if (sp[i].trace_state)
      s->trace_state = (char *)sp[i].trace_state;
    s->flags = sp[i].flags;
    if (sp[i].status) {
      opentelemetry__proto__trace__v1__status__init(&st[i]);
      st[i].code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)sp[i].status;
      s->status = &st[i];
    }
    size_t na = 0;
    if (sp[i].http_status)
      attrs[i * 2 + na++] = fx_kv_int("http.response.status_code", sp[i].http_status);
    if (sp[i].attr_key)
      attrs[i * 2 + na++] = fx_kv_str(sp[i].attr_key, sp[i].attr_str ? sp[i].attr_str : "");
    s->n_attributes = na;
    s->attributes = na ? &attrs[i * 2] : NULL;
    if (sp[i].exception_event) {
      opentelemetry__proto__trace__v1__span__event__init(&ev[i]);
      ev[i].name = "exception";
      evp[i] = &ev[i];
      s->n_events = 1;
      s->events = &evp[i];
    }
    ss[r].spans[ss[r].n_spans++] = s;
  }
  req.n_resource_spans = nrs;
  req.resource_spans = rsp;
  *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &req);
  uint8_t *out = malloc(*len ? *len : 1);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
  for (size_t i = 0; i < n * 2; i++)
    if (attrs[i])
      fx_kv_free(attrs[i]);
  for (size_t r = 0; r < nrs; r++)
    fx_kv_free(reskv[r]);
  free(rs), free(rsp), free(ss), free(ssp), free(sc), free(res), free(reskv), free(spans);
  free(spanp), free(st), free(ev), free(evp), free(attrs), free(svc);
  return out;
}

/* ---- capturing sink ------------------------------------------------------------------------- */

typedef struct {
  tt_sink_t base;
  pthread_mutex_t mu;
  uint8_t **reqs;
  size_t *lens;
  size_t n, cap;
  atomic_size_t spans;
} cap_sink_t;

static inline int cap_submit(tt_sink_t *s, const uint8_t *req, size_t len, size_t nspans) {
  cap_sink_t *c = (cap_sink_t *)s;
  pthread_mutex_lock(&c->mu);
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->reqs = realloc(c->reqs, c->cap * sizeof *c->reqs);
    c->lens = realloc(c->lens, c->cap * sizeof *c->lens);
  }
  c->reqs[c->n] = malloc(len);
  memcpy(c->reqs[c->n], req, len);
  c->lens[c->n++] = len;
  pthread_mutex_unlock(&c->mu);
  atomic_fetch_add(&c->spans, nspans);
  return 0;
}
static inline int cap_flush(tt_sink_t *s) {
  (void)s;
  return 0;
}
static inline bool cap_healthy(tt_sink_t *s) {
  (void)s;
  return true;
}
static inline void cap_close(tt_sink_t *s) {
  cap_sink_t *c = (cap_sink_t *)s;
  for (size_t i = 0; i < c->n; i++)
    free(c->reqs[i]);
  free(c->reqs);
  free(c->lens);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
static const tt_sink_vtable_t cap_vt = {"capture", cap_submit, cap_flush, cap_healthy, cap_close};

static inline cap_sink_t *cap_new(void) {
  cap_sink_t *c = calloc(1, sizeof *c);
  c->base.vt = &cap_vt;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

/* Every exported span, unpacked with protobuf-c, with its resource's service name. */
typedef struct {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest **reqs;
  size_t nreqs;
  pb_span_t **spans;
  const char **services;
  size_t n;
} cap_view_t;

static inline void cap_view(cap_sink_t *c, cap_view_t *v) {
  memset(v, 0, sizeof *v);
  pthread_mutex_lock(&c->mu);
  v->reqs = calloc(c->n + 1, sizeof *v->reqs);
  size_t cap = 16;
  v->spans = malloc(cap * sizeof *v->spans);
  v->services = malloc(cap * sizeof *v->services);
  for (size_t i = 0; i < c->n; i++) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, c->lens[i], c->reqs[i]);
    if (r == NULL)
      continue; /* the test then sees fewer spans than expected */
    v->reqs[v->nreqs++] = r;
    for (size_t a = 0; a < r->n_resource_spans; a++) {
      const char *svc = NULL;
      Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_spans[a]->resource;
      for (size_t k = 0; res && k < res->n_attributes; k++)
        if (strcmp(res->attributes[k]->key, "service.name") == 0)
          svc = res->attributes[k]->value->string_value;
      for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = r->resource_spans[a]->scope_spans[b];
        for (size_t k = 0; k < ss->n_spans; k++) {
          if (v->n == cap) {
            cap *= 2;
            v->spans = realloc(v->spans, cap * sizeof *v->spans);
            v->services = realloc(v->services, cap * sizeof *v->services);
          }
          v->services[v->n] = svc;
          v->spans[v->n++] = ss->spans[k];
        }
      }
    }
  }
  pthread_mutex_unlock(&c->mu);
}

static inline void cap_view_free(cap_view_t *v) {
  for (size_t i = 0; i < v->nreqs; i++)
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
        v->reqs[i], NULL);
  free(v->reqs);
  free(v->spans);
  free(v->services);
}

/* The value of a span attribute, or NULL. */
static inline const pb_any_t *fx_attr(const pb_span_t *s, const char *key) {
  for (size_t i = 0; i < s->n_attributes; i++)
    if (strcmp(s->attributes[i]->key, key) == 0)
      return s->attributes[i]->value;
  return NULL;
}

/* ---- controllable clock --------------------------------------------------------------------- */

typedef struct {
  atomic_uint_fast64_t now;
} fake_clock_t;

static inline uint64_t fake_clock_read(void *ctx) {
  return atomic_load(&((fake_clock_t *)ctx)->now);
}

#endif
