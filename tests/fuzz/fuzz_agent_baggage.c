/* Fuzz target: W3C baggage parsing. Whatever parses must format and parse back to the same
 * entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

static tt_baggage_t a, b;
static char buf[TT_BAGGAGE_MAX_BYTES * 3 + 1];

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
  for (int i = 0; i < a.count; i++) {
    char key[TT_BAGGAGE_MAX_BYTES + 1];
    memcpy(key, a.buf + a.entry[i].key_off, a.entry[i].key_len);
    key[a.entry[i].key_len] = '\0';
    size_t la, lb;
    const char *va = tt_baggage_get(&a, key, &la), *vb = tt_baggage_get(&b, key, &lb);
    if (va == NULL || vb == NULL || la != lb || memcmp(va, vb, la) != 0)
      abort();
  }
  return 0;
}
