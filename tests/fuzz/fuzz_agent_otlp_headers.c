/* Fuzz target: OTEL_EXPORTER_OTLP_HEADERS parsing. Whatever the input, every header kept must be
 * sendable by both transports (name [0-9a-z_.-], value printable ASCII: no CR/LF injection), and
 * no entry may appear from nothing; and a list built from the input, values percent-encoded,
 * must read back exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent_otlp_util.h"
#include "internal.h"
#include "otlp_config.h"

static void free_headers(tt__otlp_header_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    tt__free(h[i].name);
    tt__free(h[i].value);
  }
  tt__free(h);
}

static void check_raw(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    return;
  memcpy(s, data, size);
  s[size] = '\0'; /* an environment value ends at the first NUL */
  size_t members = 1;
  for (const char *c = s; *c; c++)
    members += *c == ',';
  tt__otlp_header_t *h = NULL;
  size_t n = 0;
  unsigned warnings = 0;
  if (tt__otlp_parse_headers(s, &h, &n, &warnings) != 0)
    abort();
  if (n + warnings > members)
    abort();
  for (size_t i = 0; i < n; i++) {
    if (h[i].name[0] == '\0')
      abort();
    for (const char *c = h[i].name; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
            *c == '.'))
        abort();
    for (const unsigned char *c = (const unsigned char *)h[i].value; *c; c++)
      if (*c < 0x20 || *c > 0x7e)
        abort();
  }
  free_headers(h, n);
  free(s);
}

static const char k_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";

static void check_round_trip(const uint8_t *data, size_t size) {
  cur_t c = {data, size};
  char list[8192];
  size_t len = 0;
  char keys[8][33], values[8][65];
  size_t count = cur_u64(&c, 1) % 9;
  for (size_t i = 0; i < count; i++) {
    size_t kl = 1 + cur_u64(&c, 1) % 32, vl = cur_u64(&c, 1) % 65;
    for (size_t j = 0; j < kl; j++)
      keys[i][j] = k_chars[cur_u64(&c, 1) % (sizeof k_chars - 1)];
    keys[i][kl] = '\0';
    for (size_t j = 0; j < vl; j++)
      values[i][j] = (char)(0x20 + cur_u64(&c, 1) % 95); /* printable ASCII */
    values[i][vl] = '\0';
    uint64_t sp = cur_u64(&c, 1);
    len += (size_t)sprintf(list + len, "%s%s%s%s=%s", i ? "," : "", sp & 1 ? " " : "", keys[i],
                           sp & 2 ? " " : "", sp & 4 ? "\t" : "");
    /* Everything but unreserved characters is percent-encoded, as the spec asks of values. */
    for (size_t j = 0; j < vl; j++) {
      unsigned char ch = (unsigned char)values[i][j];
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_' || ch == '.' || ch == '~')
        list[len++] = (char)ch;
      else
        len += (size_t)sprintf(list + len, "%%%02X", ch);
    }
    if (sp & 8)
      len += (size_t)sprintf(list + len, ";prop=1");
    if (sp & 16)
      list[len++] = ' ';
  }
  list[len] = '\0';
  tt__otlp_header_t *h = NULL;
  size_t n = 0;
  unsigned warnings = 0;
  if (tt__otlp_parse_headers(list, &h, &n, &warnings) != 0 || n != count || warnings != 0)
    abort();
  for (size_t i = 0; i < n; i++) {
    for (char *k = keys[i]; *k; k++)
      if (*k >= 'A' && *k <= 'Z')
        *k = (char)(*k - 'A' + 'a');
    if (strcmp(h[i].name, keys[i]) != 0 || strcmp(h[i].value, values[i]) != 0)
      abort();
  }
  free_headers(h, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_raw(data, size);
  check_round_trip(data, size);
  return 0;
}
