/* otlp_encode.c: turns a batch of span views into ExportTraceServiceRequest bytes with
 * protobuf-c; the only agent file that includes the generated OTLP headers.
 *
 * protobuf-c wants a tree of message structs; building it with one malloc per node would cost
 * more than the packing itself, so every node of one request comes from a bump arena that is
 * freed in one go. The tree points into the caller's views (strings, ids) and is never modified
 * by packing, hence the casts from const. */
#include "otlp_encode.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue any_value_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue key_value_t;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans_t;

/* ---- arena ------------------------------------------------------------------------------ */

/* Blocks are kept across encodes (reset, not freed): a batch needs a few hundred KB of nodes,
 * and freeing that much after every batch makes glibc trim and re-fault the heap each time,
 * which cost more than the encoding itself. The arena belongs to one encoder (exporter thread). */
typedef struct block_s {
  struct block_s *next;
  size_t used, cap;
  max_align_t data[];
} block_t;

struct tt__otlp_arena_s {
  block_t *head, *cur, *tail;
  size_t total;
};
typedef struct tt__otlp_arena_s arena_t;

#define ARENA_BLOCK 65536
#define ARENA_KEEP (8u << 20) /* free rather than keep more than this between batches */

static void *arena_alloc(arena_t *a, size_t size) {
  size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
  while (a->cur != NULL && a->cur->cap - a->cur->used < size)
    a->cur = a->cur->next;
  if (a->cur == NULL) {
    size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
    block_t *b = tt__malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    if (a->tail)
      a->tail->next = b;
    else
      a->head = b;
    a->tail = b;
    a->cur = b;
    a->total += cap;
  }
  void *p = (char *)a->cur->data + a->cur->used;
  a->cur->used += size;
  return p;
}

static void arena_free(arena_t *a) {
  while (a->head) {
    block_t *n = a->head->next;
    tt__free(a->head);
    a->head = n;
  }
  a->cur = a->tail = NULL;
  a->total = 0;
}

static void arena_reset(arena_t *a) {
  if (a->total > ARENA_KEEP) {
    arena_free(a); /* one unusually large batch should not pin its memory forever */
    return;
  }
  for (block_t *b = a->head; b; b = b->next)
    b->used = 0;
  a->cur = a->head;
}

static char *str(const char *s) {
  return (char *)(s ? s : "");
}

/* ---- attributes ------------------------------------------------------------------------- */

static void set_string(any_value_t *out, const char *s) {
  out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  out->string_value = str(s);
}

/* Typed arrays become an ArrayValue of scalar AnyValues, one node per item. */
static int fill_array(arena_t *a, any_value_t *out, const tt_attribute_t *attr) {
  size_t n = attr->value.array.count;
  const void *items = attr->value.array.items;
  if (items == NULL)
    n = 0;
  Opentelemetry__Proto__Common__V1__ArrayValue *arr = arena_alloc(a, sizeof *arr);
  any_value_t *vals = arena_alloc(a, n * sizeof *vals + 1);
  any_value_t **ptrs = arena_alloc(a, n * sizeof *ptrs + 1);
  if (arr == NULL || vals == NULL || ptrs == NULL)
    return TT_ENOMEM;
  opentelemetry__proto__common__v1__array_value__init(arr);
  for (size_t i = 0; i < n; i++) {
    any_value_t *v = &vals[i];
    opentelemetry__proto__common__v1__any_value__init(v);
    switch (attr->type) {
      case TT_ATTR_STRING_ARRAY:
        set_string(v, ((const char *const *)items)[i]);
        break;
      case TT_ATTR_BOOL_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = ((const uint8_t *)items)[i] != 0;
        break;
      case TT_ATTR_INT_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = ((const int64_t *)items)[i];
        break;
      case TT_ATTR_DOUBLE_ARRAY:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = ((const double *)items)[i];
        break;
      default:
        return TT_EINVAL;
    }
    ptrs[i] = v;
  }
  arr->n_values = n;
  arr->values = ptrs;
  out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  out->array_value = arr;
  return 0;
}

