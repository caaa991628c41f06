/* Spans: start/end, attributes, events, links, status, scopes.
 *
 * Everything a span stores goes into its record's arena (bump allocation, 8-byte aligned), so a
 * span never calls malloc. Growing arrays (attributes, events, links) are reallocated inside the
 * arena by doubling; the space they leave behind is bounded by the arena. What does not fit the
 * limits or the arena is dropped and counted in the span's dropped_* fields. */
#include "internal.h"

#include <string.h>

/* Opens an extension record when the current block is full; NULL when the span already has
 * TT__MAX_EXT of them, the request is larger than a block, or no record is free. */
static void *arena_alloc_slow(struct tt_span_s *r, size_t n) {
  if (n > TT__RECORD_SIZE || r->n_ext >= TT__MAX_EXT)
    return NULL;
  tt__tstate_t *t = tt__tstate();
  if (t == NULL)
    return NULL;
  struct tt_span_s *x = tt__record_take(t);
  if (x == NULL)
    return NULL;
  r->clean = 0;
  TT__EXTS(r)[r->n_ext++] = x;
  r->blk = (char *)x;
  r->blk_cap = TT__RECORD_SIZE;
  r->blk_used = (uint32_t)n;
  return x;
}

static inline void *arena_alloc(struct tt_span_s *r, size_t n) {
  size_t off = (r->blk_used + 7u) & ~(size_t)7u;
  /* Without extensions the block is the arena: blk and blk_cap sit on a line a plain span
   * never touches. */
  char *blk = r->n_ext == 0 ? r->arena : r->blk;
  size_t cap = r->n_ext == 0 ? TT__ARENA_SIZE : r->blk_cap;
  if (__builtin_expect(off + n > cap, 0))
    return arena_alloc_slow(r, n);
  r->blk_used = (uint32_t)(off + n);
  return blk + off;
}

/* Copies n bytes; short keys and values are the common case, and a call to memcpy costs more
 * than the copy. Only bytes inside [0, n) are read (overlapping loads, never past the end). */
static inline void copy_small(char *d, const char *s, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &b, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; i++)
      d[i] = s[i];
  } else {
    memcpy(d, s, n);
  }
}

static inline __attribute__((always_inline)) const char *arena_strn(struct tt_span_s *r,
                                                                    const char *s, size_t len) {
  char *d = arena_alloc(r, len + 1);
  if (d == NULL)
    return NULL;
  copy_small(d, s, len);
  d[len] = '\0';
  return d;
}

/* Truncates to the value-length limit without splitting a UTF-8 sequence. */
static size_t limit_len(const char *s, size_t len, uint32_t limit) {
  if (len <= limit)
    return len;
  size_t cut = limit;
  while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
    cut--;
  return cut;
}

