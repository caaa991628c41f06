/* Logging and error strings. Warnings and errors go to stderr unless TT_LOG names another level
 * (TT_LOG=off silences the library) or a handler is set, as opentelemetry-cpp's default handler
 * does: a rejected OTEL_* value or a failing export must not go unseen. A line is formatted into
 * a bounded stack buffer and never allocates. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

_Atomic int tt__log_level = TT_LOG_WARN;
static tt_log_fn g_handler;
static void *g_handler_arg;
static pthread_mutex_t g_handler_mu = PTHREAD_MUTEX_INITIALIZER;

const char *tt_strerror(int err) {
  switch (err) {
    case 0:
      return "success";
#define TT_ERRNO_CASE(name, value, text)                                                           \
  case (value):                                                                                    \
    return text;
      TT_ERRNO_MAP(TT_ERRNO_CASE)
#undef TT_ERRNO_CASE
  }
  return "unknown error";
}

void tt__log_init_from_env(void) {
  const char *v = getenv("TT_LOG");
  if (v == NULL || *v == '\0')
    return;
  static const char *const names[] = {"off", "error", "warn", "info", "debug"};
  for (int i = 0; i < 5; i++) {
    if (strcasecmp(v, names[i]) == 0) {
      atomic_store(&tt__log_level, i);
      return;
    }
  }
  /* Any other non-empty value turns warnings on: the user asked for logs. */
  atomic_store(&tt__log_level, TT_LOG_WARN);
}

void tt_set_log_handler(tt_log_fn fn, void *arg, tt_log_level_t level) {
  pthread_mutex_lock(&g_handler_mu);
  g_handler = fn;
  g_handler_arg = arg;
  pthread_mutex_unlock(&g_handler_mu);
  atomic_store(&tt__log_level, (int)level);
}

void tt__log(tt_log_level_t level, const char *fmt, ...) {
  static const char *const names[] = {"", "error", "warn", "info", "debug"};
  char line[1024];
  int n = snprintf(line, sizeof line, "tailtrace %s: ", names[level <= 4 ? level : 0]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&g_handler_mu);
  tt_log_fn fn = g_handler;
  void *arg = g_handler_arg;
  pthread_mutex_unlock(&g_handler_mu);
  if (fn != NULL) {
    fn(level, line, arg);
    return;
  }
  size_t len = strlen(line);
  if (len < sizeof line - 1)
    line[len++] = '\n';
  /* One write so concurrent lines do not interleave; a failed write is not worth reporting. */
  ssize_t w = write(2, line, len);
  (void)w;
}
