/* SIGHUP on the real daemon: the policies and log.level are reloaded; every other key the new
 * file changes is named in one JSON warning line (it needs a restart and keeps its running
 * value); a refused file changes nothing and its errors are logged as JSON lines with
 * FILE:LINE: KEY. Listens on 127.0.0.1 ephemeral ports only. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
  char dir[64];
  char cfg[128];
  char log[128];
  pid_t pid;
} daemon_t;

static const char *base = "receivers:\n"
                          "  otlp_grpc: {endpoint: \"127.0.0.1:0\"}\n"
                          "  otlp_http: {endpoint: \"127.0.0.1:0\"}\n"
                          "admin: {endpoint: \"127.0.0.1:0\"}\n"
                          "sink: {type: null}\n";

static void write_cfg(daemon_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_cfg(daemon_t *d, const char *fmt, ...) {
  /* Written whole to a new name and renamed over, as an editor or a config manager does, so the
   * daemon never reads half a file. */
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.new", d->cfg);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
  assert_int_equal(rename(tmp, d->cfg), 0);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* The nth (from 1) log line containing every needle, copied to line; false after 10 s. */
static bool find_line(daemon_t *d, int nth, const char *n1, const char *n2, char *line,
                      size_t cap) {
  for (int i = 0; i < 1000; i++) {
    FILE *f = fopen(d->log, "r");
    int seen = 0;
    while (f != NULL && fgets(line, (int)cap, f) != NULL)
      if (strstr(line, n1) != NULL && (n2 == NULL || strstr(line, n2) != NULL) && ++seen == nth) {
        fclose(f);
        return true;
      }
    if (f != NULL)
      fclose(f);
    sleep_ms(10);
  }
  return false;
}

/* How many log lines contain needle, now. */
static int count_lines(daemon_t *d, const char *needle) {
  FILE *f = fopen(d->log, "r");
  char line[2048];
  int n = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    n += strstr(line, needle) != NULL;
  if (f != NULL)
    fclose(f);
  return n;
}

static void start(daemon_t *d) {
  const char *bin = getenv("TT_COLLECTOR_BIN");
  d->pid = fork();
  assert_true(d->pid >= 0);
  if (d->pid == 0) {
    int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(bin, bin, "--config", d->cfg, (char *)NULL);
    _exit(127);
  }
}

static int setup(void **state) {
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    return 0;
  daemon_t *d = calloc(1, sizeof *d);
  snprintf(d->dir, sizeof d->dir, "/tmp/tt-reload-XXXXXX");
  if (mkdtemp(d->dir) == NULL)
    return -1;
  snprintf(d->cfg, sizeof d->cfg, "%s/c.yaml", d->dir);
  snprintf(d->log, sizeof d->log, "%s/log", d->dir);
  d->pid = -1;
  *state = d;
  return 0;
}

static int teardown(void **state) {
  daemon_t *d = *state;
  if (d == NULL)
    return 0;
  if (d->pid > 0) {
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d->dir);
  int rc = system(cmd);
  free(d);
  return rc == 0 ? 0 : -1;
}

#define NEED_BIN()                                                                                 \
  do {                                                                                             \
    if (getenv("TT_COLLECTOR_BIN") == NULL)                                                        \
      skip();                                                                                      \
  } while (0)

