/* In-memory exporter for tests: deep-copies every exported span so tests can inspect them after
 * the records were recycled and even after tt_shutdown. Each kept span owns one heap block list;
 * a mutex makes the accessors safe against the exporter thread. */
#include "internal.h"

#include <errno.h>
#include <string.h>

typedef struct kept_s {
  tt_span_data_t d;
  tt_resource_t resource;
  void **blocks;
  size_t nblocks, capblocks;
} kept_t;

struct tt_memory_exporter_s {
  pthread_mutex_t mu;
  struct tt_memory_exporter_s *next_all; /* g_all list, under g_all_mu */
  kept_t **spans;
  size_t n, max;
  uint64_t dropped, calls, shutdowns, cancels;
  pthread_cond_t cancel_cv; /* wakes a delayed export when cancelled */
  int cancelled;            /* sticky, under mu */
  int fail_n;
  tt_export_result_t fail_result;
  uint64_t delay_ns;
};

/* fork safety: the exporter thread takes m->mu while it exports; a fork at that moment would
 * leave the child's copy locked forever. These handlers hold every instance's lock across fork. */
static pthread_mutex_t g_all_mu = PTHREAD_MUTEX_INITIALIZER;
static tt_memory_exporter_t *g_all;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void prepare(void) {
  pthread_mutex_lock(&g_all_mu);
  for (tt_memory_exporter_t *m = g_all; m != NULL; m = m->next_all)
    pthread_mutex_lock(&m->mu);
}
static void release(void) {
  for (tt_memory_exporter_t *m = g_all; m != NULL; m = m->next_all)
    pthread_mutex_unlock(&m->mu);
  pthread_mutex_unlock(&g_all_mu);
}
static void init_cancel_cv(tt_memory_exporter_t *m) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&m->cancel_cv, &ca);
  pthread_condattr_destroy(&ca);
}
/* The child has no exporter thread: a waiter recorded in the condition variable never leaves,
 * and glibc's broadcast could wait for it, so the child starts with a fresh one. */
static void release_child(void) {
  for (tt_memory_exporter_t *m = g_all; m != NULL; m = m->next_all)
    init_cancel_cv(m);
  release();
}
static void install(void) {
  pthread_atfork(prepare, release, release_child);
}

static void *blk(kept_t *k, size_t n) {
  if (k->nblocks == k->capblocks) {
    size_t nc = k->capblocks ? k->capblocks * 2 : 16;
    void **nb = tt__realloc(k->blocks, nc * sizeof *nb);
    if (nb == NULL)
      return NULL;
    k->blocks = nb;
    k->capblocks = nc;
  }
  void *p = tt__calloc(1, n ? n : 1);
  if (p != NULL)
    k->blocks[k->nblocks++] = p;
  return p;
}

static const char *dupstr(kept_t *k, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = blk(k, n);
  if (d != NULL)
    memcpy(d, s, n);
  return d != NULL ? d : "";
}

static const tt_attribute_t *dup_attrs(kept_t *k, const tt_attribute_t *a, uint32_t n) {
  if (n == 0)
    return NULL;
  tt_attribute_t *o = blk(k, n * sizeof *o);
  if (o == NULL)
    return NULL;
  for (uint32_t i = 0; i < n; i++) {
    o[i] = a[i];
    o[i].key = dupstr(k, a[i].key);
    switch (a[i].type) {
      case TT_ATTR_STRING: {
        char *s = blk(k, a[i].value.str.len + 1);
        if (s != NULL)
          memcpy(s, a[i].value.str.ptr, a[i].value.str.len);
        o[i].value.str.ptr = s != NULL ? s : "";
        break;
      }
      case TT_ATTR_BOOL_ARRAY:
      case TT_ATTR_INT_ARRAY:
      case TT_ATTR_DOUBLE_ARRAY: {
        size_t w = a[i].type == TT_ATTR_BOOL_ARRAY ? 1 : 8;
        void *d = blk(k, a[i].value.array.count * w);
        if (d != NULL && a[i].value.array.count != 0)
          memcpy(d, a[i].value.array.items, a[i].value.array.count * w);
        o[i].value.array.items = d;
        break;
      }
      case TT_ATTR_STRING_ARRAY: {
        const char *const *src = a[i].value.array.items;
        const char **d = blk(k, a[i].value.array.count * sizeof *d);
        for (size_t j = 0; d != NULL && j < a[i].value.array.count; j++)
          d[j] = dupstr(k, src[j]);
        o[i].value.array.items = d;
        break;
      }
      default:
        break;
    }
  }
  return o;
}