/* Copies a value into the arena; 0 on success, -1 when it does not fit or is malformed. */
static inline __attribute__((always_inline)) int
copy_value(struct tt_span_s *r, const tt_attribute_t *in, tt_attribute_t *out) {
  uint32_t lim = r->provider->limits.attr_value_len;
  out->type = in->type;
  switch (in->type) {
    case TT_ATTR_STRING: {
      /* A NULL string is empty whatever length came with it: the length must not be read as
       * bytes of "". */
      const char *v = in->value.str.ptr != NULL ? in->value.str.ptr : "";
      size_t len = in->value.str.ptr == NULL ? 0
                   : in->value.str.len != 0  ? in->value.str.len
                                             : strlen(v);
      len = limit_len(v, len, lim);
      const char *c = arena_strn(r, v, len);
      if (c == NULL)
        return -1;
      out->value.str.ptr = c;
      out->value.str.len = len;
      return 0;
    }
    case TT_ATTR_BOOL:
      out->value.b = in->value.b != 0;
      return 0;
    case TT_ATTR_INT:
      out->value.i = in->value.i;
      return 0;
    case TT_ATTR_DOUBLE:
      out->value.d = in->value.d;
      return 0;
    case TT_ATTR_BOOL_ARRAY:
    case TT_ATTR_INT_ARRAY:
    case TT_ATTR_DOUBLE_ARRAY: {
      size_t n = in->value.array.count;
      size_t w = in->type == TT_ATTR_BOOL_ARRAY ? 1 : 8;
      if (n != 0 && in->value.array.items == NULL)
        return -1;
      void *d = arena_alloc(r, n * w + 1);
      if (d == NULL)
        return -1;
      if (n != 0)
        memcpy(d, in->value.array.items, n * w);
      out->value.array.items = d;
      out->value.array.count = n;
      return 0;
    }
    case TT_ATTR_STRING_ARRAY: {
      size_t n = in->value.array.count;
      const char *const *src = in->value.array.items;
      if (n != 0 && src == NULL)
        return -1;
      const char **d = arena_alloc(r, n * sizeof *d + 1);
      if (d == NULL)
        return -1;
      for (size_t i = 0; i < n; i++) {
        const char *v = src[i] != NULL ? src[i] : "";
        d[i] = arena_strn(r, v, limit_len(v, strlen(v), lim));
        if (d[i] == NULL)
          return -1;
      }
      out->value.array.items = d;
      out->value.array.count = n;
      return 0;
    }
  }
  return -1;
}

/* A cheap key fingerprint (length and three sampled bytes) so the duplicate-key scan compares
 * one word per existing attribute and calls strcmp only on a likely match. */
static inline uint32_t key_print(const char *k, size_t len) {
  if (len == 0)
    return 0;
  return (uint32_t)len ^ (uint32_t)(unsigned char)k[0] << 8 ^
         (uint32_t)(unsigned char)k[len - 1] << 16 ^ (uint32_t)(unsigned char)k[len / 2] << 24;
}

/* A span's attributes are nearly always new keys. A 64-bit filter over the fingerprints lets
 * that case skip the duplicate scan: only a set bit (a possible duplicate) scans. */
static inline uint64_t print_bit(uint32_t fp) {
  return 1ull << ((fp * 0x9E3779B1u) >> 26);
}

/* Adds or replaces key in a growable attribute array with a parallel fingerprint array; bloom
 * (NULL: always scan) is the filter over the array's fingerprints. Inlined into each setter so
 * the value copy's type switch folds away. Returns 0, or -1 when dropped. */
static inline __attribute__((always_inline)) int
put_attr(struct tt_span_s *r, tt_attribute_t **arr, uint32_t **prints, uint32_t *count,
         uint32_t *cap, uint32_t limit, uint64_t *bloom, const tt_attribute_t *a) {
  if (a == NULL || a->key == NULL)
    return -1;
  size_t klen = strlen(a->key);
  uint32_t fp = key_print(a->key, klen);
  tt_attribute_t *base = *arr;
  uint32_t *fps = *prints;
  uint64_t bit = print_bit(fp);
  uint32_t scan = bloom == NULL || (*bloom & bit) != 0 ? *count : 0;
  for (uint32_t i = 0; i < scan; i++) {
    if (fps[i] == fp && strcmp(base[i].key, a->key) == 0) {
      tt_attribute_t v;
      if (copy_value(r, a, &v) != 0)
        return -1;
      base[i].type = v.type;
      base[i].value = v.value;
      return 0;
    }
  }
  if (*count >= limit)
    return -1;
  if (*count == *cap) {
    uint32_t ncap = *cap != 0 ? *cap * 2 : 16;
    if (ncap > limit)
      ncap = limit;
    tt_attribute_t *n = arena_alloc(r, (size_t)ncap * sizeof *n);
    uint32_t *nf = n != NULL ? arena_alloc(r, (size_t)ncap * sizeof *fps) : NULL;
    if (nf == NULL)
      return -1;
    if (*count != 0) {
      memcpy(n, base, (size_t)*count * sizeof *n);
      memcpy(nf, fps, (size_t)*count * sizeof *fps);
    }
    *arr = base = n;
    *prints = fps = nf;
    *cap = ncap;
  }
  tt_attribute_t *slot = &base[*count];
  if (copy_value(r, a, slot) != 0)
    return -1;
  slot->key = arena_strn(r, a->key, klen);
  if (slot->key == NULL)
    return -1;
  fps[*count] = fp;
  (*count)++;
  if (bloom != NULL)
    *bloom |= bit;
  return 0;
}

