/* Disk spool: order, durability across reopen, budget drops, damage handling. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>

#include <cmocka.h>

#include "spool.h"

typedef struct {
  char dir[256];
  int reports;
  int drops;          /* calls of the dropped hook */
  char first_drop[9]; /* what the first of them was handed, NUL-terminated */
} fixture_t;

static void on_report(void *ctx, const char *msg) {
  (void)msg;
  ((fixture_t *)ctx)->reports++;
}

static void on_dropped(void *ctx, const uint8_t *head, size_t n) {
  fixture_t *f = ctx;
  if (f->drops++ == 0)
    memcpy(f->first_drop, head, n < 8 ? n : 8);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/tt-spool-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  DIR *d = opendir(f->dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
    unlink(p);
  }
  if (d)
    closedir(d);
  rmdir(f->dir);
  free(f);
  return 0;
}

static tt_spool_t *open_spool(fixture_t *f, uint64_t max_bytes, uint64_t seg_bytes) {
  tt_spool_opts_t o = {0};
  o.dir = f->dir;
  o.max_bytes = max_bytes;
  o.segment_bytes = seg_bytes;
  o.fsync = 1;
  o.report = on_report;
  o.dropped = on_dropped;
  o.report_ctx = f;
  tt_spool_t *s = NULL;
  char err[256] = "";
  int rc = tt__spool_open(&o, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("open failed: %s", err);
  return s;
}

static void append_str(tt_spool_t *s, const char *str, uint64_t ms) {
  assert_int_equal(tt__spool_append(s, str, strlen(str), ms), 0);
}

static void expect_next(tt_spool_t *s, const char *want) {
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data, want, b.len);
  assert_int_equal(tt__spool_ack(s), 0);
  tt__buf_free(&b);
}

static void expect_empty(tt_spool_t *s) {
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), -ENOENT);
  tt__buf_free(&b);
}

/* Finds the one segment file in the directory (tests that corrupt a file use one segment). */
static void first_segment(fixture_t *f, char *out, size_t n) {
  DIR *d = opendir(f->dir);
  struct dirent *e;
  char best[256] = "";
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "seg-", 4) != 0)
      continue;
    if (best[0] == '\0' || strcmp(e->d_name, best) < 0)
      snprintf(best, sizeof best, "%s", e->d_name);
  }
  closedir(d);
  assert_true(best[0] != '\0');
  snprintf(out, n, "%s/%s", f->dir, best);
}

static void spool_should_replay_records_in_append_order_after_reopen(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "one", 1);
  append_str(s, "two", 2);
  append_str(s, "three", 3);
  tt__spool_close(s);

  s = open_spool(f, 0, 0);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 3);
  assert_int_equal(st.oldest_unix_ms, 1);
  expect_next(s, "one");
  expect_next(s, "two");
  expect_next(s, "three");
  expect_empty(s);
  tt__spool_close(s);
}

static void spool_should_not_replay_acknowledged_records_after_restart(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "a", 1);
  append_str(s, "b", 2);
  append_str(s, "c", 3);
  expect_next(s, "a");
  /* Peeked but not acknowledged: in flight at the "crash", so it comes again. */
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  tt__buf_free(&b);
  tt__spool_close(s);

  s = open_spool(f, 0, 0);
  expect_next(s, "b");
  expect_next(s, "c");
  expect_empty(s);
  tt__spool_close(s);
}

static void spool_peek_should_return_same_record_until_acknowledged(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "x", 1);
  append_str(s, "y", 2);
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  assert_memory_equal(b.data, "x", 1);
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  assert_memory_equal(b.data, "x", 1);
  tt__buf_free(&b);
  expect_next(s, "x");
  expect_next(s, "y");
  assert_int_equal(tt__spool_ack(s), -ENOENT);
  tt__spool_close(s);
}

