/* tailtrace.h: the one public header of libtailtrace (OpenTelemetry-compatible tracing for C).
 * It includes no third-party header. Everything exported starts with tt_ / TT_.
 *
 * Model: one process-wide tracer provider set up by tt_init() (from an options struct and/or the
 * OTEL_* environment) and torn down by tt_shutdown(). Before tt_init and after tt_shutdown every
 * span call is a cheap no-op. Spans are opaque handles; a span is used by one thread at a time
 * (hand it to another thread only with your own synchronisation), and is invalid after
 * tt_span_end. Finished spans leave the application thread through a bounded lock-free queue and
 * are handed to the exporter, in batches, by one background thread. */
#if !defined(TAILTRACE_H) && !defined(TT_OTLP_OPTIONS_ONLY)
#define TAILTRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TT_BUILDING_LIBRARY)
#define TT_EXTERN __attribute__((visibility("default")))
#else
#define TT_EXTERN
#endif

#define TT_VERSION_MAJOR 0
#define TT_VERSION_MINOR 1
#define TT_VERSION_PATCH 0

/* Returns "MAJOR.MINOR.PATCH"; static storage, never freed. Any thread. */
TT_EXTERN const char *tt_version_string(void);

/* ---- errors ------------------------------------------------------------------------------ */

/* One table of error codes: every fallible call returns 0 or one of these (negative). */
#define TT_ERRNO_MAP(X)                                                                            \
  X(EINVAL, -1, "invalid argument")                                                                \
  X(ENOMEM, -2, "out of memory")                                                                   \
  X(EBUSY, -3, "already initialised or in use")                                                    \
  X(ENOTINIT, -4, "tracer provider not initialised")                                               \
  X(ETIMEDOUT, -5, "deadline passed")                                                              \
  X(EPARSE, -6, "malformed input")                                                                 \
  X(ENOSPC, -7, "buffer too small or limit reached")                                               \
  X(ENOTFOUND, -8, "not found")                                                                    \
  X(EEXPORT, -9, "exporter failed")                                                                \
  X(ENOTSUP, -10, "not supported")

enum {
#define TT_ERRNO_ENUM(name, value, text) TT_##name = (value),
  TT_ERRNO_MAP(TT_ERRNO_ENUM)
#undef TT_ERRNO_ENUM
};

/* Returns a static English description of a TT_E* code (or "unknown error"). Any thread. */
TT_EXTERN const char *tt_strerror(int err);

/* ---- time ---------------------------------------------------------------------------------- */

/* Deadlines are absolute CLOCK_MONOTONIC nanoseconds. Any thread. */
TT_EXTERN uint64_t tt_monotonic_ns(void);
/* Wall-clock (CLOCK_REALTIME) nanoseconds since the Unix epoch, the unit of span timestamps. */
TT_EXTERN uint64_t tt_unix_ns(void);

/* ---- values -------------------------------------------------------------------------------- */

typedef enum tt_attr_type_e {
  TT_ATTR_STRING = 1,
  TT_ATTR_BOOL = 2,
  TT_ATTR_INT = 3,
  TT_ATTR_DOUBLE = 4,
  TT_ATTR_STRING_ARRAY = 5, /* items: const char *const[] (NUL-terminated strings) */
  TT_ATTR_BOOL_ARRAY = 6,   /* items: const uint8_t[] (0 or 1) */
  TT_ATTR_INT_ARRAY = 7,    /* items: const int64_t[] */
  TT_ATTR_DOUBLE_ARRAY = 8  /* items: const double[] */
} tt_attr_type_t;

/* A key/value attribute. Used both as input (caller's memory, copied by the library before the
 * call returns) and as output in the finished-span view (library memory, valid during the
 * exporter callback only). Keys are NUL-terminated. On input a string value with len 0 is
 * measured with strlen; on output len is exact and the string is also NUL-terminated. */
typedef struct tt_attribute_s {
  const char *key;
  tt_attr_type_t type;
  union {
    struct {
      const char *ptr;
      size_t len;
    } str;
    int64_t i;
    double d;
    int b;
    struct {
      const void *items;
      size_t count;
    } array;
  } value;
} tt_attribute_t;

/* Initialiser helpers for attribute arrays: tt_attribute_t a[] = {TT_STR("k", "v"), TT_INT(..)}; */
#ifndef __cplusplus
#define TT_STR(k, v)                                                                               \
  {                                                                                                \
    .key = (k), .type = TT_ATTR_STRING, .value.str = {(v), 0 }                                     \
  }
#define TT_INT(k, v)                                                                               \
  { .key = (k), .type = TT_ATTR_INT, .value.i = (int64_t)(v) }
#define TT_DOUBLE(k, v)                                                                            \
  { .key = (k), .type = TT_ATTR_DOUBLE, .value.d = (double)(v) }
#define TT_BOOL(k, v)                                                                              \
  { .key = (k), .type = TT_ATTR_BOOL, .value.b = !!(v) }
#else
/* C++ has no nested designators (and C++11 no designators at all), so there the same macros
 * call these inline helpers; the array initialisers read the same in both languages. */
