/* Provider set-up and teardown: tt_init reads the options and the OTEL_* environment (one table
 * of numeric settings), builds the resource, picks the exporter and publishes the provider;
 * tt_shutdown unpublishes it and stops the exporter thread within a deadline. */
#include "internal.h"

#include "consistent_sampling.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Atomic(tt__provider_t *) tt__provider;
/* Its own section: ASan does not instrument globals in named sections, so it adds no
 * __odr_asan symbol (which would break the rule that every exported symbol starts with tt_). */
__attribute__((section(".data.tt_flags"))) int tt_tracing_on_ = 0;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static tt__provider_t *g_current;
/* Retired providers stay allocated: a span started under one may still read its limits. */
typedef struct retired_s {
  struct retired_s *next;
  tt__provider_t *p;
} retired_t;
static retired_t *g_retired;

/* Reads a non-negative integer variable; a malformed value keeps the default, with a warning.
 * Spaces around the digits are allowed on both sides (strtoull skips leading ones itself; the
 * exporter's OTEL_EXPORTER_OTLP_*TIMEOUT parser accepts trailing ones too). */
static uint32_t env_u32(const char *name, uint32_t def) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0')
    return def;
  const char *digits = v;
  while (isspace((unsigned char)*digits))
    digits++;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(digits, &end, 10);
  while (end != digits && isspace((unsigned char)*end))
    end++;
  if (errno != 0 || end == digits || *end != '\0' || *digits == '-' || *digits == '+' ||
      x > UINT32_MAX) {
    if (def == 0) /* 0 stands for a default computed later (TT_SPAN_MEMORY_MB's) */
      TT_LOG(TT_LOG_WARN, "%s=%s is not a valid non-negative integer; using the default", name, v);
    else
      TT_LOG(TT_LOG_WARN, "%s=%s is not a valid non-negative integer; using %u", name, v, def);
    return def;
  }
  return (uint32_t)x;
}

static void limits_from_env(tt__limits_t *l) {
  /* The general OTEL_ATTRIBUTE_* limits are the defaults of the span-specific ones. */
  uint32_t count = env_u32("OTEL_ATTRIBUTE_COUNT_LIMIT", 128);
  uint32_t len = env_u32("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", UINT32_MAX);
  l->attr_count = env_u32("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", count);
  l->attr_value_len = env_u32("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", len);
  l->event_count = env_u32("OTEL_SPAN_EVENT_COUNT_LIMIT", 128);
  l->link_count = env_u32("OTEL_SPAN_LINK_COUNT_LIMIT", 128);
  l->event_attr_count = env_u32("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", count);
  l->link_attr_count = env_u32("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", count);
}

static uint32_t pick(uint32_t opt, const char *env, uint32_t def) {
  return opt != 0 ? opt : env_u32(env, def);
}

static int choose_exporter(tt__provider_t *p, const tt_options_t *o) {
  if (o != NULL && o->exporter != NULL) {
    size_t sz = o->exporter->size;
    if (sz < TT_EXPORTER_SIZE_V1 || o->exporter->export_spans == NULL)
      return TT_EINVAL;
    /* Copy only what the caller's struct has: an older, smaller one has no cancel field, and
     * reading past it would take whatever follows in the caller's memory as a callback. */
    tt__copy_sized(&p->exporter, sizeof p->exporter, o->exporter, sz);
    p->exporter.size = sizeof p->exporter;
    p->has_exporter = 1;
    return 0;
  }
  const char *name = getenv("OTEL_TRACES_EXPORTER");
  if (name == NULL || *name == '\0')
    name = "otlp";
  if (strcmp(name, "none") == 0) {
    p->export_disabled = 1; /* asked for: ended spans are not failures */
    return 0;
  }
  if (strcmp(name, "console") == 0) {
    int rc = tt__exporter_console(&p->exporter);
    p->has_exporter = rc == 0;
    return rc;
  }
  if (strcmp(name, "otlp") == 0) {
    int rc = tt__exporter_otlp_from_env(&p->exporter);
    if (rc != 0) {
      TT_LOG(TT_LOG_WARN, "OTLP exporter set-up failed (%s); spans will not be exported",
             tt_strerror(rc));
      return 0;
    }
    p->has_exporter = 1;
    return 0;
  }
  TT_LOG(TT_LOG_WARN, "OTEL_TRACES_EXPORTER=%s is not supported; spans will not be exported", name);
  return 0;
}