/* Copies a caller's attribute list (for an event or link), de-duplicating keys (the last value
 * wins) and applying the count limit. */
static void copy_attr_list(struct tt_span_s *r, const tt_attribute_t *in, size_t n, uint32_t limit,
                           const tt_attribute_t **out, uint32_t *count, uint32_t *dropped) {
  tt_attribute_t *arr = NULL;
  uint32_t *fps = NULL;
  uint32_t cnt = 0, cap = 0, drop = 0;
  if (in != NULL && n != 0) {
    cap = n < limit ? (uint32_t)n : limit;
    arr = cap != 0 ? arena_alloc(r, (size_t)cap * sizeof *arr) : NULL;
    fps = arr != NULL ? arena_alloc(r, (size_t)cap * sizeof *fps) : NULL;
    if (fps == NULL)
      cap = 0;
    for (size_t i = 0; i < n; i++) {
      if (put_attr(r, &arr, &fps, &cnt, &cap, cap, NULL, &in[i]) != 0)
        drop++;
    }
  }
  *out = arr;
  *count = cnt;
  *dropped = drop;
  r->dropped_total += drop;
}

/* The defaults of the data fields past the two lines a plain span writes: a reused record's and
 * a copy slot's (copy_plain). */
static void reset_data_tail(tt_span_data_t *d) {
  d->status_message = "";
  d->tracestate = "";
  d->attributes = NULL;
  d->attribute_count = d->dropped_attributes_count = 0;
  d->events = NULL;
  d->event_count = d->dropped_events_count = 0;
  d->links = NULL;
  d->link_count = d->dropped_links_count = 0;
}

/* Puts every extra field back to its default (see struct tt_span_s). */
static void reset_extras(struct tt_span_s *r) {
  r->data.status_code = TT_STATUS_UNSET;
  reset_data_tail(&r->data);
  r->n_ext = 0;
  r->attr_prints = NULL;
  r->attr_bloom = 0;
  r->attr_cap = r->event_cap = r->link_cap = 0;
  r->status_final = 0;
  r->dropped_total = 0;
  r->clean = 1;
}

static void copy_tracestate(struct tt_span_s *r, const char *ts) {
  r->clean = 0;
  const char *c = arena_strn(r, ts, strlen(ts));
  r->data.tracestate = c != NULL ? c : "";
}

/* Short names (most are) go into the header's own bytes, on a line the span writes anyway. */
static inline int set_name(struct tt_span_s *r, const char *name, size_t len) {
  if (len < TT__NAME_INLINE) {
    copy_small(r->name_inline, name, len);
    r->name_inline[len] = '\0';
    r->data.name = r->name_inline;
    return 0;
  }
  const char *n = arena_strn(r, name, len);
  if (n == NULL)
    return -1; /* the name stays as it was */
  r->data.name = n;
  return 0;
}

static inline void span_context_of(const struct tt_span_s *s, tt_span_context_t *c) {
  memcpy(c->trace_id, s->data.trace_id, 16);
  memcpy(c->span_id, s->data.span_id, 8);
  c->trace_flags = (uint8_t)s->data.flags;
  c->is_remote = 0;
}