static inline tt_attribute_t tt_attr_make_(const char *key, tt_attr_type_t type) {
  tt_attribute_t a = tt_attribute_t();
  a.key = key;
  a.type = type;
  return a;
}
static inline tt_attribute_t tt_attr_str_(const char *key, const char *value) {
  tt_attribute_t a = tt_attr_make_(key, TT_ATTR_STRING);
  a.value.str.ptr = value;
  a.value.str.len = 0;
  return a;
}
static inline tt_attribute_t tt_attr_int_(const char *key, int64_t value) {
  tt_attribute_t a = tt_attr_make_(key, TT_ATTR_INT);
  a.value.i = value;
  return a;
}
static inline tt_attribute_t tt_attr_double_(const char *key, double value) {
  tt_attribute_t a = tt_attr_make_(key, TT_ATTR_DOUBLE);
  a.value.d = value;
  return a;
}
static inline tt_attribute_t tt_attr_bool_(const char *key, int value) {
  tt_attribute_t a = tt_attr_make_(key, TT_ATTR_BOOL);
  a.value.b = value;
  return a;
}
#define TT_STR(k, v) tt_attr_str_((k), (v))
#define TT_INT(k, v) tt_attr_int_((k), (int64_t)(v))
#define TT_DOUBLE(k, v) tt_attr_double_((k), (double)(v))
#define TT_BOOL(k, v) tt_attr_bool_((k), !!(v))
#endif

/* ---- span context -------------------------------------------------------------------------- */

#define TT_TRACE_FLAG_SAMPLED 0x01u
#define TT_TRACE_FLAG_RANDOM 0x02u /* W3C Level 2: the trace id's right 7 bytes are random */

/* The small value type that identifies a span. A context is valid when neither id is all zero. */
typedef struct tt_span_context_s {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t trace_flags; /* TT_TRACE_FLAG_* */
  uint8_t is_remote;   /* 1 when extracted from a carrier */
} tt_span_context_t;

/* Pure functions on a caller's context value; any thread. hex outputs are lowercase and
 * NUL-terminated (33 and 17 bytes). */
TT_EXTERN int tt_span_context_is_valid(const tt_span_context_t *ctx);
TT_EXTERN int tt_span_context_is_sampled(const tt_span_context_t *ctx);
TT_EXTERN void tt_trace_id_hex(const tt_span_context_t *ctx, char out[33]);
TT_EXTERN void tt_span_id_hex(const tt_span_context_t *ctx, char out[17]);

/* ---- baggage (W3C) ------------------------------------------------------------------------- */

#define TT_BAGGAGE_MAX_ENTRIES 180
#define TT_BAGGAGE_MAX_BYTES 8192

/* A self-contained baggage set (no heap): values stored decoded. Zero it or call
 * tt_baggage_init before use. Not thread-safe; owned by the caller. */
typedef struct tt_baggage_s {
  uint16_t count;
  uint16_t used; /* bytes of buf in use */
  struct {
    uint16_t key_off, key_len, value_off, value_len, meta_off, meta_len;
  } entry[TT_BAGGAGE_MAX_ENTRIES];
  char buf[TT_BAGGAGE_MAX_BYTES];
} tt_baggage_t;

TT_EXTERN void tt_baggage_init(tt_baggage_t *b);
/* Sets (or replaces) key; metadata may be NULL. Strings are copied. TT_ENOSPC when full,
 * TT_EINVAL when the key is not a valid token or metadata is not W3C properties
 * ("p", "p=v;q"; no ','). On error b is unchanged. */
TT_EXTERN int tt_baggage_set(tt_baggage_t *b, const char *key, const char *value,
                             const char *metadata);
/* Returns the value of key (pointer into b, valid until b changes) and its length, or NULL. */
TT_EXTERN const char *tt_baggage_get(const tt_baggage_t *b, const char *key, size_t *len);
TT_EXTERN int tt_baggage_remove(tt_baggage_t *b, const char *key);
/* Parses a W3C baggage header value, adding its entries to b. Invalid list members are skipped
 * (counted in the return value as a positive number of skipped members); entries past the
 * limits are dropped. Returns the number of skipped members (>= 0) or a TT_E* code. */
TT_EXTERN int tt_baggage_parse(tt_baggage_t *b, const char *header, size_t len);
/* Formats b as a header value (percent-encoding values) into out (NUL-terminated). Returns the
 * length or TT_ENOSPC. */
TT_EXTERN int tt_baggage_format(const tt_baggage_t *b, char *out, size_t cap);

/* ---- propagation (W3C trace context + baggage) ---------------------------------------------- */

#define TT_TRACESTATE_MAX_LEN 512
#define TT_TRACEPARENT_LEN 55

/* What tt_extract found in a carrier: the remote parent. Caller-owned value of about 550 bytes
 * (the tracestate is held up to the 512 characters W3C asks every vendor to propagate), small
 * enough for any thread's stack; no heap. span_context is all zero when there was no valid
 * traceparent. Baggage (up to 8 KB) is not part of it: tt_extract_baggage fills a tt_baggage_t
 * the caller places where it likes (static, per thread, on the heap, in a request object). */
typedef struct tt_remote_context_s {
  tt_span_context_t span_context;
  char tracestate[TT_TRACESTATE_MAX_LEN + 1]; /* normalised; "" when absent or invalid */
} tt_remote_context_t;

/* Carrier callbacks. get returns the NUL-terminated value of a header (the carrier matches names
 * case-insensitively as HTTP does and joins repeated headers with ","), or NULL; the pointer
 * must stay valid until the next get. set stores a copy of value under key. */
