/* tailtrace.h: the one public header of libtailtrace (OpenTelemetry-compatible tracing for C).
 * It includes no third-party header. Everything exported starts with tt_ / TT_. */
#ifndef TAILTRACE_H
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

#ifdef __cplusplus
}
#endif
#endif /* TAILTRACE_H */
