/* Fuzz target: OTLP/JSON error answers (google.rpc.Status in JSON: message, RetryInfo's
 * retryDelay). Raw input must never be misread and never yield an absurd delay; and a Status
 * built from the input must read back as written. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent_otlp_util.h"
#include "otlp_transport.h"

#define MAX_RETRY_MS (86400LL * 365 * 1000)

static void check_raw(const uint8_t *data, size_t size) {
  tt__export_result_t r;
  tt__export_result_init(&r);
  int rc = tt__otlp_parse_json_status((const char *)data, size, &r);
  if (rc != 0 && rc != -1)
    abort();
  if (memchr(r.message, '\0', sizeof r.message) == NULL)
    abort();
  if (r.retry_after_ms != -1 && (r.retry_after_ms < 0 || r.retry_after_ms > MAX_RETRY_MS))
    abort();
  if (rc != 0 && (r.message[0] != '\0' || r.retry_after_ms != -1))
    abort();
  if (r.rejected_spans != 0 || r.outcome != 0 || r.code != 0)
    abort();
}

static void check_round_trip(const uint8_t *data, size_t size) {
  cur_t c = {data, size};
  uint32_t code = (uint32_t)cur_u64(&c, 1);
  uint32_t sec = (uint32_t)cur_u64(&c, 3); /* up to 194 days: under the one-year cap */
  uint32_t milli = (uint32_t)cur_u64(&c, 2) % 1000;
  size_t mlen;
  const uint8_t *msg = cur_take(&c, 300, &mlen);
  /* Printable ASCII without quote or backslash: what most servers send, and no escaping. */
  char m[301];
  size_t k = 0;
  for (size_t i = 0; i < mlen; i++)
    if (msg[i] >= 0x20 && msg[i] < 0x7f && msg[i] != '"' && msg[i] != '\\')
      m[k++] = (char)msg[i];
  m[k] = '\0';
  static char body[1024];
  int n = snprintf(body, sizeof body,
                   "{\"code\":%u,\"message\":\"%s\",\"details\":[{\"@type\":"
                   "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"%u.%03us\"}]}",
                   code, m, sec, milli);
  if (n < 0 || (size_t)n >= sizeof body)
    abort();
  tt__export_result_t r;
  tt__export_result_init(&r);
  if (tt__otlp_parse_json_status(body, (size_t)n, &r) != 0)
    abort();
  size_t keep = k < sizeof r.message - 1 ? k : sizeof r.message - 1;
  if (strlen(r.message) != keep || memcmp(r.message, m, keep) != 0)
    abort();
  if (r.retry_after_ms != (int64_t)sec * 1000 + milli)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_raw(data, size);
  check_round_trip(data, size);
  return 0;
}