typedef const char *(*tt_carrier_get_fn)(void *carrier, const char *key);
typedef void (*tt_carrier_set_fn)(void *carrier, const char *key, const char *value);

/* Extracts the trace context (traceparent, tracestate) when the tracecontext propagator is
 * configured (OTEL_PROPAGATORS; default "tracecontext,baggage", also before tt_init). Returns 0
 * when a valid traceparent was found, TT_ENOTFOUND when absent, invalid or not configured.
 * Any thread. */
TT_EXTERN int tt_extract(tt_carrier_get_fn get, void *carrier, tt_remote_context_t *out);
/* Empties out, then adds the carrier's baggage header when the baggage propagator is configured
 * (rules of tt_baggage_parse). Returns the number of list members skipped as invalid (>= 0), or
 * TT_ENOTFOUND when there is no header or no baggage propagator (out is then empty). Any
 * thread; out is the caller's. */
TT_EXTERN int tt_extract_baggage(tt_carrier_get_fn get, void *carrier, tt_baggage_t *out);
/* Injects span's context (traceparent + tracestate) and baggage (may be NULL) with the
 * configured propagators. A NULL span injects baggage only. Any thread owning span. */
typedef struct tt_span_s tt_span_t;
TT_EXTERN int tt_inject(const tt_span_t *span, const tt_baggage_t *baggage, tt_carrier_set_fn set,
                        void *carrier);

/* Low-level W3C codecs (pure, any thread), exposed for other transports and the fuzzers. */
/* Strict traceparent parse (lowercase hex, version ff invalid, zero ids invalid, future
 * versions by their first 55 characters). Surrounding spaces and tabs are ignored. */
TT_EXTERN int tt_traceparent_parse(const char *s, size_t len, tt_span_context_t *out);
/* Writes "00-<trace>-<span>-<flags>" (55 chars + NUL). */
TT_EXTERN void tt_traceparent_format(const tt_span_context_t *ctx, char out[56]);
/* Validates a tracestate header and writes its normalised form (members joined by ",", no
 * blanks, at most TT_TRACESTATE_MAX_LEN chars by dropping members per the W3C rules) into out.
 * Returns the length, or TT_EPARSE when the whole header must be discarded. */
TT_EXTERN int tt_tracestate_parse(const char *s, size_t len, char *out, size_t cap);

/* ---- finished-span view (what exporters read) ------------------------------------------------ */

typedef enum tt_span_kind_e {
  TT_SPAN_KIND_UNSPECIFIED = 0,
  TT_SPAN_KIND_INTERNAL = 1,
  TT_SPAN_KIND_SERVER = 2,
  TT_SPAN_KIND_CLIENT = 3,
  TT_SPAN_KIND_PRODUCER = 4,
  TT_SPAN_KIND_CONSUMER = 5
} tt_span_kind_t; /* numbers equal OTLP's SpanKind */

typedef enum tt_status_code_e {
  TT_STATUS_UNSET = 0,
  TT_STATUS_OK = 1,
  TT_STATUS_ERROR = 2
} tt_status_code_t; /* numbers equal OTLP's StatusCode */

typedef struct tt_event_s {
  const char *name;
  uint64_t time_unix_ns;
  const tt_attribute_t *attributes;
  uint32_t attribute_count;
  uint32_t dropped_attributes_count;
} tt_event_t;

/* A link. As input to tt_span_add_link / span options: context, tracestate (may be NULL) and
 * attributes are copied. As output: library memory valid during the export call. */
typedef struct tt_link_s {
  tt_span_context_t context;
  const char *tracestate;
  const tt_attribute_t *attributes;
  uint32_t attribute_count;
  uint32_t dropped_attributes_count;
} tt_link_t;

/* Resource and instrumentation scope shared by many spans; exporters may group by pointer
 * identity (the same resource/scope has the same address for the life of the provider). */
typedef struct tt_resource_s {
  const tt_attribute_t *attributes;
  uint32_t attribute_count;
  uint32_t dropped_attributes_count;
  const char *schema_url; /* "" when none */
} tt_resource_t;

typedef struct tt_scope_s {
  const char *name;
  const char *version;    /* "" when none */
  const char *schema_url; /* "" when none */
} tt_scope_t;

/* OTLP Span.flags bits (trace flags in the low byte, plus whether the parent is remote). */
#define TT_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE 0x100u
#define TT_SPAN_FLAGS_CONTEXT_IS_REMOTE 0x200u

/* A finished span, read-only. Exporters receive arrays of pointers to these; every pointer in
 * it (strings, arrays, resource, scope) is library memory valid until the export callback
 * returns, and strings are NUL-terminated. Copy what you keep. */
typedef struct tt_span_data_s {
  /* Ordered by how often a span writes them: the first 88 bytes are what every span sets (the
   * library keeps them on the two cache lines a plain span touches); the rest keep their
   * defaults unless the span used them. */
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_span_id[8]; /* all zero for a root span */
  uint64_t start_time_unix_ns;
  uint64_t end_time_unix_ns;
  const char *name;
  const tt_resource_t *resource;
  const tt_scope_t *scope;
  uint32_t flags; /* OTLP Span.flags: trace flags | TT_SPAN_FLAGS_* */
  tt_span_kind_t kind;
  int has_parent;
  tt_status_code_t status_code;
  const char *status_message; /* "" when none */
  const char *tracestate;     /* "" when none */
  const tt_attribute_t *attributes;
  uint32_t attribute_count;
  uint32_t dropped_attributes_count;
  const tt_event_t *events;
  uint32_t event_count;
  uint32_t dropped_events_count;
  const tt_link_t *links;
  uint32_t link_count;
  uint32_t dropped_links_count;
} tt_span_data_t;

