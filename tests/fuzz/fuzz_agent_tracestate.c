/* Fuzz target: W3C tracestate validation. Normalised output must itself be valid, no longer
 * than the limit, and a fixed point of normalisation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[TT_TRACESTATE_MAX_LEN + 1], again[TT_TRACESTATE_MAX_LEN + 1];
  int n = tt_tracestate_parse((const char *)data, size, out, sizeof out);
  if (n < 0)
    return 0;
  if (n > TT_TRACESTATE_MAX_LEN || strlen(out) != (size_t)n)
    abort();
  int m = tt_tracestate_parse(out, (size_t)n, again, sizeof again);
  if (m != n || memcmp(out, again, (size_t)n) != 0)
    abort();
  return 0;
}
