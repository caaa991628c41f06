/* OTLP/HTTP with JSON bodies (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) against the real Python
 * receiver, which decodes them with protobuf's own JSON parser: the shared transport cases,
 * including partial success and error messages read from JSON answers. */
#define PROTO TT_OTLP_PROTOCOL_HTTP_JSON
#define PROTO_NAME "http"
#include "peers/otlp_transport_cases.h"

int main(void) {
  const struct CMUnitTest tests[] = {
      TRANSPORT_CASES,
  };
  return cmocka_run_group_tests(tests, peer_group_setup, peer_group_teardown);
}