/* ---- exporter interface --------------------------------------------------------------------- */

typedef enum tt_export_result_e {
  TT_EXPORT_SUCCESS = 0,
  TT_EXPORT_RETRYABLE = 1, /* try again after *retry_after_ns (0: library backoff) */
  TT_EXPORT_FAILURE = 2    /* permanent: the batch is dropped and counted */
} tt_export_result_t;

/* An exporter is a table of callbacks plus its state. The library calls export_spans,
 * force_flush and shutdown from its one exporter thread, never two at once, and never from an
 * application thread. deadline_ns is absolute tt_monotonic_ns(); the callback should return by
 * then. tt_init copies this struct (its first `size` bytes: an exporter built against an older
 * header, without cancel, keeps working); the library owns the exporter afterwards and calls
 * shutdown exactly once (then never again), after which the exporter frees its state.
 * force_flush, shutdown and cancel may be NULL.
 *
 * cancel is the one callback made from another thread: when tt_shutdown's deadline passes while
 * export_spans is running, the thread calling tt_shutdown calls cancel(state) once. It must not
 * block; it makes the export in flight return promptly (its batch then counts as failed) and
 * may make every later call fail at once, since shutdown follows. shutdown is never called
 * before cancel has returned. tt_flush never cancels: tracing goes on after a flush. */
typedef struct tt_exporter_s {
  size_t size; /* sizeof(tt_exporter_t) */
  void *state;
  tt_export_result_t (*export_spans)(void *state, const tt_span_data_t *const *spans, size_t count,
                                     uint64_t deadline_ns, uint64_t *retry_after_ns);
  int (*force_flush)(void *state, uint64_t deadline_ns);
  void (*shutdown)(void *state, uint64_t deadline_ns);
  void (*cancel)(void *state); /* newer field: absent when size is TT_EXPORTER_SIZE_V1 */
} tt_exporter_t;
/* The size of the first tt_exporter_t (before cancel): the smallest size tt_init accepts. */
#define TT_EXPORTER_SIZE_V1 offsetof(tt_exporter_t, cancel)

/* In-memory exporter for tests: keeps deep copies of exported spans (up to max_spans; more are
 * counted as dropped). The handle stays owned by the caller, who frees it with
 * tt_memory_exporter_free after tt_shutdown. Its accessors are thread-safe. */
typedef struct tt_memory_exporter_s tt_memory_exporter_t;
TT_EXTERN tt_memory_exporter_t *tt_memory_exporter_new(size_t max_spans);
/* Fills *out with an exporter that forwards to m (m must outlive the provider). */
TT_EXTERN void tt_memory_exporter_as_exporter(tt_memory_exporter_t *m, tt_exporter_t *out);
TT_EXTERN size_t tt_memory_exporter_count(tt_memory_exporter_t *m);
/* Returns the i-th kept span (deep copy owned by m, valid until reset/free), or NULL. */
TT_EXTERN const tt_span_data_t *tt_memory_exporter_get(tt_memory_exporter_t *m, size_t i);
/* Finds the first kept span with this name, or NULL. */
TT_EXTERN const tt_span_data_t *tt_memory_exporter_find(tt_memory_exporter_t *m, const char *name);
TT_EXTERN void tt_memory_exporter_reset(tt_memory_exporter_t *m);
/* Makes the next n export calls return result (to test retries and failures). */
TT_EXTERN void tt_memory_exporter_fail_next(tt_memory_exporter_t *m, int n,
                                            tt_export_result_t result);
/* Makes every export call sleep this long first (to test deadlines). The exporter's cancel ends
 * the sleep: that export and every later one then fail. */
TT_EXTERN void tt_memory_exporter_set_delay(tt_memory_exporter_t *m, uint64_t delay_ns);
/* How many times the library called the exporter's cancel. Any thread. */
TT_EXTERN uint64_t tt_memory_exporter_cancel_calls(tt_memory_exporter_t *m);
TT_EXTERN uint64_t tt_memory_exporter_export_calls(tt_memory_exporter_t *m);
TT_EXTERN uint64_t tt_memory_exporter_shutdown_calls(tt_memory_exporter_t *m);
TT_EXTERN void tt_memory_exporter_free(tt_memory_exporter_t *m);

/* Attribute lookup helper on a finished span (linear); NULL when absent. Any thread. */
TT_EXTERN const tt_attribute_t *tt_span_data_attribute(const tt_span_data_t *s, const char *key);

/* ---- set-up ------------------------------------------------------------------------------- */

typedef enum tt_sampler_kind_e {
  TT_SAMPLER_FROM_ENV = 0, /* OTEL_TRACES_SAMPLER, default parentbased_always_on */
  TT_SAMPLER_ALWAYS_ON,
  TT_SAMPLER_ALWAYS_OFF,
  TT_SAMPLER_TRACEIDRATIO,
  TT_SAMPLER_PARENTBASED_ALWAYS_ON,
  TT_SAMPLER_PARENTBASED_ALWAYS_OFF,
  TT_SAMPLER_PARENTBASED_TRACEIDRATIO
} tt_sampler_kind_t;

