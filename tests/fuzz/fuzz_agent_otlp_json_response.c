/* Fuzz target: OTLP/JSON success answers (partialSuccess.rejectedSpans / errorMessage). Raw input
 * must never be misread; and an answer built from the input, with the message JSON-escaped,
 * must read back as written. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent_otlp_util.h"
#include "otlp_transport.h"

static void check_raw(const uint8_t *data, size_t size) {
  tt__export_result_t r;
  tt__export_result_init(&r);
  if (tt__otlp_parse_json_response((const char *)data, size, &r) != 0)
    abort(); /* always succeeds: the HTTP status already said the batch was accepted */
  if (memchr(r.message, '\0', sizeof r.message) == NULL)
    abort();
  if (r.rejected_spans < 0 || r.retry_after_ms != -1 || r.outcome != 0 || r.code != 0)
    abort();
}

/* Appends s[0..len) as a JSON string body: quote, backslash and controls escaped. */
static size_t json_escape(char *out, const uint8_t *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t ch = s[i];
    if (ch == '"' || ch == '\\') {
      out[n++] = '\\';
      out[n++] = (char)ch;
    } else if (ch < 0x20) {
      n += (size_t)sprintf(out + n, "\\u%04x", ch);
    } else {
      out[n++] = (char)ch;
    }
  }
  return n;
}

static void check_round_trip(const uint8_t *data, size_t size) {
  cur_t c = {data, size};
  uint64_t shape = cur_u64(&c, 1);
  int64_t rejected = (int64_t)(cur_u64(&c, 8) & INT64_MAX);
  size_t mlen;
  const uint8_t *msg = cur_take(&c, 400, &mlen);
  const uint8_t *nul = memchr(msg, 0, mlen);
  if (nul != NULL)
    mlen = (size_t)(nul - msg); /* \u0000 would end the C string early */
  static char body[400 * 6 + 256];
  size_t n = (size_t)sprintf(body, "{\"partialSuccess\" : {\"rejectedSpans\":");
  n += (size_t)sprintf(body + n, shape & 1 ? "\"%lld\"" : "%lld", (long long)rejected);
  n += (size_t)sprintf(body + n, ",\n  \"errorMessage\": \"");
  n += json_escape(body + n, msg, mlen);
  n += (size_t)sprintf(body + n, "\"}}");
  tt__export_result_t r;
  tt__export_result_init(&r);
  if (tt__otlp_parse_json_response(body, n, &r) != 0 || r.rejected_spans != rejected)
    abort();
  size_t keep = mlen < sizeof r.message - 1 ? mlen : sizeof r.message - 1;
  if (strlen(r.message) != keep || memcmp(r.message, msg, keep) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_raw(data, size);
  check_round_trip(data, size);
  return 0;
}