int tt_init(const tt_options_t *o) {
  if (o != NULL && o->size < sizeof(size_t))
    return TT_EINVAL;
  /* A caller built against an older, smaller struct: read only what it has, the rest as zero. */
  tt_options_t older;
  if (o != NULL && o->size < sizeof *o) {
    tt__copy_sized(&older, sizeof older, o, o->size);
    o = &older;
  }
  /* A ratio sampler given a ratio outside [0, 1] (or NaN) is the caller's mistake, refused as the
   * environment's OTEL_TRACES_SAMPLER_ARG is: NaN would otherwise silently mean "never". */
  if (o != NULL &&
      (o->sampler == TT_SAMPLER_TRACEIDRATIO ||
       o->sampler == TT_SAMPLER_PARENTBASED_TRACEIDRATIO) &&
      !(o->sampler_ratio >= 0.0 && o->sampler_ratio <= 1.0))
    return TT_EINVAL;
  pthread_mutex_lock(&g_mu);
  if (g_current != NULL || atomic_load(&tt__exporter_threads_alive) != 0) {
    pthread_mutex_unlock(&g_mu);
    return TT_EBUSY;
  }
  tt__log_init_from_env();
  tt__cpu_detect();
  const char *dis = getenv("OTEL_SDK_DISABLED");
  if (dis != NULL && strcasecmp(dis, "true") == 0) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  tt__allocator_freeze();
  tt__provider_t *p = tt__calloc(1, sizeof *p);
  if (p == NULL) {
    pthread_mutex_unlock(&g_mu);
    return TT_ENOMEM;
  }
  static uintptr_t last_tag;
  last_tag = last_tag % 63 + 1; /* under g_mu */
  p->tag = last_tag;
  limits_from_env(&p->limits);
  p->default_scope = &tt__default_tracer()->scope;
  double ratio = 1.0;
  if (o != NULL && o->sampler != TT_SAMPLER_FROM_ENV) {
    p->sampler = o->sampler;
    ratio = o->sampler_ratio;
  } else {
    tt__sampler_from_env(&p->sampler, &ratio);
  }
  p->ratio_threshold = tt__threshold_from_ratio_prec(ratio, TT_TH_PRECISION_DEFAULT);
  p->max_queue_size = pick(o ? o->max_queue_size : 0, "OTEL_BSP_MAX_QUEUE_SIZE", 2048);
  p->schedule_delay_ms = pick(o ? o->schedule_delay_ms : 0, "OTEL_BSP_SCHEDULE_DELAY", 5000);
  p->max_export_batch_size =
      pick(o ? o->max_export_batch_size : 0, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512);
  p->export_timeout_ms = pick(o ? o->export_timeout_ms : 0, "OTEL_BSP_EXPORT_TIMEOUT", 30000);
  if (p->max_queue_size == 0)
    p->max_queue_size = 2048;
  if (p->max_queue_size > TT__QUEUE_MAX) {
    TT_LOG(TT_LOG_WARN, "max queue size %u is above the largest taken, %u; using %u",
           p->max_queue_size, TT__QUEUE_MAX, TT__QUEUE_MAX);
    p->max_queue_size = TT__QUEUE_MAX;
  }
  if (p->max_export_batch_size == 0)
    p->max_export_batch_size = 512;
  if (p->max_export_batch_size > p->max_queue_size)
    p->max_export_batch_size = p->max_queue_size; /* the specification's rule */
  if (p->schedule_delay_ms == 0)
    p->schedule_delay_ms = 1;
  int rc = tt__resource_build(p, o);
  if (rc == 0)
    rc = choose_exporter(p, o);
  if (rc != 0) {
    tt__resource_free(p);
    tt__free(p);
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  tt__propagators_from_env();
  /* One budget for span memory, whatever the number of threads (docs/agent.md, "Memory"). */
  uint32_t mb = env_u32("TT_SPAN_MEMORY_MB", 0);
  if (mb > TT__SPAN_MEMORY_MB_MAX) {
    TT_LOG(TT_LOG_WARN, "TT_SPAN_MEMORY_MB=%u is above the largest taken, %u; using %u", mb,
           TT__SPAN_MEMORY_MB_MAX, TT__SPAN_MEMORY_MB_MAX);
    mb = TT__SPAN_MEMORY_MB_MAX;
  }
  p->memory_budget = mb != 0 ? (uint64_t)mb << 20 : tt__memory_default_budget(p->max_queue_size);
  tt__memory_set_budget(p->memory_budget);
  tt__thread_atfork_install();
  rc = tt__batch_start(p);
  if (rc != 0) {
    if (p->has_exporter && p->exporter.shutdown != NULL)
      p->exporter.shutdown(p->exporter.state, tt__now_mono_ns());
    tt__resource_free(p);
    tt__free(p);
    pthread_mutex_unlock(&g_mu);
    return rc;
  }
  g_current = p;
  atomic_store_explicit(&tt__provider, p, memory_order_release);
  __atomic_store_n(&tt_tracing_on_, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_mu);
  TT_LOG(TT_LOG_INFO, "tracing on: queue %u, batch %u, delay %u ms", p->max_queue_size,
         p->max_export_batch_size, p->schedule_delay_ms);
  return 0;
}

int tt_flush(uint64_t deadline_ns) {
  tt__provider_t *p = atomic_load_explicit(&tt__provider, memory_order_acquire);
  if (p == NULL)
    return TT_ENOTINIT;
  return tt__batch_flush(p, deadline_ns);
}

int tt_shutdown(uint64_t deadline_ns) {
  pthread_mutex_lock(&g_mu);
  tt__provider_t *p = g_current;
  if (p == NULL) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  __atomic_store_n(&tt_tracing_on_, 0, __ATOMIC_RELEASE);
  atomic_store_explicit(&tt__provider, NULL, memory_order_release);
  g_current = NULL;
  int rc = tt__batch_shutdown(p, deadline_ns);
  retired_t *r = tt__malloc(sizeof *r);
  if (r != NULL) {
    r->p = p;
    r->next = g_retired;
    g_retired = r;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

void tt_shutdown_atexit(void) {
  tt_shutdown(tt__now_mono_ns() + 5000000000ull);
}