/* Log levels for TT_LOG=off|error|warn|info|debug and the handler. Default: warn, to stderr. */
typedef enum tt_log_level_e {
  TT_LOG_OFF = 0,
  TT_LOG_ERROR = 1,
  TT_LOG_WARN = 2,
  TT_LOG_INFO = 3,
  TT_LOG_DEBUG = 4
} tt_log_level_t;
/* Called with a formatted NUL-terminated line (no newline) from any library thread. */
typedef void (*tt_log_fn)(tt_log_level_t level, const char *line, void *arg);

/* Options for tt_init. Zero means "from the environment, else the OpenTelemetry default" for
 * every field, so `tt_options_t o = {.size = sizeof o};` is the environment-only set-up. Span
 * memory (records, queues) for all threads together is bounded by TT_SPAN_MEMORY_MB (megabytes;
 * default: two queues of 4 KB records plus 864, and one thread's queue, 20.5 MB at the default
 * queue): whatever the number of threads, spans past it are dropped and counted. */
typedef struct tt_options_s {
  size_t size; /* sizeof(tt_options_t): lets the struct grow */
  const char *service_name;
  /* Extra resource attributes; override OTEL_RESOURCE_ATTRIBUTES on the same key. Copied. */
  const tt_attribute_t *resource_attributes;
  size_t resource_attribute_count;
  tt_sampler_kind_t sampler;
  double sampler_ratio; /* for the ratio samplers, 0..1 (else tt_init: TT_EINVAL) */
  /* The exporter; NULL selects by OTEL_TRACES_EXPORTER (otlp when linked in, console, none). */
  const tt_exporter_t *exporter;
  uint32_t max_queue_size;        /* OTEL_BSP_MAX_QUEUE_SIZE, default 2048 */
  uint32_t schedule_delay_ms;     /* OTEL_BSP_SCHEDULE_DELAY, default 5000 */
  uint32_t max_export_batch_size; /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512 */
  uint32_t export_timeout_ms;     /* OTEL_BSP_EXPORT_TIMEOUT, default 30000 */
} tt_options_t;

/* Sets up the process-wide provider. opts may be NULL (environment alone). Returns TT_EBUSY if
 * already initialised. OTEL_SDK_DISABLED=true makes it succeed and leave tracing off. Not
 * concurrently with tt_shutdown. */
TT_EXTERN int tt_init(const tt_options_t *opts);
/* Exports everything queued so far and calls the exporter's force_flush, waiting at most until
 * deadline_ns (absolute tt_monotonic_ns). 0, TT_ETIMEDOUT or TT_ENOTINIT. Any thread. */
TT_EXTERN int tt_flush(uint64_t deadline_ns);
/* Stops tracing (new spans become no-ops), exports what is queued and shuts the exporter down,
 * waiting at most until deadline_ns. Safe from atexit and to call twice. Returns TT_ETIMEDOUT
 * when the exporter thread did not finish in time: an export in flight is then cancelled
 * (tt_exporter_t.cancel, when the exporter has one), what is still queued is dropped and
 * counted, and the thread is left to finish on its own. */
TT_EXTERN int tt_shutdown(uint64_t deadline_ns);
/* Convenience for atexit(): tt_shutdown with a 5 s deadline. */
TT_EXTERN void tt_shutdown_atexit(void);

/* Replaces the allocator. Only before the first tt_init (TT_EBUSY after). The library never
 * allocates on the span hot path in steady state; it does when growing its record pool. libcurl
 * and gRPC core (the OTLP transports) keep the system allocator. */
TT_EXTERN int tt_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                               void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *));
/* Installs a log handler (NULL: stderr) and level (overrides TT_LOG). Any time. */
TT_EXTERN void tt_set_log_handler(tt_log_fn fn, void *arg, tt_log_level_t level);

/* Statistics, summed over threads (a consistent snapshot is not promised). */
typedef struct tt_stats_s {
  size_t size;                    /* sizeof(tt_stats_t) */
  uint64_t spans_started;         /* recording spans started */
  uint64_t spans_unsampled;       /* non-recording spans started (head sampler said no) */
  uint64_t spans_ended;           /* recording spans ended */
  uint64_t spans_exported;        /* accepted by the exporter */
  uint64_t dropped_queue_full;    /* ended while the thread's queue was full */
  uint64_t dropped_no_record;     /* not recorded: span memory was at TT_SPAN_MEMORY_MB */
  uint64_t dropped_export_failed; /* the exporter failed or ran out of time */
  uint64_t dropped_shutdown;      /* ended after tt_shutdown began */
  uint64_t dropped_attributes;    /* attributes/events/links dropped by limits, summed */
  uint64_t export_calls;
} tt_stats_t;
/* Fills *out (set out->size first; an older, smaller struct gets the fields it has). Any
 * thread. */
TT_EXTERN int tt_stats_get(tt_stats_t *out);

/* ---- tracers (instrumentation scopes) ---------------------------------------------------------
 */

typedef struct tt_tracer_s tt_tracer_t;
/* Returns the tracer for an instrumentation scope (name copied, at most 127 bytes; same name and
 * version give the same tracer). Works before tt_init. Never freed; at most 64 distinct scopes,
 * further ones get the default tracer. NULL name gives the default tracer ("tailtrace"). */
