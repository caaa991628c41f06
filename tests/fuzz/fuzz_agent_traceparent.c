/* Fuzz target: W3C traceparent parsing. A parsed context must format back to a header that
 * parses to the same context. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_span_context_t c, d;
  if (tt_traceparent_parse((const char *)data, size, &c) != 0)
    return 0;
  if (!tt_span_context_is_valid(&c))
    abort();
  char out[56];
  tt_traceparent_format(&c, out);
  if (tt_traceparent_parse(out, strlen(out), &d) != 0 || memcmp(&c, &d, sizeof c) != 0)
    abort();
  return 0;
}