static int fill_value(arena_t *a, any_value_t *out, const tt_attribute_t *attr) {
  opentelemetry__proto__common__v1__any_value__init(out);
  switch (attr->type) {
    case TT_ATTR_STRING:
      set_string(out, attr->value.str.ptr);
      return 0;
    case TT_ATTR_BOOL:
      out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
      out->bool_value = attr->value.b != 0;
      return 0;
    case TT_ATTR_INT:
      out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      out->int_value = attr->value.i;
      return 0;
    case TT_ATTR_DOUBLE:
      out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      out->double_value = attr->value.d;
      return 0;
    case TT_ATTR_STRING_ARRAY:
    case TT_ATTR_BOOL_ARRAY:
    case TT_ATTR_INT_ARRAY:
    case TT_ATTR_DOUBLE_ARRAY:
      return fill_array(a, out, attr);
  }
  return TT_EINVAL;
}

static int fill_attrs(arena_t *a, const tt_attribute_t *attrs, size_t n, key_value_t ***out,
                      size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (n == 0 || attrs == NULL)
    return 0;
  key_value_t *kvs = arena_alloc(a, n * sizeof *kvs);
  any_value_t *vals = arena_alloc(a, n * sizeof *vals);
  key_value_t **ptrs = arena_alloc(a, n * sizeof *ptrs);
  if (kvs == NULL || vals == NULL || ptrs == NULL)
    return TT_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    opentelemetry__proto__common__v1__key_value__init(&kvs[i]);
    kvs[i].key = str(attrs[i].key);
    int rc = fill_value(a, &vals[i], &attrs[i]);
    if (rc)
      return rc;
    kvs[i].value = &vals[i];
    ptrs[i] = &kvs[i];
  }
  *out = ptrs;
  *n_out = n;
  return 0;
}

/* ---- spans ------------------------------------------------------------------------------ */

uint32_t tt__otlp_link_flags(const tt_span_context_t *ctx) {
  return (uint32_t)ctx->trace_flags | TT_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE |
         (ctx->is_remote ? TT_SPAN_FLAGS_CONTEXT_IS_REMOTE : 0u);
}

