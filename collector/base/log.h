/* Structured logs: one JSON object per line on stderr, stable keys {"ts","level","msg",...}.
 * The level is checked before any argument is formatted. Any thread. */
#ifndef TT_COLLECTOR_LOG_H
#define TT_COLLECTOR_LOG_H

#include <stdatomic.h>
#include <stddef.h>

typedef enum {
  TT_LOG_DEBUG = 0,
  TT_LOG_INFO,
  TT_LOG_WARN,
  TT_LOG_ERROR,
  TT_LOG_OFF
} tt_log_level_t;

/* The longest line written; the message takes at most half of it. A line whose members would
 * not fit keeps its message and carries "truncated":true instead of the members. */
#define TT_LOG_LINE_MAX 4096

extern atomic_int tt__log_min_level;

/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int tt__log_level_parse(const char *s);
void tt__log_set_level(tt_log_level_t l);

/* Where lines go (default: stderr). For tests that read their own logs. Any thread. */
void tt__log_set_fd(int fd);

/* msg is plain text (escaped here); fields_fmt formats extra JSON members, for example
 * "\"port\":%d", or is "" (or "%s" with "") for none. String values passed through it must be
 * JSON-safe: pass any text not written by the collector itself (paths, peers' messages, errors)
 * through tt__log_str. */
void tt__log_write(tt_log_level_t l, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* `s` escaped for use inside a JSON string, in buf (cut to cap - 1 bytes at an escape boundary);
 * returns buf. NULL is written as "". */
const char *tt__log_str(char *buf, size_t cap, const char *s);

#define TT_LOG(lvl, msg, ...)                                                                      \
  do {                                                                                             \
    if ((int)(lvl) >= atomic_load_explicit(&tt__log_min_level, memory_order_relaxed))              \
      tt__log_write((lvl), (msg), __VA_ARGS__);                                                    \
  } while (0)

#endif