TT_EXTERN tt_tracer_t *tt_tracer_get(const char *name, const char *version);

/* ---- spans --------------------------------------------------------------------------------- */

typedef enum tt_parent_e {
  TT_PARENT_CURRENT = 0, /* the calling thread's current span, else a new root */
  TT_PARENT_SPAN = 1,    /* options.parent (a live span; NULL: new root) */
  TT_PARENT_REMOTE = 2,  /* options.remote (from tt_extract; invalid context: new root) */
  TT_PARENT_NONE = 3     /* a new root */
} tt_parent_t;

typedef struct tt_span_options_s {
  size_t size;         /* sizeof(tt_span_options_t) */
  tt_span_kind_t kind; /* 0 is taken as INTERNAL */
  tt_parent_t parent_mode;
  const tt_span_t *parent;
  const tt_remote_context_t *remote;
  uint64_t start_time_unix_ns;      /* 0: now */
  const tt_attribute_t *attributes; /* seen by the sampler; copied */
  size_t attribute_count;
  const tt_link_t *links; /* copied */
  size_t link_count;
} tt_span_options_t;

/* Non-zero while a provider is installed; read (relaxed) by the inline fast paths below so a
 * call with no tracer installed costs a load and a branch. Never write it. */
TT_EXTERN extern int tt_tracing_on_;
TT_EXTERN tt_span_t *tt_span_start_(tt_tracer_t *tracer, const char *name,
                                    const tt_span_options_t *opts);

/* Starts a span. tracer NULL: the default tracer. opts NULL: INTERNAL, child of the current
 * span. name is copied. Returns NULL when no provider is installed or no record is free (all
 * other span calls accept NULL as a no-op); an unsampled span returns a non-recording handle
 * that still carries a context for propagation. The calling thread owns the span. */
static inline tt_span_t *tt_span_start(tt_tracer_t *tracer, const char *name,
                                       const tt_span_options_t *opts) {
  if (__builtin_expect(!__atomic_load_n(&tt_tracing_on_, __ATOMIC_RELAXED), 0))
    return NULL;
  return tt_span_start_(tracer, name, opts);
}
/* Ends the span (now / at end_time_unix_ns) and invalidates the handle: the thread's next span
 * may reuse its memory at once. So do not end it twice or read it afterwards; to start children
 * after it ends, take its context with tt_span_get_context first and pass that in a
 * TT_PARENT_REMOTE parent; and restore the previous current span before ending one you made
 * current (TT_SPAN does that in the right order). */
TT_EXTERN void tt_span_end_at(tt_span_t *span, uint64_t end_time_unix_ns);
static inline void tt_span_end(tt_span_t *span) {
  if (span != NULL)
    tt_span_end_at(span, 0);
}
TT_EXTERN int tt_span_is_recording(const tt_span_t *span);
/* Copies the span's context; an all-zero context for NULL. */
TT_EXTERN void tt_span_get_context(const tt_span_t *span, tt_span_context_t *out);

/* Attributes: keys and values are copied; setting an existing key replaces its value. Over the
 * limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, or the
 * record's fixed storage) the attribute is dropped and counted, or its strings truncated. */
TT_EXTERN void tt_span_set_attribute(tt_span_t *span, const tt_attribute_t *attr);
TT_EXTERN void tt_span_set_attributes(tt_span_t *span, const tt_attribute_t *attrs, size_t n);
TT_EXTERN void tt_span_set_str(tt_span_t *span, const char *key, const char *value);
TT_EXTERN void tt_span_set_strn(tt_span_t *span, const char *key, const char *value, size_t len);
TT_EXTERN void tt_span_set_int(tt_span_t *span, const char *key, int64_t value);
TT_EXTERN void tt_span_set_double(tt_span_t *span, const char *key, double value);
TT_EXTERN void tt_span_set_bool(tt_span_t *span, const char *key, int value);

/* Events and links with attributes (copied). time 0: now. */
TT_EXTERN void tt_span_add_event(tt_span_t *span, const char *name, const tt_attribute_t *attrs,
                                 size_t n);
TT_EXTERN void tt_span_add_event_at(tt_span_t *span, const char *name, uint64_t time_unix_ns,
                                    const tt_attribute_t *attrs, size_t n);
TT_EXTERN void tt_span_add_link(tt_span_t *span, const tt_link_t *link);

/* Status: OK is final (later ERROR/UNSET are ignored); UNSET is ignored; the message is kept for
 * ERROR only. */
TT_EXTERN void tt_span_set_status(tt_span_t *span, tt_status_code_t code, const char *message);
TT_EXTERN void tt_span_update_name(tt_span_t *span, const char *name);
/* Adds the semantic-convention "exception" event (exception.type, exception.message,
 * exception.stacktrace; NULLs omitted) and sets status ERROR with message. */
TT_EXTERN void tt_span_record_exception(tt_span_t *span, const char *type, const char *message,
                                        const char *stacktrace);
#define tt_span_record_error tt_span_record_exception

/* ---- current span (per thread) ----------------------------------------------------------------
 */

/* The calling thread's current span or NULL. */
TT_EXTERN tt_span_t *tt_current_span(void);
/* Makes span current on the calling thread and returns the previous current span, which the
 * caller restores with tt_restore_current (scopes nest like a stack). */