static void spool_should_rotate_segments_and_keep_order_across_them(void **state) {
  fixture_t *f = *state;
  /* 24-byte header + 10-byte payload = 34 bytes a record; 100-byte segments hold 2. */
  tt_spool_t *s = open_spool(f, 0, 100);
  char rec[16];
  for (int i = 0; i < 9; i++) {
    snprintf(rec, sizeof rec, "record-%03d", i);
    append_str(s, rec, (uint64_t)i + 1);
  }
  tt__spool_close(s);
  s = open_spool(f, 0, 100);
  for (int i = 0; i < 9; i++) {
    snprintf(rec, sizeof rec, "record-%03d", i);
    expect_next(s, rec);
  }
  expect_empty(s);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 0);
  assert_int_equal(st.oldest_unix_ms, 0);
  tt__spool_close(s);
}

static void spool_should_drop_oldest_and_count_when_budget_is_exceeded(void **state) {
  fixture_t *f = *state;
  /* Budget 200 bytes, segments of 100: records of 34 bytes may take 200 - 100 bytes, so 2 of
   * them wait at once (a third would take 102). */
  tt_spool_t *s = open_spool(f, 200, 100);
  char rec[16];
  for (int i = 0; i < 20; i++) {
    snprintf(rec, sizeof rec, "record-%03d", i);
    append_str(s, rec, (uint64_t)i + 1);
  }
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_true(st.bytes <= 200);
  assert_int_equal(st.records, 2);
  assert_int_equal(st.dropped_records, 18);
  assert_int_equal(st.dropped_bytes, 18 * 34);
  /* Nothing vanishes without being counted, and each drop is handed to the hook. */
  assert_int_equal(f->drops, 18);
  assert_string_equal(f->first_drop, "record-0");
  /* All 18 drops fell within one minute of append times: one report line, not 18. */
  assert_int_equal(f->reports, 1);
  /* What is left is the newest records, in order, ending with the last one. */
  tt_buf_t b = TT_BUF_INIT;
  int expect = (int)st.dropped_records;
  while (tt__spool_peek(s, &b, NULL) == 0) {
    snprintf(rec, sizeof rec, "record-%03d", expect++);
    assert_int_equal(b.len, strlen(rec));
    assert_memory_equal(b.data, rec, b.len);
    assert_int_equal(tt__spool_ack(s), 0);
  }
  assert_int_equal(expect, 20);
  tt__buf_free(&b);
  tt__spool_close(s);
}

/* The issue-17 case: a budget under two segments used to lose the whole spool at the first
 * overflow. Budget 1000 bytes, segments of 300 (3 records of 100 bytes): the waiting records may
 * take 1000 - 300 = 700 bytes, 7 records. 40 appends drop exactly the 33 oldest, one per
 * append once full, never a segment at once; the files stay within 1000 bytes throughout, and
 * the 7 newest are replayed in order, also after a reopen. */
static void spool_should_drop_one_oldest_record_per_append_not_a_segment(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 1000, 300);
  char rec[77];
  tt_spool_stats_t st;
  for (int i = 0; i < 40; i++) {
    snprintf(rec, sizeof rec, "%03d-%072d", i, 0); /* 76 bytes + the 24-byte header */
    append_str(s, rec, (uint64_t)i + 1);
    tt__spool_stats(s, &st);
    assert_true(st.bytes <= 1000);
    assert_int_equal(st.records, i < 7 ? i + 1 : 7);
    assert_int_equal(st.dropped_records, i < 7 ? 0 : i - 6);
  }
  assert_int_equal(st.dropped_bytes, 33 * 100);
  assert_int_equal(f->drops, 33);
  assert_memory_equal(f->first_drop, "000-0000", 8);
  tt__spool_close(s);
  s = open_spool(f, 1000, 300);
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 7);
  tt_buf_t b = TT_BUF_INIT;
  for (int i = 33; i < 40; i++) {
    assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
    assert_int_equal(b.len, 76);
    assert_int_equal(atoi((const char *)b.data), i);
    assert_int_equal(tt__spool_ack(s), 0);
  }
  expect_empty(s);
  tt__buf_free(&b);
  tt__spool_close(s);
}

