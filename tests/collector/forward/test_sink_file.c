/* The file sink: one record per batch, size-based rotation keeping max_files, and the null sink. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sink.h"

/* A stand-in encoder: the batch's bytes as text (the daemon uses tt__otlp_json_from_pb). */
static int text_encode(const uint8_t *pb, size_t len, tt_buf_t *out) {
  return tt__buf_append(out, pb, len);
}

static int fail_encode(const uint8_t *pb, size_t len, tt_buf_t *out) {
  (void)pb;
  (void)len;
  (void)out;
  return -EINVAL;
}

static off_t size_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

static void file_sink_should_rotate_by_size_and_keep_max_files(void **state) {
  (void)state;
  char dir[] = "/tmp/tt-sink-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], p1[140], p2[140], p3[140];
  snprintf(path, sizeof path, "%s/out.jsonl", dir);
  snprintf(p1, sizeof p1, "%s.1", path);
  snprintf(p2, sizeof p2, "%s.2", path);
  snprintf(p3, sizeof p3, "%s.3", path);
  tt_file_sink_opts_t o = {path, 100, 2, text_encode, false};
  tt_sink_t *s;
  assert_int_equal(tt__sink_file_open(&o, &s), 0);
  char rec[40];
  memset(rec, 'a', sizeof rec);
  /* 41 bytes a line: two fit in 100 bytes, the third rotates. */
  for (int i = 0; i < 7; i++) {
    rec[0] = (char)('0' + i);
    assert_int_equal(s->vt->submit(s, (const uint8_t *)rec, sizeof rec, 1), 0);
  }
  assert_int_equal(s->vt->flush(s), 0);
  assert_true(s->vt->healthy(s));
  s->vt->close(s);
  assert_int_equal(size_of(path), 41); /* record 6 */
  assert_int_equal(size_of(p1), 82);   /* records 4, 5 */
  assert_int_equal(size_of(p2), 82);   /* records 2, 3 */
  assert_int_equal(size_of(p3), -1);   /* records 0, 1 rotated away */
  FILE *f = fopen(p1, "r");
  char line[64];
  assert_non_null(fgets(line, sizeof line, f));
  assert_int_equal(line[0], '4');
  assert_int_equal(line[40], '\n');
  fclose(f);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void file_sink_should_report_encoder_failures(void **state) {
  (void)state;
  char path[] = "/tmp/tt-sink-fail-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  tt_file_sink_opts_t o = {path, 0, 1, fail_encode, false};
  tt_sink_t *s;
  assert_int_equal(tt__sink_file_open(&o, &s), 0);
  assert_int_equal(s->vt->submit(s, (const uint8_t *)"x", 1, 1), -EINVAL);
  s->vt->close(s);
  assert_int_equal(size_of(path), 0);
  unlink(path);
  tt_file_sink_opts_t bad = {"/nonexistent-dir/x.jsonl", 0, 1, text_encode, false};
  assert_true(tt__sink_file_open(&bad, &s) < 0);
}

static void delimited_format_should_frame_each_batch(void **state) {
  (void)state;
  tt_buf_t b = TT_BUF_INIT;
  uint8_t big[300];
  memset(big, 7, sizeof big);
  assert_int_equal(tt__sink_encode_delimited(big, sizeof big, &b), 0);
  assert_int_equal(b.len, 302);
  assert_int_equal(b.data[0], 0xac); /* 300 = 0b10_0101100 */
  assert_int_equal(b.data[1], 0x02);
  tt__buf_free(&b);
}

static void null_sink_should_count_spans(void **state) {
  (void)state;
  tt_sink_t *s = tt__sink_null_new();
  assert_int_equal(s->vt->submit(s, (const uint8_t *)"x", 1, 5), 0);
  assert_int_equal(s->vt->submit(s, (const uint8_t *)"x", 1, 7), 0);
  assert_int_equal(tt__sink_null_spans(s), 12);
  s->vt->close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(file_sink_should_rotate_by_size_and_keep_max_files),
      cmocka_unit_test(file_sink_should_report_encoder_failures),
      cmocka_unit_test(delimited_format_should_frame_each_batch),
      cmocka_unit_test(null_sink_should_count_spans),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