static void sighup_should_name_in_one_warning_every_changed_key_that_needs_a_restart(void **state) {
  NEED_BIN();
  daemon_t *d = *state;
  char line[2048];
  write_cfg(d, "%sworkers: 1\npolicies:\n  - {type: errors}\n", base);
  start(d);
  assert_true(find_line(d, 1, "tailtrace-collector started", NULL, line, sizeof line));
  write_cfg(d,
            "%sworkers: 2\nmemory: {budget: 128MiB}\nlog: {level: debug}\n"
            "policies:\n  - {type: ratio, ratio: 1}\n"
            "exporters:\n  - {name: be, endpoint: \"127.0.0.1:9\", insecure: true}\n",
            base);
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 1, "need a restart", NULL, line, sizeof line));
  assert_non_null(strstr(line, "\"level\":\"warn\""));
  assert_non_null(strstr(line, "\"keys\":[\"workers\",\"memory.budget\",\"exporters\"]"));
  /* What SIGHUP applies is never in the list. */
  assert_null(strstr(line, "log.level"));
  assert_null(strstr(line, "policies"));
  assert_true(
      find_line(d, 1, "SIGHUP: policies reloaded", "\"log_level\":\"debug\"", line, sizeof line));
  /* The running values stay, so a second SIGHUP with the same file says so again; a file back
   * at the running values says nothing. */
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 2, "SIGHUP: policies reloaded", NULL, line, sizeof line));
  assert_int_equal(count_lines(d, "need a restart"), 2);
  write_cfg(d, "%sworkers: 1\npolicies:\n  - {type: errors}\n", base);
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 3, "SIGHUP: policies reloaded", NULL, line, sizeof line));
  assert_int_equal(count_lines(d, "need a restart"), 2);
}

static void sighup_should_apply_a_new_log_level(void **state) {
  NEED_BIN();
  daemon_t *d = *state;
  char line[2048];
  /* At warn, the start's info lines are not written; the warning about the empty policy list
   * is, and says the daemon is up. */
  write_cfg(d, "%slog: {level: warn}\npolicies: []\n", base);
  start(d);
  assert_true(find_line(d, 1, "policies: warning: the list is empty", NULL, line, sizeof line));
  sleep_ms(200);
  assert_int_equal(count_lines(d, "tailtrace-collector started"), 0);
  /* Down to info: the reload's own info line is written. */
  write_cfg(d, "%slog: {level: info}\npolicies: []\n", base);
  kill(d->pid, SIGHUP);
  assert_true(
      find_line(d, 1, "SIGHUP: policies reloaded", "\"log_level\":\"info\"", line, sizeof line));
  /* Up to error: a change that needs a restart is a warning, so it is not written; an error
   * still is. */
  write_cfg(d, "%slog: {level: error}\nworkers: 3\n", base);
  kill(d->pid, SIGHUP);
  sleep_ms(300);
  write_cfg(d, "%slog: {level: error}\nworkers: [\n", base);
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 1, "SIGHUP: configuration refused", NULL, line, sizeof line));
  assert_int_equal(count_lines(d, "need a restart"), 0);
  assert_int_equal(count_lines(d, "SIGHUP: policies reloaded"), 1);
}

static void a_refused_reload_should_log_each_error_as_json_and_change_nothing(void **state) {
  NEED_BIN();
  daemon_t *d = *state;
  char line[2048];
  write_cfg(d, "%spolicies:\n  - {type: errors}\n", base);
  start(d);
  assert_true(find_line(d, 1, "tailtrace-collector started", NULL, line, sizeof line));
  write_cfg(d, "%sworkers: lots\nlog: {level: error}\n", base);
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 1, "SIGHUP: configuration refused", NULL, line, sizeof line));
  assert_null(strstr(line, ",}")); /* a well-formed JSON object */
  char want[256];
  snprintf(want, sizeof want, "%s:6: workers: expected an integer, got \\\"lots\\\"", d->cfg);
  assert_true(find_line(d, 1, want, NULL, line, sizeof line));
  assert_true(strncmp(line, "{\"ts\":", 6) == 0);
  assert_non_null(strstr(line, "\"level\":\"error\""));
  /* Nothing changed: the level is still info (the refused file's error level was not taken). */
  write_cfg(d, "%spolicies:\n  - {type: errors}\n", base);
  kill(d->pid, SIGHUP);
  assert_true(find_line(d, 1, "SIGHUP: policies reloaded", NULL, line, sizeof line));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          sighup_should_name_in_one_warning_every_changed_key_that_needs_a_restart, setup,
          teardown),
      cmocka_unit_test_setup_teardown(sighup_should_apply_a_new_log_level, setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_refused_reload_should_log_each_error_as_json_and_change_nothing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
