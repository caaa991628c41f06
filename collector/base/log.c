/* JSON line logging: see log.h. Each line is formatted into a stack buffer and written with a
 * single write(2), so lines from different threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int tt__log_min_level = TT_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;

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

void tt__log_set_fd(int fd) {
  atomic_store(&log_fd, fd);
}

/* Escapes s into out[0..cap) as the inside of a JSON string; returns the bytes written. Control
 * characters become \u00XX and bytes of 0x80 and above pass through unchanged, so a message cut
 * in the middle never ends in a dangling escape: an escape is written whole or not at all. */
static size_t escape(char *out, size_t cap, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      if (n + 2 > cap)
        break;
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      if (n + 6 > cap)
        break;
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[c >> 4];
      out[n + 5] = hex[c & 15];
      n += 6;
    } else {
      if (n + 1 > cap)
        break;
      out[n++] = (char)c;
    }
  }
  return n;
}

const char *tt__log_str(char *buf, size_t cap, const char *s) {
  if (cap == 0)
    return "";
  size_t n = escape(buf, cap - 1, s ? s : "");
  buf[n] = '\0';
  return buf;
}

void tt__log_write(tt_log_level_t l, const char *msg, const char *fields_fmt, ...) {
  char line[TT_LOG_LINE_MAX];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = (size_t)snprintf(line, sizeof line,
                              "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                              "\"msg\":\"",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, ts.tv_nsec / 1000000, level_names[l]);
  /* The message may take half the line; the fields get what is left. */
  n += escape(line + n, sizeof line / 2 - n, msg);
  line[n++] = '"';
  /* Room kept for the closing of the line: ,"truncated":true}\n */
  const size_t tail = 24;
  if (fields_fmt[0] != '\0') {
    va_list ap;
    va_start(ap, fields_fmt);
    int m = vsnprintf(line + n + 1, sizeof line - n - 1 - tail, fields_fmt, ap);
    va_end(ap);
    if (m > 0 && (size_t)m < sizeof line - n - 1 - tail) {
      line[n] = ','; /* an empty member list adds no comma: the line stays valid JSON */
      n += 1 + (size_t)m;
    } else if (m > 0) {
      /* Cut members would not parse: the line keeps its message and says it lost the rest. */
      memcpy(line + n, ",\"truncated\":true", 17);
      n += 17;
    }
  }
  line[n++] = '}';
  line[n++] = '\n';
  ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
  (void)w;
}