static kept_t *deep_copy(const tt_span_data_t *s) {
  kept_t *k = tt__calloc(1, sizeof *k);
  if (k == NULL)
    return NULL;
  k->d = *s;
  k->d.tracestate = dupstr(k, s->tracestate);
  k->d.name = dupstr(k, s->name);
  k->d.status_message = dupstr(k, s->status_message);
  k->d.attributes = dup_attrs(k, s->attributes, s->attribute_count);
  if (s->event_count != 0) {
    tt_event_t *e = blk(k, s->event_count * sizeof *e);
    for (uint32_t i = 0; e != NULL && i < s->event_count; i++) {
      e[i] = s->events[i];
      e[i].name = dupstr(k, s->events[i].name);
      e[i].attributes = dup_attrs(k, s->events[i].attributes, s->events[i].attribute_count);
    }
    k->d.events = e;
  }
  if (s->link_count != 0) {
    tt_link_t *l = blk(k, s->link_count * sizeof *l);
    for (uint32_t i = 0; l != NULL && i < s->link_count; i++) {
      l[i] = s->links[i];
      l[i].tracestate = dupstr(k, s->links[i].tracestate);
      l[i].attributes = dup_attrs(k, s->links[i].attributes, s->links[i].attribute_count);
    }
    k->d.links = l;
  }
  k->resource = *s->resource;
  k->resource.attributes = dup_attrs(k, s->resource->attributes, s->resource->attribute_count);
  k->resource.schema_url = dupstr(k, s->resource->schema_url);
  k->d.resource = &k->resource;
  return k; /* scope points into the never-freed tracer table */
}

static void free_kept(kept_t *k) {
  for (size_t i = 0; i < k->nblocks; i++)
    tt__free(k->blocks[i]);
  tt__free(k->blocks);
  tt__free(k);
}

static tt_export_result_t mem_export(void *state, const tt_span_data_t *const *spans, size_t n,
                                     uint64_t deadline, uint64_t *retry) {
  (void)deadline;
  tt_memory_exporter_t *m = state;
  pthread_mutex_lock(&m->mu);
  m->calls++;
  uint64_t delay = m->delay_ns;
  tt_export_result_t fail = TT_EXPORT_SUCCESS;
  if (m->fail_n > 0) {
    m->fail_n--;
    fail = m->fail_result;
  }
  if (delay != 0) {
    /* A cancellable sleep, standing in for a network call that a hung backend never answers. */
    uint64_t until = tt__now_mono_ns() + delay;
    struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
    while (!m->cancelled && tt__now_mono_ns() < until)
      if (pthread_cond_timedwait(&m->cancel_cv, &m->mu, &ts) == ETIMEDOUT)
        break;
  }
  int cancelled = m->cancelled;
  pthread_mutex_unlock(&m->mu);
  if (cancelled)
    return TT_EXPORT_FAILURE;
  if (fail != TT_EXPORT_SUCCESS) {
    *retry = 1000000; /* 1 ms: keeps retry tests short */
    return fail;
  }
  /* Copies are made under the lock, so the fork handlers (which take it) also guarantee that no
   * allocation of ours is in flight at fork: some allocators (ASan's) are not fork-safe. */
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < n; i++) {
    if (m->n >= m->max) {
      m->dropped++;
      continue;
    }
    kept_t *k = deep_copy(spans[i]);
    if (k != NULL)
      m->spans[m->n++] = k;
    else
      m->dropped++;
  }
  pthread_mutex_unlock(&m->mu);
  return TT_EXPORT_SUCCESS;
}

static void mem_cancel(void *state) {
  tt_memory_exporter_t *m = state;
  pthread_mutex_lock(&m->mu);
  m->cancels++;
  m->cancelled = 1;
  pthread_cond_broadcast(&m->cancel_cv);
  pthread_mutex_unlock(&m->mu);
}