TT_EXTERN tt_span_t *tt_make_current(tt_span_t *span);
TT_EXTERN void tt_restore_current(tt_span_t *previous);

/* A span scope for TT_SPAN: starts a child of the current span, makes it current; the cleanup
 * restores the previous current span and ends the span. */
typedef struct tt_scope_s_ {
  tt_span_t *span;
  tt_span_t *previous;
} tt_span_scope_t;
static inline tt_span_scope_t tt_scope_begin(tt_tracer_t *tracer, const char *name,
                                             const tt_span_options_t *opts) {
  tt_span_scope_t sc = {NULL, NULL};
  sc.span = tt_span_start(tracer, name, opts);
  if (sc.span != NULL)
    sc.previous = tt_make_current(sc.span);
  return sc;
}
static inline void tt_scope_end(tt_span_scope_t *sc) {
  if (sc->span == NULL)
    return;
  tt_restore_current(sc->previous);
  tt_span_end(sc->span);
  sc->span = NULL;
}

/* TT_SPAN(var, "name"); declares `tt_span_t *var`, current until the enclosing block exits by
 * any path (return, break, goto), when it is ended. */
#define TT_SPAN(var, name) TT_SPAN_EX(var, NULL, name, NULL)
#define TT_SPAN_EX(var, tracer, name, opts)                                                        \
  __attribute__((cleanup(tt_scope_end))) tt_span_scope_t tt_scope__##var =                         \
      tt_scope_begin((tracer), (name), (opts));                                                    \
  tt_span_t *const var __attribute__((unused)) = tt_scope__##var.span

#ifdef __cplusplus
}
#endif
#endif /* TAILTRACE_H */

/* ---- OTLP exporter options -------------------------------------------------------------------
 * Under their own guard, outside TAILTRACE_H's: libtailtrace's internal otlp_config.h, which the
 * collector's forwarding sink shares, includes this part alone (defining TT_OTLP_OPTIONS_ONLY)
 * because the collector's logger has its own TT_LOG_* names. Users just include tailtrace.h. */
#ifndef TAILTRACE_OTLP_OPTIONS_H
#define TAILTRACE_OTLP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol: DEFAULT means OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else http/protobuf. */
enum {
  TT_OTLP_PROTOCOL_DEFAULT = 0,
  TT_OTLP_PROTOCOL_HTTP_PROTOBUF = 1,
  TT_OTLP_PROTOCOL_GRPC = 2,
  TT_OTLP_PROTOCOL_HTTP_JSON = 3
};
/* Compression: DEFAULT means OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION, else none. */
enum {
  TT_OTLP_COMPRESSION_DEFAULT = 0,
  TT_OTLP_COMPRESSION_NONE = 1,
  TT_OTLP_COMPRESSION_GZIP = 2
};
/* Insecure (gRPC endpoints without a scheme only): DEFAULT means OTEL_EXPORTER_OTLP_INSECURE,
 * else false (TLS). */
enum { TT_OTLP_INSECURE_DEFAULT = 0, TT_OTLP_INSECURE_FALSE = 1, TT_OTLP_INSECURE_TRUE = 2 };

/* Settings for tt_otlp_exporter_new. Every field left zero/NULL falls back to the
 * OTEL_EXPORTER_OTLP_TRACES_* then OTEL_EXPORTER_OTLP_* environment, then the OpenTelemetry
 * default; a field set here wins over the environment. Start with .size = sizeof(...) so the
 * struct can grow. The caller owns the strings; they are copied before the call returns. */
typedef struct tt_otlp_options_s {
  size_t size;                    /* sizeof(tt_otlp_options_t) */
  int protocol;                   /* TT_OTLP_PROTOCOL_* */
  const char *endpoint;           /* used as given (HTTP: the full URL including /v1/traces) */
  const char *headers;            /* "k=v,k2=v2" in W3C baggage format, values percent-encoded */
  int32_t timeout_ms;             /* one export including its retries; 0: env, else 10000 */
  int compression;                /* TT_OTLP_COMPRESSION_* */
  int insecure;                   /* TT_OTLP_INSECURE_* */
  const char *certificate;        /* PEM file: trusted CA(s) for the server */
  const char *client_certificate; /* PEM file: client certificate for mTLS */
  const char *client_key;         /* PEM file: client private key for mTLS */
  /* Retry tuning; 0 = defaults (1000 ms initial, x1.5, 5000 ms max). */
  int32_t retry_initial_ms;
  int32_t retry_max_ms;
  double retry_multiplier;
} tt_otlp_options_t;

#ifdef __cplusplus
}
#endif
#endif /* TAILTRACE_OTLP_OPTIONS_H */