/* Without a segment size, segments are an eighth of the budget: budget 8000, records of 100
 * bytes, 1000-byte segments, 7000 bytes for waiting records: 70 of them. */
static void spool_should_size_default_segments_to_an_eighth_of_the_budget(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 8000, 0);
  char rec[77];
  for (int i = 0; i < 100; i++) {
    snprintf(rec, sizeof rec, "%03d-%072d", i, 0);
    append_str(s, rec, (uint64_t)i + 1);
  }
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 70);
  assert_int_equal(st.dropped_records, 30);
  assert_true(st.bytes <= 8000);
  tt__spool_close(s);
}

static void spool_should_refuse_a_record_larger_than_the_budget(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 64, 0);
  char big[100];
  memset(big, 'z', sizeof big);
  assert_int_equal(tt__spool_append(s, big, sizeof big, 1), -EMSGSIZE);
  expect_empty(s);
  tt__spool_close(s);
}

static void spool_should_skip_the_rest_of_a_segment_after_a_checksum_mismatch(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "good-1", 1);
  append_str(s, "bad-22", 2);
  append_str(s, "after3", 3);
  tt__spool_close(s);

  char path[512];
  first_segment(f, path, sizeof path);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  /* Second record's payload starts at 24 + 6 + 24. Flip one byte of it. */
  char c = 'X';
  assert_int_equal(pwrite(fd, &c, 1, 24 + 6 + 24 + 1), 1);
  close(fd);

  f->reports = 0;
  s = open_spool(f, 0, 0);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.corrupt_records, 1);
  assert_true(f->reports > 0);
  expect_next(s, "good-1");
  expect_empty(s);
  /* The spool keeps working after damage. */
  append_str(s, "new", 4);
  expect_next(s, "new");
  tt__spool_close(s);
}

static void spool_should_cut_a_torn_tail_and_keep_earlier_records(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "complete", 1);
  append_str(s, "torn-record", 2);
  tt__spool_close(s);

  char path[512];
  first_segment(f, path, sizeof path);
  struct stat st0;
  assert_int_equal(stat(path, &st0), 0);
  assert_int_equal(truncate(path, st0.st_size - 4), 0);

  s = open_spool(f, 0, 0);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 1);
  assert_true(st.truncated_bytes > 0);
  expect_next(s, "complete");
  expect_empty(s);
  tt__spool_close(s);
}

static void spool_should_survive_garbage_files_in_its_directory(void **state) {
  fixture_t *f = *state;
  char path[512];
  snprintf(path, sizeof path, "%s/seg-0000000000000001.tts", f->dir);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  fputs("this is not a spool segment at all, just text of some length", fp);
  fclose(fp);
  tt_spool_t *s = open_spool(f, 0, 0);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.corrupt_records, 1);
  expect_empty(s);
  append_str(s, "ok", 5);
  expect_next(s, "ok");
  tt__spool_close(s);
}

#define CONCURRENT_RECORDS 400

static int append_failures; /* cmocka asserts belong on the test's own thread */

static void *append_many(void *arg) {
  tt_spool_t *s = arg;
  for (int i = 0; i < CONCURRENT_RECORDS; i++) {
    char rec[64];
    snprintf(rec, sizeof rec, "record-%04d-%s", i, i % 3 ? "short" : "a-little-longer-one");
    if (tt__spool_append(s, rec, strlen(rec), 1000 + (uint64_t)i) != 0)
      append_failures++;
  }
  return NULL;
}

/* The exporter's spool mode always: one thread appends (its fsync outside the lock) while
 * another peeks and acknowledges. The reader sees every record once, whole, in order, across
 * segment rotations; nothing is left afterwards, also after a reopen. */