static int fill_span(arena_t *a, pb_span_t *ps, const tt_span_data_t *s) {
  opentelemetry__proto__trace__v1__span__init(ps);
  ps->trace_id.data = (uint8_t *)s->trace_id;
  ps->trace_id.len = 16;
  ps->span_id.data = (uint8_t *)s->span_id;
  ps->span_id.len = 8;
  if (s->has_parent) {
    ps->parent_span_id.data = (uint8_t *)s->parent_span_id;
    ps->parent_span_id.len = 8;
  }
  ps->trace_state = str(s->tracestate);
  ps->name = str(s->name);
  ps->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
  ps->start_time_unix_nano = s->start_time_unix_ns;
  ps->end_time_unix_nano = s->end_time_unix_ns;
  ps->flags = s->flags;
  ps->dropped_attributes_count = s->dropped_attributes_count;
  ps->dropped_events_count = s->dropped_events_count;
  ps->dropped_links_count = s->dropped_links_count;
  int rc = fill_attrs(a, s->attributes, s->attribute_count, &ps->attributes, &ps->n_attributes);
  if (rc)
    return rc;
  if (s->event_count && s->events) {
    Opentelemetry__Proto__Trace__V1__Span__Event *ev = arena_alloc(a, s->event_count * sizeof *ev);
    Opentelemetry__Proto__Trace__V1__Span__Event **evp =
        arena_alloc(a, s->event_count * sizeof *evp);
    if (ev == NULL || evp == NULL)
      return TT_ENOMEM;
    for (size_t i = 0; i < s->event_count; i++) {
      opentelemetry__proto__trace__v1__span__event__init(&ev[i]);
      ev[i].time_unix_nano = s->events[i].time_unix_ns;
      ev[i].name = str(s->events[i].name);
      ev[i].dropped_attributes_count = s->events[i].dropped_attributes_count;
      if ((rc = fill_attrs(a, s->events[i].attributes, s->events[i].attribute_count,
                           &ev[i].attributes, &ev[i].n_attributes)))
        return rc;
      evp[i] = &ev[i];
    }
    ps->events = evp;
    ps->n_events = s->event_count;
  }
  if (s->link_count && s->links) {
    Opentelemetry__Proto__Trace__V1__Span__Link *ln = arena_alloc(a, s->link_count * sizeof *ln);
    Opentelemetry__Proto__Trace__V1__Span__Link **lnp = arena_alloc(a, s->link_count * sizeof *lnp);
    if (ln == NULL || lnp == NULL)
      return TT_ENOMEM;
    for (size_t i = 0; i < s->link_count; i++) {
      const tt_link_t *l = &s->links[i];
      opentelemetry__proto__trace__v1__span__link__init(&ln[i]);
      ln[i].trace_id.data = (uint8_t *)l->context.trace_id;
      ln[i].trace_id.len = 16;
      ln[i].span_id.data = (uint8_t *)l->context.span_id;
      ln[i].span_id.len = 8;
      ln[i].trace_state = str(l->tracestate);
      ln[i].flags = tt__otlp_link_flags(&l->context);
      ln[i].dropped_attributes_count = l->dropped_attributes_count;
      if ((rc = fill_attrs(a, l->attributes, l->attribute_count, &ln[i].attributes,
                           &ln[i].n_attributes)))
        return rc;
      lnp[i] = &ln[i];
    }
    ps->links = lnp;
    ps->n_links = s->link_count;
  }
  if (s->status_code != TT_STATUS_UNSET || (s->status_message && s->status_message[0])) {
    Opentelemetry__Proto__Trace__V1__Status *st = arena_alloc(a, sizeof *st);
    if (st == NULL)
      return TT_ENOMEM;
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status_code;
    st->message = str(s->status_message);
    ps->status = st;
  }
  return 0;
}

/* ---- grouping --------------------------------------------------------------------------- */

typedef struct {
  const tt_resource_t *res;
  const tt_scope_t *scope;
  size_t count, filled;
  pb_scope_spans_t *ss;
} group_t;