/* ---- OTLP exporters ------------------------------------------------------------------------ */
#if defined(TAILTRACE_H) && !defined(TAILTRACE_OTLP_EXPORTERS_H)
#define TAILTRACE_OTLP_EXPORTERS_H
#ifdef __cplusplus
extern "C" {
#endif

/* Fills *out with an OTLP exporter (HTTP/protobuf, HTTP/JSON or gRPC per opts and the
 * environment; opts may be NULL) for tt_options_t.exporter. Any thread. opts' strings are
 * copied. tt_init takes ownership of the exporter and frees it at tt_shutdown; if it is never
 * given to tt_init, release it with out->shutdown(out->state, 0). Its cancel aborts the request
 * in flight, so tt_shutdown's deadline holds even against a collector that never answers.
 * 0, TT_EINVAL (bad endpoint or TLS file), TT_ENOMEM, or TT_ENOTSUP for gRPC when
 * libtailtrace-grpc.so.0 cannot be loaded (docs/install.md). */
TT_EXTERN int tt_otlp_exporter_new(const tt_otlp_options_t *opts, tt_exporter_t *out);

/* Fills *out with an exporter writing each batch as one OTLP/JSON line (TracesData:
 * {"resourceSpans":[...]}) to path, appending; NULL or "-" means stdout, "stderr" stderr. For
 * debugging without a collector. Any thread; path is not kept. Ownership as for
 * tt_otlp_exporter_new. 0, TT_EINVAL (cannot open) or TT_ENOMEM. */
TT_EXTERN int tt_otlp_json_exporter_new(const char *path, tt_exporter_t *out);

#ifdef __cplusplus
}
#endif
#endif /* TAILTRACE_OTLP_EXPORTERS_H */

/* ---- header carriers ---------------------------------------------------------------------------
 * A ready-made carrier for tt_inject/tt_extract over a plain array of HTTP-style headers, so a C
 * server or client does not write its own get/set callbacks. It never allocates: the caller
 * gives it the array of name/value slots and a byte store; both are bounded by what the caller
 * gave. Names match case-insensitively (ASCII, as HTTP does). One thread at a time per carrier. */
#if defined(TAILTRACE_H) && !defined(TAILTRACE_HEADERS_H)
#define TAILTRACE_HEADERS_H
#ifdef __cplusplus
extern "C" {
#endif

/* One header. name and value need not be NUL-terminated: the lengths are exact. */
typedef struct tt_header_s {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} tt_header_t;

/* The carrier. Fields are readable (iterate items[0..count) to write the headers out); change
 * them only through the functions below. */
typedef struct tt_headers_s {
  tt_header_t *items; /* caller's slots */
  size_t count;       /* slots in use */
  size_t cap;         /* slots given */
  char *store;        /* caller's bytes: copies made by tt_headers_set, then get's scratch */
  size_t used;        /* bytes of store holding copies */
  size_t store_cap;   /* bytes given */
  /* The first TT_E* code a callback (which returns void) ran into, else 0: after tt_inject or
   * tt_extract, non-zero means a header was left out because the caller's storage was full. */
  int error;
} tt_headers_t;

/* Points h at the caller's items[cap] and store[store_cap] and empties it; both must outlive h.
 * store may be NULL (store_cap 0) for a carrier that only references (tt_headers_add) and is
 * never read with tt_headers_get. Never fails. */
TT_EXTERN void tt_headers_init(tt_headers_t *h, tt_header_t *items, size_t cap, char *store,
                               size_t store_cap);
/* Appends a header by reference: no copy, so name and value must stay valid and unchanged while
 * h is used (a parser's request buffer, for instance). Repeated names are kept as separate
 * headers. 0, TT_ENOSPC when every slot is used, TT_EINVAL for a NULL argument, an empty or
 * non-token name, or a value with CR, LF or NUL. */
TT_EXTERN int tt_headers_add(tt_headers_t *h, const char *name, size_t name_len, const char *value,
                             size_t value_len);
/* Appends a header by copy: name and value (exact lengths, NUL not needed) are copied into h's
 * store, so the caller's buffers may be reused at once (a server filling the carrier from its
 * parser). Repeated names are kept. 0, TT_ENOSPC when the slots or the store are full (h is then
 * unchanged), TT_EINVAL as for tt_headers_add. */
TT_EXTERN int tt_headers_append(tt_headers_t *h, const char *name, size_t name_len,
                                const char *value, size_t value_len);
/* Sets name to value (NUL-terminated; both copied into h's store), replacing every header of
 * that name. 0, TT_ENOSPC when the slots or the store are full (h is then unchanged), TT_EINVAL
 * as for tt_headers_add. A replaced copy's bytes are not reclaimed. */
TT_EXTERN int tt_headers_set(tt_headers_t *h, const char *name, const char *value);
/* Returns the value of name, NUL-terminated, with repeated headers joined by "," (RFC 9110), or
 * NULL when absent. The result is written into the free end of the store and stays valid until
 * the next call on h; a value that does not fit there gives NULL and h->error = TT_ENOSPC. */
TT_EXTERN const char *tt_headers_get(tt_headers_t *h, const char *name);
/* Writes every header as "name: value\r\n" into out (NUL-terminated). Returns the length, or
 * TT_ENOSPC when out is too small. */
TT_EXTERN int tt_headers_format(const tt_headers_t *h, char *out, size_t cap);

/* tt_carrier_get_fn / tt_carrier_set_fn over a tt_headers_t passed as the carrier:
 *   tt_extract(tt_headers_carrier_get, &h, &remote);
 *   tt_inject(span, &baggage, tt_headers_carrier_set, &h);
 * The setter records a failure in h->error (it cannot return one). */
TT_EXTERN const char *tt_headers_carrier_get(void *headers, const char *name);
TT_EXTERN void tt_headers_carrier_set(void *headers, const char *name, const char *value);

#ifdef __cplusplus
}
#endif
#endif /* TAILTRACE_HEADERS_H */