static void
spool_should_hand_out_each_record_once_in_order_while_another_thread_appends(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 1 << 20, 2048);
  pthread_t writer;
  assert_int_equal(pthread_create(&writer, NULL, append_many, s), 0);
  tt_buf_t b = TT_BUF_INIT;
  int next = 0;
  for (long spins = 0; next < CONCURRENT_RECORDS && spins < 20000000; spins++) {
    int rc = tt__spool_peek(s, &b, NULL);
    if (rc == -ENOENT) {
      sched_yield();
      continue;
    }
    assert_int_equal(rc, 0);
    char want[64];
    snprintf(want, sizeof want, "record-%04d-%s", next, next % 3 ? "short" : "a-little-longer-one");
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
      fail_msg("expected %s, got %.*s", want, (int)b.len, (const char *)b.data);
    assert_int_equal(tt__spool_ack(s), 0);
    next++;
  }
  pthread_join(writer, NULL);
  assert_int_equal(append_failures, 0);
  assert_int_equal(next, CONCURRENT_RECORDS);
  expect_empty(s);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 0);
  assert_int_equal(st.dropped_records, 0);
  tt__spool_close(s);
  s = open_spool(f, 1 << 20, 2048);
  expect_empty(s);
  tt__spool_close(s);
  tt__buf_free(&b);
}

static void expect_peek_next(tt_spool_t *s, tt_buf_t *b, const char *want) {
  assert_int_equal(tt__spool_peek_next(s, b, 1000), 0);
  assert_int_equal(b->len, strlen(want));
  assert_memory_equal(b->data, want, b->len);
}

/* A reader gathers several records (across a segment boundary) before acknowledging any:
 * peek_next follows the run, refuses a record over its limit without taking it, acks go from
 * the run's front, and a new peek starts over at the head. What was not acknowledged comes
 * again after a reopen, in order. */
static void spool_peek_next_should_gather_a_run_acknowledged_from_its_front(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 80); /* 2 records of ~33 bytes a segment */
  const char *recs[] = {"rec-a", "rec-b", "rec-c", "rec-d", "rec-eeeeeeeeeeee"};
  for (int i = 0; i < 5; i++)
    append_str(s, recs[i], (uint64_t)i + 1);
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek_next(s, &b, 1000), -ENOENT); /* no run started */
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  expect_peek_next(s, &b, "rec-b");
  expect_peek_next(s, &b, "rec-c");
  /* Over the limit: refused, not taken; a larger limit takes it. */
  expect_peek_next(s, &b, "rec-d");
  assert_int_equal(tt__spool_peek_next(s, &b, 5), -EMSGSIZE);
  expect_peek_next(s, &b, "rec-eeeeeeeeeeee");
  assert_int_equal(tt__spool_peek_next(s, &b, 1000), -ENOENT);
  /* Peek starts over: the run is forgotten, nothing was consumed. */
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  assert_memory_equal(b.data, "rec-a", 5);
  expect_peek_next(s, &b, "rec-b");
  expect_peek_next(s, &b, "rec-c");
  assert_int_equal(tt__spool_ack(s), 0); /* rec-a */
  assert_int_equal(tt__spool_ack(s), 0); /* rec-b */
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.records, 3);
  tt__spool_close(s); /* rec-c peeked, not acknowledged: it comes again */
  s = open_spool(f, 0, 80);
  expect_next(s, "rec-c");
  expect_next(s, "rec-d");
  expect_next(s, "rec-eeeeeeeeeeee");
  expect_empty(s);
  assert_int_equal(tt__spool_ack(s), -ENOENT);
  tt__spool_close(s);
  tt__buf_free(&b);
}

/* The budget drops the oldest record of a peeked run: its ack answers -ENOENT (it is counted as
 * dropped), the rest of the run is acknowledged as usual. Budget 200, segments of 80: 120 bytes
 * for waiting records; three of 29 and one of 28 fit (115), the next append drops old-1 only. */
