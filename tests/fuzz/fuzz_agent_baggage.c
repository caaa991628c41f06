/* Fuzz target: W3C baggage parsing. Whatever parses must format and parse back to the same
 * entries, and the header tt_inject sends must stay within the W3C limits (8192 bytes, 180
 * members) and parse back to members of the original with the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

static tt_baggage_t a, b, c;
static char header[TT_BAGGAGE_MAX_BYTES * 4];
static size_t header_len;

static void capture(void *carrier, const char *key, const char *value) {
  (void)carrier;
  if (strcmp(key, "baggage") != 0)
    return;
  header_len = strlen(value);
  if (header_len > TT_BAGGAGE_MAX_BYTES)
    abort();
  memcpy(header, value, header_len);
}
static char buf[TT_BAGGAGE_MAX_BYTES * 3 + 1];

/* Aborts unless every entry of sub has the same value in full. */
static void check_values_in(const tt_baggage_t *sub, const tt_baggage_t *full) {
  for (int i = 0; i < sub->count; i++) {
    char key[TT_BAGGAGE_MAX_BYTES + 1];
    memcpy(key, sub->buf + sub->entry[i].key_off, sub->entry[i].key_len);
    key[sub->entry[i].key_len] = '\0';
    size_t ls, lf;
    const char *vs = tt_baggage_get(sub, key, &ls), *vf = tt_baggage_get(full, key, &lf);
    if (vs == NULL || vf == NULL || ls != lf || memcmp(vs, vf, ls) != 0)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_baggage_init(&a);
  if (tt_baggage_parse(&a, (const char *)data, size) < 0)
    abort();
  int n = tt_baggage_format(&a, buf, sizeof buf);
  if (n < 0)
    abort();
  tt_baggage_init(&b);
  if (tt_baggage_parse(&b, buf, (size_t)n) != 0 || b.count != a.count)
    abort();
  check_values_in(&a, &b);
  header_len = 0;
  if (tt_inject(NULL, &a, capture, NULL) != 0)
    abort();
  tt_baggage_init(&c);
  if (tt_baggage_parse(&c, header, header_len) != 0 || c.count > a.count ||
      c.count > TT_BAGGAGE_MAX_ENTRIES)
    abort();
  check_values_in(&c, &a);
  return 0;
}
