/* Fuzz target: the decision bus value codec (collector/decide/bus_value.c). The decoder reads
 * whatever any client of a shared Redis wrote, so it must never crash; a decoded value must
 * encode, that encoding must decode to the same keep, and the trace id is never touched. The
 * same bytes, read as a keep struct, also drive the encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_bus_keep_t k, d;
  memset(&k, 0x77, sizeof k);
  if (tt__bus_value_decode((const char *)data, size, &k) == 0) {
    for (size_t i = 0; i < sizeof k.trace_id; i++)
      if (k.trace_id[i] != 0x77)
        abort();
    char v[TT_BUS_VALUE_MAX];
    int n = tt__bus_value_encode(&k, v, sizeof v);
    if (n < 0 || (size_t)n >= sizeof v || strlen(v) != (size_t)n)
      abort();
    memset(&d, 0, sizeof d);
    if (tt__bus_value_decode(v, (size_t)n, &d) != 0 || d.threshold != k.threshold ||
        strcmp(d.reason, k.reason) != 0)
      abort();
  }

  /* Arbitrary keeps: the encoder must refuse or produce a value that decodes back. */
  if (size >= sizeof k) {
    memcpy(&k, data, sizeof k);
    char v[TT_BUS_VALUE_MAX];
    int n = tt__bus_value_encode(&k, v, sizeof v);
    if (n >= 0) {
      if (tt__bus_value_decode(v, (size_t)n, &d) != 0 || d.threshold != k.threshold ||
          strcmp(d.reason, k.reason) != 0)
        abort();
    }
    /* A short buffer is refused, never overrun. */
    char tiny[8];
    n = tt__bus_value_encode(&k, tiny, sizeof tiny);
    if (n >= (int)sizeof tiny)
      abort();
  }
  return 0;
}
