/* OTLP/JSON <-> protobuf transcoding (see otlp_json.h). */
#include "otlp_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8. */
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

int tt__json_append_string(tt_buf_t *out, const char *str, size_t len) {
  const uint8_t *s = (const uint8_t *)str;
  int rc = tt__buf_reserve(out, len + 2);
  if (rc != 0)
    return rc;
  out->data[out->len++] = '"';
  size_t i = 0;
  while (i < len) {
    size_t run = i;
    /* Copy the longest run that needs no escaping in one append. */
    while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
      run++;
    if (run > i && (rc = tt__buf_append(out, s + i, run - i)) != 0)
      return rc;
    i = run;
    if (i >= len)
      break;
    uint8_t c = s[i];
    if (c >= 0x80) {
      size_t n = utf8_seq(s + i, len - i);
      if (n == 0) {
        rc = tt__buf_append(out, "\xef\xbf\xbd", 3);
        i++;
      } else {
        rc = tt__buf_append(out, s + i, n);
        i += n;
      }
    } else {
      switch (c) {
        case '"':
          rc = tt__buf_append(out, "\\\"", 2);
          break;
        case '\\':
          rc = tt__buf_append(out, "\\\\", 2);
          break;
        case '\n':
          rc = tt__buf_append(out, "\\n", 2);
          break;
        case '\r':
          rc = tt__buf_append(out, "\\r", 2);
          break;
        case '\t':
          rc = tt__buf_append(out, "\\t", 2);
          break;
        default:
          rc = tt__buf_appendf(out, "\\u%04x", c);
          break;
      }
      i++;
    }
    if (rc != 0)
      return rc;
  }
  return tt__buf_append(out, "\"", 1);
}

int tt__otlp_json_to_pb(const char *json, size_t len, tt_buf_t *out, char *errbuf, size_t errlen) {
  (void)json;
  (void)len;
  (void)out;
  snprintf(errbuf, errlen, "OTLP/JSON is not implemented yet");
  return -EINVAL;
}

int tt__otlp_json_from_pb(const uint8_t *pb, size_t len, tt_buf_t *out) {
  (void)pb;
  (void)len;
  (void)out;
  return -EINVAL;
}
