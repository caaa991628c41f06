/* grpc_plugin.c: the front of libtailtrace-grpc.so, the library that carries the OTLP/gRPC
 * transport (transport_grpc.c) so that libtailtrace itself never links gRPC.
 *
 * transport_grpc.c is written against the core's internal functions (tt__calloc, TT_LOG, the
 * status parsers...). Inside this library those names are defined here, hidden, and forward to
 * the table the core hands over (tt__grpc_host_t, otlp_transport.h): the allocations then come
 * from the application's allocator (tt_set_allocator) and the warnings reach its log handler,
 * exactly as when the transport is compiled into the core. The library links nothing of
 * libtailtrace (-Wl,--no-undefined checks it), so the shared and the static core can both load
 * it. The table is stored once, by the first call, and never changes: one process has one core. */
#include "otlp_transport.h"

#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tailtrace.h"

static const tt__grpc_host_t *_Atomic g_host;

/* Every level passes here; the core's logger applies the application's level and handler. */
_Atomic int tt__log_level = TT_LOG_DEBUG;

void tt__log(tt_log_level_t level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  atomic_load(&g_host)->log((int)level, line);
}

void *tt__calloc(size_t n, size_t m) {
  return atomic_load(&g_host)->calloc(n, m);
}
void *tt__realloc(void *p, size_t n) {
  return atomic_load(&g_host)->realloc(p, n);
}
void tt__free(void *p) {
  if (p != NULL)
    atomic_load(&g_host)->free(p);
}
int64_t tt__otlp_now_ns(void) {
  return atomic_load(&g_host)->now_ns();
}
void tt__export_result_init(tt__export_result_t *res) {
  atomic_load(&g_host)->result_init(res);
}
int tt__otlp_parse_rpc_status(const uint8_t *p, size_t len, int *code, tt__export_result_t *res) {
  return atomic_load(&g_host)->parse_rpc_status(p, len, code, res);
}
int tt__otlp_parse_export_response(const uint8_t *p, size_t len, tt__export_result_t *res) {
  return atomic_load(&g_host)->parse_export_response(p, len, res);
}

/* Declared here rather than in a header: the core looks it up by name (TT__GRPC_PLUGIN_ENTRY)
 * with dlsym, and no program calls it directly. */
TT_EXTERN int tt_grpc_plugin_transport_new(const tt__grpc_host_t *host,
                                           const tt__otlp_config_t *cfg, tt__transport_t **out);

int tt_grpc_plugin_transport_new(const tt__grpc_host_t *host, const tt__otlp_config_t *cfg,
                                 tt__transport_t **out) {
  *out = NULL;
  /* The configuration struct crosses from the core: only a core built from the same sources
   * lays it out as this library expects. Nothing is logged then, since the table itself is
   * suspect; the core reports the refusal. */
  if (host == NULL || host->size != sizeof *host || host->version == NULL ||
      strcmp(host->version, TT_VERSION_STRING_BUILD) != 0)
    return TT_ENOTSUP;
  const tt__grpc_host_t *none = NULL;
  atomic_compare_exchange_strong(&g_host, &none, host);
  return tt__transport_grpc_new(cfg, out);
}