static int build(arena_t *a, const tt_span_data_t *const *spans, size_t n,
                 Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req) {
  /* Pass 1: distinct (resource, scope) pairs in first-seen order. A process has one resource
   * and a handful of scopes, so the linear search is the cheap choice. */
  group_t *groups = arena_alloc(a, n * sizeof *groups);
  size_t *gidx = arena_alloc(a, n * sizeof *gidx);
  if (groups == NULL || gidx == NULL)
    return TT_ENOMEM;
  size_t ng = 0, nres = 0;
  for (size_t i = 0; i < n; i++) {
    if (spans[i]->resource == NULL || spans[i]->scope == NULL || spans[i]->name == NULL)
      return TT_EINVAL;
    size_t g;
    for (g = 0; g < ng; g++)
      if (groups[g].res == spans[i]->resource && groups[g].scope == spans[i]->scope)
        break;
    if (g == ng) {
      int new_res = 1;
      for (size_t k = 0; k < ng; k++)
        new_res &= groups[k].res != spans[i]->resource;
      nres += (size_t)new_res;
      groups[ng] = (group_t){spans[i]->resource, spans[i]->scope, 0, 0, NULL};
      ng++;
    }
    groups[g].count++;
    gidx[i] = g;
  }
  /* Pass 2: one ResourceSpans per distinct resource holding its scopes. */
  pb_resource_spans_t **rsp = arena_alloc(a, nres * sizeof *rsp);
  if (rsp == NULL)
    return TT_ENOMEM;
  size_t r = 0;
  for (size_t g = 0; g < ng; g++) {
    int seen = 0;
    for (size_t k = 0; k < g; k++)
      seen |= groups[k].res == groups[g].res;
    if (seen)
      continue;
    size_t nscopes = 0;
    for (size_t k = g; k < ng; k++)
      nscopes += groups[k].res == groups[g].res;
    pb_resource_spans_t *rs = arena_alloc(a, sizeof *rs);
    Opentelemetry__Proto__Resource__V1__Resource *res = arena_alloc(a, sizeof *res);
    pb_scope_spans_t **ssp = arena_alloc(a, nscopes * sizeof *ssp);
    if (rs == NULL || res == NULL || ssp == NULL)
      return TT_ENOMEM;
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__resource__v1__resource__init(res);
    const tt_resource_t *vr = groups[g].res;
    int rc =
        fill_attrs(a, vr->attributes, vr->attribute_count, &res->attributes, &res->n_attributes);
    if (rc)
      return rc;
    res->dropped_attributes_count = vr->dropped_attributes_count;
    rs->resource = res;
    rs->schema_url = str(vr->schema_url);
    size_t s = 0;
    for (size_t k = g; k < ng; k++) {
      if (groups[k].res != groups[g].res)
        continue;
      pb_scope_spans_t *ss = arena_alloc(a, sizeof *ss);
      Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = arena_alloc(a, sizeof *sc);
      pb_span_t **sp = arena_alloc(a, groups[k].count * sizeof *sp);
      if (ss == NULL || sc == NULL || sp == NULL)
        return TT_ENOMEM;
      opentelemetry__proto__trace__v1__scope_spans__init(ss);
      opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
      sc->name = str(groups[k].scope->name);
      sc->version = str(groups[k].scope->version);
      ss->scope = sc;
      ss->schema_url = str(groups[k].scope->schema_url);
      ss->spans = sp;
      groups[k].ss = ss;
      ssp[s++] = ss;
    }
    rs->scope_spans = ssp;
    rs->n_scope_spans = s;
    rsp[r++] = rs;
  }
  /* Pass 3: the spans themselves, in batch order within their scope. */
  pb_span_t *pspans = arena_alloc(a, n * sizeof *pspans);
  if (pspans == NULL)
    return TT_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int rc = fill_span(a, &pspans[i], spans[i]);
    if (rc)
      return rc;
    group_t *g = &groups[gidx[i]];
    g->ss->spans[g->filled++] = &pspans[i];
    g->ss->n_spans = g->filled;
  }
  req->resource_spans = rsp;
  req->n_resource_spans = r;
  return 0;
}

int tt__otlp_encoder_encode(tt__otlp_encoder_t *enc, const tt_span_data_t *const *spans, size_t n,
                            const uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (n == 0 || spans == NULL)
    return TT_EINVAL;
  if (enc->arena == NULL && (enc->arena = tt__calloc(1, sizeof *enc->arena)) == NULL)
    return TT_ENOMEM;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
  int rc = build(enc->arena, spans, n, &req);
  if (rc == 0) {
    size_t len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    if (len + 1 > enc->cap) {
      uint8_t *nb = tt__realloc(enc->buf, len + 1);
      if (nb == NULL) {
        rc = TT_ENOMEM;
      } else {
        enc->buf = nb;
        enc->cap = len + 1;
      }
    }
    if (rc == 0) {
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req,
                                                                                     enc->buf);
      *out = enc->buf;
      *out_len = len;
    }
  }
  arena_reset(enc->arena);
  return rc;
}

void tt__otlp_encoder_free(tt__otlp_encoder_t *enc) {
  if (enc->arena) {
    arena_free(enc->arena);
    tt__free(enc->arena);
  }
  tt__free(enc->buf);
  memset(enc, 0, sizeof *enc);
}

int tt__otlp_encode_request(const tt_span_data_t *const *spans, size_t n, uint8_t **out,
                            size_t *out_len) {
  tt__otlp_encoder_t enc = {NULL, NULL, 0};
  const uint8_t *p;
  int rc = tt__otlp_encoder_encode(&enc, spans, n, &p, out_len);
  *out = NULL;
  if (rc == 0) {
    *out = enc.buf; /* hand the buffer over instead of copying it */
    enc.buf = NULL;
  }
  tt__otlp_encoder_free(&enc);
  return rc;
}
