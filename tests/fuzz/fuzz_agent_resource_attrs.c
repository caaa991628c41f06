/* Fuzz target: OTEL_RESOURCE_ATTRIBUTES parsing (all-or-nothing). The pair count returned must
 * equal the number of callbacks, and no callback may happen for a rejected value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void count(void *arg, const char *k, const char *v) {
  if (k[0] == '\0')
    abort();
  (void)v;
  (*(int *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int n = 0;
  int rc = tt__resource_attrs_parse((const char *)data, size, count, &n);
  if (rc < 0 ? n != 0 : rc != n)
    abort();
  return 0;
}