static void mem_shutdown(void *state, uint64_t deadline) {
  (void)deadline;
  tt_memory_exporter_t *m = state;
  pthread_mutex_lock(&m->mu);
  m->shutdowns++;
  pthread_mutex_unlock(&m->mu);
}

tt_memory_exporter_t *tt_memory_exporter_new(size_t max_spans) {
  tt_memory_exporter_t *m = tt__calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->spans = tt__calloc(max_spans ? max_spans : 1, sizeof *m->spans);
  if (m->spans == NULL) {
    tt__free(m);
    return NULL;
  }
  m->max = max_spans;
  pthread_mutex_init(&m->mu, NULL);
  init_cancel_cv(m);
  pthread_once(&g_atfork_once, install);
  pthread_mutex_lock(&g_all_mu);
  m->next_all = g_all;
  g_all = m;
  pthread_mutex_unlock(&g_all_mu);
  return m;
}

void tt_memory_exporter_as_exporter(tt_memory_exporter_t *m, tt_exporter_t *out) {
  memset(out, 0, sizeof *out);
  out->size = sizeof *out;
  out->state = m;
  out->export_spans = mem_export;
  out->shutdown = mem_shutdown;
  out->cancel = mem_cancel;
}

size_t tt_memory_exporter_count(tt_memory_exporter_t *m) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->n;
  pthread_mutex_unlock(&m->mu);
  return n;
}

const tt_span_data_t *tt_memory_exporter_get(tt_memory_exporter_t *m, size_t i) {
  pthread_mutex_lock(&m->mu);
  const tt_span_data_t *d = i < m->n ? &m->spans[i]->d : NULL;
  pthread_mutex_unlock(&m->mu);
  return d;
}

const tt_span_data_t *tt_memory_exporter_find(tt_memory_exporter_t *m, const char *name) {
  const tt_span_data_t *d = NULL;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n && d == NULL; i++)
    if (strcmp(m->spans[i]->d.name, name) == 0)
      d = &m->spans[i]->d;
  pthread_mutex_unlock(&m->mu);
  return d;
}

void tt_memory_exporter_reset(tt_memory_exporter_t *m) {
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->n; i++)
    free_kept(m->spans[i]);
  m->n = 0;
  m->dropped = 0;
  m->calls = 0;
  pthread_mutex_unlock(&m->mu);
}

void tt_memory_exporter_fail_next(tt_memory_exporter_t *m, int n, tt_export_result_t result) {
  pthread_mutex_lock(&m->mu);
  m->fail_n = n;
  m->fail_result = result;
  pthread_mutex_unlock(&m->mu);
}

void tt_memory_exporter_set_delay(tt_memory_exporter_t *m, uint64_t delay_ns) {
  pthread_mutex_lock(&m->mu);
  m->delay_ns = delay_ns;
  pthread_mutex_unlock(&m->mu);
}

uint64_t tt_memory_exporter_export_calls(tt_memory_exporter_t *m) {
  pthread_mutex_lock(&m->mu);
  uint64_t c = m->calls;
  pthread_mutex_unlock(&m->mu);
  return c;
}

uint64_t tt_memory_exporter_cancel_calls(tt_memory_exporter_t *m) {
  pthread_mutex_lock(&m->mu);
  uint64_t c = m->cancels;
  pthread_mutex_unlock(&m->mu);
  return c;
}

uint64_t tt_memory_exporter_shutdown_calls(tt_memory_exporter_t *m) {
  pthread_mutex_lock(&m->mu);
  uint64_t c = m->shutdowns;
  pthread_mutex_unlock(&m->mu);
  return c;
}

void tt_memory_exporter_free(tt_memory_exporter_t *m) {
  if (m == NULL)
    return;
  pthread_mutex_lock(&g_all_mu);
  for (tt_memory_exporter_t **pp = &g_all; *pp != NULL; pp = &(*pp)->next_all) {
    if (*pp == m) {
      *pp = m->next_all;
      break;
    }
  }
  pthread_mutex_unlock(&g_all_mu);
  tt_memory_exporter_reset(m);
  pthread_cond_destroy(&m->cancel_cv);
  pthread_mutex_destroy(&m->mu);
  tt__free(m->spans);
  tt__free(m);
}