static void add_link(struct tt_span_s *r, const tt_link_t *in) {
  tt_span_data_t *d = &r->data;
  /* The API specification: a link to an invalid (all-zero) context is still recorded when it
   * carries attributes or a tracestate (they may say what it points at); a bare one is ignored. */
  if (in == NULL || (!tt_span_context_is_valid(&in->context) && in->attribute_count == 0 &&
                     (in->tracestate == NULL || in->tracestate[0] == '\0')))
    return;
  r->clean = 0;
  if (d->link_count >= r->provider->limits.link_count)
    goto drop;
  if (d->link_count == r->link_cap) {
    uint32_t ncap = r->link_cap != 0 ? r->link_cap * 2 : 2;
    tt_link_t *n = arena_alloc(r, (size_t)ncap * sizeof *n);
    if (n == NULL)
      goto drop;
    if (d->link_count != 0)
      memcpy(n, d->links, (size_t)d->link_count * sizeof *n);
    r->link_cap = ncap;
    d->links = n;
  }
  tt_link_t *l = (tt_link_t *)&d->links[d->link_count]; /* our arena: never const */
  l->context = in->context;
  l->tracestate = "";
  if (in->tracestate != NULL && in->tracestate[0] != '\0') {
    l->tracestate = arena_strn(r, in->tracestate, strlen(in->tracestate));
    if (l->tracestate == NULL)
      goto drop;
  }
  copy_attr_list(r, in->attributes, in->attribute_count, r->provider->limits.link_attr_count,
                 &l->attributes, &l->attribute_count, &l->dropped_attributes_count);
  d->link_count++;
  return;
drop:
  d->dropped_links_count++;
}

