/* transport_select.c: where the shared and the installed static libtailtrace get their OTLP/gRPC
 * transport. gRPC's C core brings Abseil, a C++ runtime and some eighty shared libraries, which a
 * program exporting over HTTP should never load; so the transport lives in libtailtrace-grpc.so
 * and this file loads it the first time an exporter is created with the grpc protocol
 * (OTEL_EXPORTER_OTLP_PROTOCOL=grpc). The library is looked up the way the program asked for it:
 * already loaded (linked with -ltailtrace-grpc, or loaded earlier), then by its SONAME through the
 * dynamic linker's search path, then next to libtailtrace itself (a prefix the dynamic linker
 * does not search, such as one made by `make install PREFIX=...`). It is never unloaded: gRPC
 * keeps threads of its own. When it cannot be found the exporter is not created and the warning
 * names the missing library and the package that ships it.
 *
 * The internal static archive that tests and the collector link compiles transport_grpc.c in
 * directly and leaves this file out (agent/CMakeLists.txt). */
#define _GNU_SOURCE /* dladdr */
#include "otlp_transport.h"

#include "internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tailtrace.h"

static void host_log(int level, const char *line) {
  TT_LOG((tt_log_level_t)level, "%s", line);
}

static const tt__grpc_host_t g_host = {
    .size = sizeof(tt__grpc_host_t),
    .version = TT_VERSION_STRING_BUILD,
    .calloc = tt__calloc,
    .realloc = tt__realloc,
    .free = tt__free,
    .log = host_log,
    .now_ns = tt__otlp_now_ns,
    .result_init = tt__export_result_init,
    .parse_rpc_status = tt__otlp_parse_rpc_status,
    .parse_export_response = tt__otlp_parse_export_response,
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static tt__grpc_plugin_new_fn g_entry;
static char g_why[512]; /* why loading failed; written once, under g_once */

/* The directory of the object this code is linked into: libtailtrace.so, or the program for the
 * static archive. */
static int own_dir(char *out, size_t cap) {
  Dl_info info;
  if (dladdr((void *)own_dir, &info) == 0 || info.dli_fname == NULL)
    return -1;
  const char *slash = strrchr(info.dli_fname, '/');
  if (slash == NULL || (size_t)(slash - info.dli_fname) + 1 >= cap)
    return -1;
  memcpy(out, info.dli_fname, (size_t)(slash - info.dli_fname));
  out[slash - info.dli_fname] = '\0';
  return 0;
}

static void load_plugin(void) {
  /* By SONAME: a library the program already loaded is found under that name too. */
  void *h = dlopen(TT__GRPC_PLUGIN_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h == NULL) {
    const char *err = dlerror();
    snprintf(g_why, sizeof g_why, "%s", err ? err : "not found");
    char dir[PATH_MAX - 32], path[PATH_MAX];
    if (own_dir(dir, sizeof dir) == 0) {
      snprintf(path, sizeof path, "%s/%s", dir, TT__GRPC_PLUGIN_SONAME);
      h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
      /* Present there but unloadable (gRPC itself missing, say): that is the reason to give. */
      if (h == NULL && access(path, F_OK) == 0) {
        err = dlerror();
        snprintf(g_why, sizeof g_why, "%s", err ? err : "cannot be loaded");
      }
    }
  }
  if (h == NULL)
    return; /* g_why says why, in the dynamic linker's words */
  g_entry = (tt__grpc_plugin_new_fn)dlsym(h, TT__GRPC_PLUGIN_ENTRY);
  if (g_entry == NULL)
    snprintf(g_why, sizeof g_why, "%s has no %s (not a tailtrace gRPC transport)",
             TT__GRPC_PLUGIN_SONAME, TT__GRPC_PLUGIN_ENTRY);
}

int tt__transport_grpc_new(const tt__otlp_config_t *cfg, tt__transport_t **out) {
  *out = NULL;
  pthread_once(&g_once, load_plugin);
  if (g_entry == NULL) {
    tt__otlp_log("OTLP/gRPC export needs %s, which could not be loaded: %s. Install it (Debian "
                 "package libtailtrace-grpc0, or `make install` of tailtrace) or export over "
                 "HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)",
                 TT__GRPC_PLUGIN_SONAME, g_why);
    return TT_ENOTSUP;
  }
  int rc = g_entry(&g_host, cfg, out);
  if (rc == TT_ENOTSUP)
    tt__otlp_log("%s is from another tailtrace version than libtailtrace %s; install both from "
                 "one release",
                 TT__GRPC_PLUGIN_SONAME, TT_VERSION_STRING_BUILD);
  return rc;
}
