/* OTLP/JSON file exporter. The JSON it writes is checked by a real decoder: it is POSTed as
 * application/json to the Python receiver, which parses it with protobuf's json_format into its
 * own generated classes, and must show exactly the fields the protobuf path shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "exporter_otlp.h"
#include "internal.h"
#include "peers/otlp_peer.h"
#include "peers/otlp_sample.h"

static tt_peer_t g_peer;

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return peer_start(&g_peer, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  peer_stop(&g_peer);
  return 0;
}

static char *post_json_and_dump(const char *json) {
  char *r = peer_ctl(&g_peer, "/_control/reset", "");
  free(r);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", g_peer.http_port);
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, peer_write_cb);
  peer_buf_t ignored = {NULL, 0};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ignored);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  free(ignored.buf);
  assert_int_equal(status, 200);
  return peer_ctl(&g_peer, "/_control/dump", NULL);
}

static void json_should_decode_to_the_same_fields_as_protobuf(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 3);
  char *json = tt__otlp_json_encode(spans, 3);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
  assert_non_null(strstr(json, "\"startTimeUnixNano\":\"1700000000000000000\""));
  assert_non_null(strstr(json, "\"intValue\":\"503\""));
  assert_int_equal(json[strlen(json) - 1], '\n');
  assert_ptr_equal(strchr(json, '\n'), json + strlen(json) - 1); /* exactly one line */
  char *dump = post_json_and_dump(json);
  assert_non_null(dump);
  for (int i = 0; sample_root_expect[i]; i++) {
    if (strstr(dump, sample_root_expect[i]) == NULL) {
      fprintf(stderr, "missing: %s\n--- json ---\n%s--- dump ---\n%s\n", sample_root_expect[i],
              json, dump);
      fail();
    }
  }
  assert_non_null(strstr(dump, "fault=none spans=3"));
  free(dump);
  tt__free(json);
}

static void awkward_strings_should_stay_valid_json(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  sb.data[0].name = "say \"hi\"\\\n\ttab \x01 bad:\xff\xfe end";
  static const double odd[] = {INFINITY, -INFINITY};
  static const tt_attribute_t attrs[] = {
      {.key = "inf", .type = TT_ATTR_DOUBLE_ARRAY, .value.array = {odd, 2}},
      {.key = "big", .type = TT_ATTR_INT, .value.i = INT64_MIN},
  };
  sb.data[0].attributes = attrs;
  sb.data[0].attribute_count = 2;
  char *json = tt__otlp_json_encode(spans, 1);
  assert_non_null(json);
  assert_non_null(
      strstr(json, "say \\\"hi\\\"\\\\\\u000a\\u0009tab \\u0001 bad:\\ufffd\\ufffd end"));
  char *dump = post_json_and_dump(json);
  assert_non_null(dump);
  assert_non_null(strstr(dump, "key=inf value=a:[d:inf,d:-inf]"));
  assert_non_null(strstr(dump, "key=big value=i:-9223372036854775808"));
  free(dump);
  tt__free(json);
}

static void file_exporter_should_append_one_line_per_batch(void **state) {
  (void)state;
  char path[] = "/tmp/tt_otlp_json_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  tt_exporter_t x;
  assert_int_equal(tt_otlp_json_exporter_new(path, &x), 0);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 4);
  uint64_t ra = 0;
  assert_int_equal(x.export_spans(x.state, spans, 4, 0, &ra), TT_EXPORT_SUCCESS);
  assert_int_equal(x.export_spans(x.state, spans, 1, 0, &ra), TT_EXPORT_SUCCESS);
  assert_int_equal(x.force_flush(x.state, 0), 0);
  x.shutdown(x.state, 0);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  while (getline(&line, &cap, f) > 0) {
    assert_true(strncmp(line, "{\"resourceSpans\":[", 18) == 0);
    lines++;
  }
  free(line);
  fclose(f);
  unlink(path);
  assert_int_equal(lines, 2);
  assert_int_equal(tt_otlp_json_exporter_new("/nonexistent-dir/x.json", &x), TT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_should_decode_to_the_same_fields_as_protobuf),
      cmocka_unit_test(awkward_strings_should_stay_valid_json),
      cmocka_unit_test(file_exporter_should_append_one_line_per_batch),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