tt_span_t *tt_span_start_(tt_tracer_t *tracer, const char *name, const tt_span_options_t *o) {
  tt__provider_t *p = atomic_load_explicit(&tt__provider, memory_order_acquire);
  if (__builtin_expect(p == NULL, 0))
    return NULL;
  tt__tstate_t *t = tt__tstate();
  if (t == NULL)
    return NULL;
  if (o != NULL && o->size < sizeof(size_t))
    o = NULL;
  /* A caller built against an older, smaller struct: read only what it has, the rest as zero. */
  tt_span_options_t older;
  if (__builtin_expect(o != NULL && o->size < sizeof *o, 0)) {
    tt__copy_sized(&older, sizeof older, o, o->size);
    o = &older;
  }

  /* Resolve the parent before taking a record: a parent is read, never modified. */
  tt_span_context_t pc;
  const tt_span_context_t *parent = NULL;
  const char *parent_ts = "";
  tt_parent_t mode = o != NULL ? o->parent_mode : TT_PARENT_CURRENT;
  const struct tt_span_s *ps = NULL;
  if (mode == TT_PARENT_CURRENT)
    ps = t->current;
  else if (mode == TT_PARENT_SPAN)
    ps = o->parent;
  if (ps != NULL) {
    span_context_of(ps, &pc);
    parent = &pc;
    parent_ts = ps->data.tracestate;
  } else if (mode == TT_PARENT_REMOTE && o->remote != NULL &&
             tt_span_context_is_valid(&o->remote->span_context)) {
    parent = &o->remote->span_context;
    parent_ts = o->remote->tracestate;
  }

  struct tt_span_s *r = tt__record_take(t);
  if (__builtin_expect(r == NULL, 0)) {
    /* Span memory is at its process-wide budget: told like a full queue (at once, then summed). */
    tt__count(&t->c_no_record, 1);
    if (atomic_load_explicit(&tt__queue_full_armed, memory_order_relaxed))
      tt__no_record_first(p);
    return NULL;
  }

  tt_span_data_t *d = &r->data;
  uint8_t flags;
  if (parent != NULL) {
    memcpy(d->trace_id, parent->trace_id, 16);
    memcpy(d->parent_span_id, parent->span_id, 8);
    d->has_parent = 1;
    flags = parent->trace_flags & TT_TRACE_FLAG_RANDOM;
  } else {
    uint64_t a = tt__rng_next(&t->rng), b = tt__rng_next(&t->rng);
    if ((a | b) == 0)
      a = 1;
    memcpy(d->trace_id, &a, 8);
    memcpy(d->trace_id + 8, &b, 8);
    memset(d->parent_span_id, 0, 8);
    d->has_parent = 0;
    flags = TT_TRACE_FLAG_RANDOM;
  }
  uint64_t sid;
  do
    sid = tt__rng_next(&t->rng);
  while (sid == 0);
  memcpy(d->span_id, &sid, 8);

  r->live = 1;
  r->blk_used = 0;
  r->provider = p;
  if (!r->clean)
    reset_extras(r);
  char ts_buf[TT_TRACESTATE_MAX_LEN + 1];
  int sampled = tt__sample(p, parent, parent != NULL, d->trace_id, parent_ts, ts_buf, &parent_ts);
  if (!sampled) {
    /* A non-recording span keeps only what propagation needs: ids, flags and tracestate. */
    r->recording = 0;
    t->last_recording = 0;
    d->flags = flags;
    if (parent_ts[0] != '\0')
      copy_tracestate(r, parent_ts);
    tt__count(&t->c_unsampled, 1);
    return r;
  }
  flags |= TT_TRACE_FLAG_SAMPLED;
  uint32_t f = flags;
  if (parent != NULL)
    f |= TT_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE |
         (parent->is_remote ? TT_SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
  r->recording = 1;
  t->last_recording |= 2; /* 2 after a non-recording span; a 6 (extras) stays until end */
  d->flags = f;
  if (parent_ts[0] != '\0')
    copy_tracestate(r, parent_ts);
  if (set_name(r, name != NULL ? name : "", name != NULL ? strlen(name) : 0) != 0)
    r->data.name = "";
  /* Unset, or outside the enum (OTLP has no meaning for it): INTERNAL, the API's default. */
  d->kind = o != NULL && o->kind != TT_SPAN_KIND_UNSPECIFIED &&
                    (unsigned)o->kind <= (unsigned)TT_SPAN_KIND_CONSUMER
                ? o->kind
                : TT_SPAN_KIND_INTERNAL;
  d->start_time_unix_ns =
      o != NULL && o->start_time_unix_ns != 0 ? o->start_time_unix_ns : tt__now_unix_ns();
  d->end_time_unix_ns = 0;
  d->resource = &p->resource;
  d->scope = tracer != NULL ? &tracer->scope : p->default_scope;
  tt__count(&t->c_started, 1);
  if (o != NULL) {
    if (o->attribute_count != 0)
      tt_span_set_attributes(r, o->attributes, o->attribute_count);
    for (size_t i = 0; o->links != NULL && i < o->link_count; i++)
      add_link(r, &o->links[i]);
  }
  return r;
}

/* A span turned away because its thread's queue is full. The first one since the exporter thread
 * last found an interval without drops is told at once (one log line from this thread); the rest
 * only cost the count, which the exporter thread reports. */
static inline void count_queue_full(tt__tstate_t *t, const tt__provider_t *p) {
  tt__count(&t->c_queue_full, 1);
  if (__builtin_expect(atomic_load_explicit(&tt__queue_full_armed, memory_order_relaxed), 0))
    tt__queue_full_first(p);
}

/* Whether ring position h's copy slot is free: the exporter is done with the position that used
 * it last, TT__COPIES positions ago. Acquire: its reads of that copy happen before we overwrite
 * it. A thread without copy slots (their allocation failed) queues every span as its record. */
static inline int copy_slot_free(tt__tstate_t *t, uint64_t h) {
  if (h - t->done_cache < TT__COPIES(t))
    return 1;
  if (TT__COPIES(t) == 0)
    return 0;
  t->done_cache = atomic_load_explicit(&t->done, memory_order_acquire);
  return h - t->done_cache < TT__COPIES(t);
}

/* Copies a plain span into ring position h's copy slot (internal.h, tt__cslot): the two lines
 * the span wrote. The slot's data fields past those must hold their defaults: slots get them as
 * the thread first reaches them, including slots skipped by spans queued as records, which a copy
 * a lap later will use; no later copy writes those lines. */
static inline void copy_plain(tt__tstate_t *t, uint64_t h, const struct tt_span_s *s) {
  uint64_t i = h & (TT__COPIES(t) - 1);
  if (__builtin_expect(i >= t->copies_ready, 0)) {
    for (uint64_t j = t->copies_ready; j <= i; j++)
      reset_data_tail(&tt__cslot(t, j)->data);
    t->copies_ready = i + 1;
  }
  struct tt_span_s *c = tt__cslot(t, h);
  /* An exporter that reads its spans leaves these lines shared in its core's cache, and a store
   * to one waits for that copy to be invalidated (the stores behind it too): ask for the slot 8
   * spans ahead for writing now. With an exporter that reads each span this took one thread
   * from ~9 to ~14.6 M spans/s (docs/benchmarks-agent.md, "Session 8"). */
  const char *ahead = (const char *)tt__cslot(t, h + 8);
  tt__prefetch_w(ahead);
  tt__prefetch_w(ahead + 64);
  memcpy(c, s, TT__COPY_HOT);
  if (s->data.name == s->name_inline)
    c->data.name = c->name_inline;
}

void tt_span_end_at(tt_span_t *s, uint64_t end_ns) {
  if (s == NULL || !s->live)
    return;
  s->live = 0;
  tt__tstate_t *t = tt__tstate();
  if (t == NULL)
    return; /* cannot happen after a start on this process; leak rather than crash */
  if (!s->recording) {
    tt__record_release_local(t, s);
    return;
  }
  tt_span_data_t *d = &s->data;
  d->end_time_unix_ns = end_ns != 0 ? end_ns : tt__now_unix_ns();
  if (d->end_time_unix_ns < d->start_time_unix_ns)
    d->end_time_unix_ns = d->start_time_unix_ns;
  tt__count(&t->c_ended, 1);
  t->last_recording = s->clean ? 2 : 6;
  if (!s->clean) { /* a clean span dropped nothing, and its counts are on lines it never wrote */
    uint64_t dropped = d->dropped_attributes_count + d->dropped_events_count +
                       d->dropped_links_count + s->dropped_total;
    if (dropped != 0)
      tt__count(&t->c_dropped_attrs, dropped);
  }

  tt__provider_t *p = atomic_load_explicit(&tt__provider, memory_order_acquire);
  if (__builtin_expect(p != s->provider, 0)) {
    tt__count(&t->c_shutdown, 1);
    tt__record_release_chain(t, s);
    return;
  }
  if (__builtin_expect(t->ring == NULL, 0) && tt__ring_ensure(t, p->max_queue_size) != 0) {
    static _Atomic int warned;
    if (!atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
      TT_LOG(TT_LOG_ERROR, "no memory for a thread's queue of %u spans: its spans are dropped",
             p->max_queue_size);
    tt__count(&t->c_queue_full, 1);
    tt__record_release_chain(t, s);
    return;
  }
  uint64_t h = atomic_load_explicit(&t->head, memory_order_relaxed);
  uint64_t limit = tt__ring_limit(t, p->max_queue_size);
  if (h - t->tail_cache >= limit) {
    t->tail_cache = atomic_load_explicit(&t->tail, memory_order_acquire);
    if (h - t->tail_cache >= limit) {
      count_queue_full(t, p);
      tt__record_release_chain(t, s);
      return;
    }
  }
  /* The slot may still hold an exported record this thread has not taken back (it ends spans
   * others start, or the exporter has not reclaimed yet): take some back first. */
  if (__builtin_expect(h - t->taken_cache > t->ring_mask, 0) && tt__ring_make_room(t) != 0) {
    count_queue_full(t, p);
    tt__record_release_chain(t, s);
    return;
  }
  uintptr_t v = (uintptr_t)s | p->tag | (s->n_ext != 0 ? TT__TAG_HAS_EXT : 0);
  if (s->clean && s->blk_used == 0 && copy_slot_free(t, h)) {
    copy_plain(t, h, s);
    v = p->tag;
    tt__record_release_local(t, s);
  }
  atomic_store_explicit(&t->ring[h & t->ring_mask], v, memory_order_relaxed);
  atomic_store_explicit(&t->head, h + 1, memory_order_release);
  /* The exporter thread read the slot lines ahead when it drained them a ring ago, so a store to
   * one must first take it back from that core, and every later store waits behind it (x86
   * commits stores in order). Asking for the line 64 slots early takes that off the span. */
  if ((h & 7) == 0)
    tt__prefetch_w((const void *)&t->ring[(h + 64) & t->ring_mask]);
  /* Wake the exporter each time this thread has queued a full batch since its last wake-up;
   * spans trickling in from many threads wait for the schedule instead. */
  if (__builtin_expect(t->wake_provider != p, 0)) {
    t->wake_provider = p; /* a count left from an earlier provider means nothing to this one */
    t->since_wake = 0;
  }
  /* A ring sized for an earlier provider's smaller queue may hold less than a batch. */
  if (++t->since_wake >= p->max_export_batch_size || t->since_wake >= limit) {
    t->since_wake = 0;
    t->tail_cache = atomic_load_explicit(&t->tail, memory_order_acquire);
    tt__batch_wake(p, h + 1 - t->tail_cache >= TT__RING_LATE(limit));
  }
  if (__builtin_expect(atomic_load_explicit(&tt__batch_needs_thread, memory_order_relaxed), 0))
    tt__batch_ensure_thread(p);
}

int tt_span_is_recording(const tt_span_t *s) {
  return s != NULL && s->live && s->recording;
}

void tt_span_get_context(const tt_span_t *s, tt_span_context_t *out) {
  if (out == NULL)
    return;
  if (s == NULL) {
    memset(out, 0, sizeof *out);
    return;
  }
  span_context_of(s, out);
}

/* Every setter's body, inlined into each so a constant type folds the value copy. */
static inline __attribute__((always_inline)) void set_attr(tt_span_t *s, const tt_attribute_t *a) {
  if (s == NULL || !s->recording || !s->live)
    return;
  s->clean = 0;
  uint32_t cnt = s->data.attribute_count;
  tt_attribute_t *arr = (tt_attribute_t *)s->data.attributes; /* our arena: never const */
  if (put_attr(s, &arr, &s->attr_prints, &cnt, &s->attr_cap, s->provider->limits.attr_count,
               &s->attr_bloom, a) != 0)
    s->data.dropped_attributes_count++;
  s->data.attribute_count = cnt;
  s->data.attributes = arr;
}

void tt_span_set_attribute(tt_span_t *s, const tt_attribute_t *a) {
  set_attr(s, a);
}

void tt_span_set_attributes(tt_span_t *s, const tt_attribute_t *a, size_t n) {
  for (size_t i = 0; a != NULL && i < n; i++)
    tt_span_set_attribute(s, &a[i]);
}

void tt_span_set_str(tt_span_t *s, const char *key, const char *value) {
  tt_attribute_t a = {.key = key, .type = TT_ATTR_STRING, .value.str = {value, 0}};
  set_attr(s, &a);
}

void tt_span_set_strn(tt_span_t *s, const char *key, const char *value, size_t len) {
  if (len == 0)
    value = "";
  tt_attribute_t a = {.key = key, .type = TT_ATTR_STRING, .value.str = {value, len}};
  set_attr(s, &a);
}

void tt_span_set_int(tt_span_t *s, const char *key, int64_t value) {
  tt_attribute_t a = {.key = key, .type = TT_ATTR_INT, .value.i = value};
  set_attr(s, &a);
}

void tt_span_set_double(tt_span_t *s, const char *key, double value) {
  tt_attribute_t a = {.key = key, .type = TT_ATTR_DOUBLE, .value.d = value};
  set_attr(s, &a);
}

void tt_span_set_bool(tt_span_t *s, const char *key, int value) {
  tt_attribute_t a = {.key = key, .type = TT_ATTR_BOOL, .value.b = value != 0};
  set_attr(s, &a);
}

void tt_span_add_event_at(tt_span_t *s, const char *name, uint64_t ts, const tt_attribute_t *attrs,
                          size_t n) {
  if (s == NULL || !s->recording || !s->live)
    return;
  s->clean = 0;
  tt_span_data_t *d = &s->data;
  if (d->event_count >= s->provider->limits.event_count)
    goto drop;
  if (d->event_count == s->event_cap) {
    uint32_t ncap = s->event_cap != 0 ? s->event_cap * 2 : 4;
    tt_event_t *e = arena_alloc(s, (size_t)ncap * sizeof *e);
    if (e == NULL)
      goto drop;
    if (d->event_count != 0)
      memcpy(e, d->events, (size_t)d->event_count * sizeof *e);
    s->event_cap = ncap;
    d->events = e;
  }
  tt_event_t *e = (tt_event_t *)&d->events[d->event_count]; /* our arena: never const */
  e->name = arena_strn(s, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
  if (e->name == NULL)
    goto drop;
  e->time_unix_ns = ts != 0 ? ts : tt__now_unix_ns();
  copy_attr_list(s, attrs, n, s->provider->limits.event_attr_count, &e->attributes,
                 &e->attribute_count, &e->dropped_attributes_count);
  d->event_count++;
  return;
drop:
  d->dropped_events_count++;
}

void tt_span_add_event(tt_span_t *s, const char *name, const tt_attribute_t *attrs, size_t n) {
  tt_span_add_event_at(s, name, 0, attrs, n);
}

void tt_span_add_link(tt_span_t *s, const tt_link_t *link) {
  if (s == NULL || !s->recording || !s->live)
    return;
  add_link(s, link);
}

void tt_span_set_status(tt_span_t *s, tt_status_code_t code, const char *message) {
  if (s == NULL || !s->recording || !s->live)
    return;
  s->clean = 0;
  if (s->status_final)
    return;
  if (code == TT_STATUS_OK) {
    /* OK is final and carries no description, per the OpenTelemetry API. */
    s->data.status_code = TT_STATUS_OK;
    s->data.status_message = "";
    s->status_final = 1;
  } else if (code == TT_STATUS_ERROR) {
    s->data.status_code = TT_STATUS_ERROR;
    const char *m = message != NULL ? arena_strn(s, message, strlen(message)) : "";
    s->data.status_message = m != NULL ? m : "";
  }
}

void tt_span_update_name(tt_span_t *s, const char *name) {
  if (s == NULL || !s->recording || !s->live || name == NULL)
    return;
  (void)set_name(s, name, strlen(name));
}

void tt_span_record_exception(tt_span_t *s, const char *type, const char *message,
                              const char *stacktrace) {
  if (s == NULL || !s->recording || !s->live)
    return;
  tt_attribute_t a[3];
  size_t n = 0;
  if (type != NULL)
    a[n++] = (tt_attribute_t)TT_STR("exception.type", type);
  if (message != NULL)
    a[n++] = (tt_attribute_t)TT_STR("exception.message", message);
  if (stacktrace != NULL)
    a[n++] = (tt_attribute_t)TT_STR("exception.stacktrace", stacktrace);
  tt_span_add_event(s, "exception", a, n);
  tt_span_set_status(s, TT_STATUS_ERROR, message != NULL ? message : type);
}

const tt_attribute_t *tt_span_data_attribute(const tt_span_data_t *s, const char *key) {
  if (s == NULL || key == NULL)
    return NULL;
  for (uint32_t i = 0; i < s->attribute_count; i++)
    if (strcmp(s->attributes[i].key, key) == 0)
      return &s->attributes[i];
  return NULL;
}
