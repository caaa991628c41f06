/* Structured logs: one JSON object per line on stderr, stable keys {"ts","level","msg",...}.
 * The level is checked before any argument is formatted. Any thread. */
#ifndef TT_COLLECTOR_LOG_H
#define TT_COLLECTOR_LOG_H

#include <stdatomic.h>

typedef enum {
  TT_LOG_DEBUG = 0,
  TT_LOG_INFO,
  TT_LOG_WARN,
  TT_LOG_ERROR,
  TT_LOG_OFF
} tt_log_level_t;

extern atomic_int tt__log_min_level;

/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int tt__log_level_parse(const char *s);
void tt__log_set_level(tt_log_level_t l);

/* msg is plain text (escaped here); fields_fmt formats extra JSON members, for example
 * "\"port\":%d", or is "" for none. String values passed through it must be JSON-safe. */
void tt__log_write(tt_log_level_t l, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TT_LOG(lvl, msg, ...)                                                                      \
  do {                                                                                             \
    if ((int)(lvl) >= atomic_load_explicit(&tt__log_min_level, memory_order_relaxed))              \
      tt__log_write((lvl), (msg), __VA_ARGS__);                                                    \
  } while (0)

#endif
