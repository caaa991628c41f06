/* JSON line logging: see log.h. Each line is formatted into a stack buffer and written with a
 * single write(2), so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int tt__log_min_level = TT_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int tt__log_level_parse(const char *s) {
  for (int i = 0; i <= TT_LOG_OFF; i++)
    if (strcmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

void tt__log_set_level(tt_log_level_t l) {
  atomic_store(&tt__log_min_level, (int)l);
}

void tt__log_write(tt_log_level_t l, const char *msg, const char *fields_fmt, ...) {
  char line[1024];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = (size_t)snprintf(line, sizeof line,
                              "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                              "\"msg\":\"",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, ts.tv_nsec / 1000000, level_names[l]);
  for (const char *p = msg; *p != '\0' && n < sizeof line - 8; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') {
      line[n++] = '\\';
      line[n++] = (char)c;
    } else if (c < 0x20) {
      line[n++] = ' ';
    } else {
      line[n++] = (char)c;
    }
  }
  line[n++] = '"';
  if (fields_fmt[0] != '\0' && n < sizeof line - 4) {
    line[n++] = ',';
    va_list ap;
    va_start(ap, fields_fmt);
    int m = vsnprintf(line + n, sizeof line - n - 2, fields_fmt, ap);
    va_end(ap);
    if (m > 0)
      n += (size_t)m < sizeof line - n - 2 ? (size_t)m : sizeof line - n - 3;
  }
  line[n++] = '}';
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}