static void spool_ack_should_answer_enoent_for_run_records_the_budget_dropped(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 200, 80);
  append_str(s, "old-1", 1);
  append_str(s, "old-2", 2);
  append_str(s, "new-3", 3);
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  expect_peek_next(s, &b, "old-2");
  expect_peek_next(s, &b, "new-3");
  tt_spool_stats_t st;
  append_str(s, "more", 4);
  tt__spool_stats(s, &st);
  assert_int_equal(st.dropped_records, 0);
  append_str(s, "more", 5);
  tt__spool_stats(s, &st);
  assert_int_equal(st.dropped_records, 1);     /* old-1, not old-2 or new-3 */
  assert_int_equal(tt__spool_ack(s), -ENOENT); /* old-1 */
  assert_int_equal(tt__spool_ack(s), 0);       /* old-2 */
  assert_int_equal(tt__spool_ack(s), 0);       /* new-3 */
  expect_next(s, "more");
  expect_next(s, "more");
  expect_empty(s);
  tt__spool_close(s);
  tt__buf_free(&b);
}

/* Budget 100 (segments of 12, so one record each): the budget drops the peeked records, the
 * write segment starts afresh under the same number: an ack of a record peeked from a dropped
 * one must not mark a record of the new one. */
static void spool_ack_should_not_mark_a_new_record_after_its_segment_restarted(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 100, 0);
  append_str(s, "old-1", 1);
  append_str(s, "old-2", 2);
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  expect_peek_next(s, &b, "old-2");
  append_str(s, "new-3-pushes-the-old-ones-out", 3);
  append_str(s, "new-4", 4);
  tt_spool_stats_t st;
  tt__spool_stats(s, &st);
  assert_int_equal(st.dropped_records, 2);
  assert_int_equal(tt__spool_ack(s), -ENOENT);
  assert_int_equal(tt__spool_ack(s), -ENOENT);
  tt__spool_close(s);
  s = open_spool(f, 100, 0); /* what is on disk: both new records, unconsumed */
  expect_next(s, "new-3-pushes-the-old-ones-out");
  expect_next(s, "new-4");
  expect_empty(s);
  tt__spool_close(s);
  tt__buf_free(&b);
}

/* The test hook: an injected read fault is a read error, never an empty spool, and takes
 * nothing; an injected mark fault is reported and still moves the spool on. */
static void spool_should_report_injected_read_and_mark_faults(void **state) {
  fixture_t *f = *state;
  tt_spool_t *s = open_spool(f, 0, 0);
  append_str(s, "one", 1);
  append_str(s, "two", 2);
  tt_buf_t b = TT_BUF_INIT;
  tt__spool_inject_fault(TT_SPOOL_FAULT_READ, 1, EIO);
  assert_int_equal(tt__spool_peek(s, &b, NULL), -EIO);
  assert_int_equal(tt__spool_ack(s), -ENOENT);
  tt__spool_inject_fault(TT_SPOOL_FAULT_MARK, 1, ENOSPC);
  assert_int_equal(tt__spool_peek(s, &b, NULL), 0);
  assert_int_equal(tt__spool_ack(s), -ENOSPC);
  expect_next(s, "two");
  expect_empty(s);
  tt__spool_close(s);
  tt__buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(spool_should_replay_records_in_append_order_after_reopen,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_not_replay_acknowledged_records_after_restart,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_peek_should_return_same_record_until_acknowledged,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_rotate_segments_and_keep_order_across_them,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_drop_oldest_and_count_when_budget_is_exceeded,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_drop_one_oldest_record_per_append_not_a_segment,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_size_default_segments_to_an_eighth_of_the_budget,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_refuse_a_record_larger_than_the_budget, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          spool_should_skip_the_rest_of_a_segment_after_a_checksum_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_cut_a_torn_tail_and_keep_earlier_records, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          spool_should_hand_out_each_record_once_in_order_while_another_thread_appends, setup,
          teardown),
      cmocka_unit_test_setup_teardown(spool_should_survive_garbage_files_in_its_directory, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          spool_peek_next_should_gather_a_run_acknowledged_from_its_front, setup, teardown),
      cmocka_unit_test_setup_teardown(
          spool_ack_should_answer_enoent_for_run_records_the_budget_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(
          spool_ack_should_not_mark_a_new_record_after_its_segment_restarted, setup, teardown),
      cmocka_unit_test_setup_teardown(spool_should_report_injected_read_and_mark_faults, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
