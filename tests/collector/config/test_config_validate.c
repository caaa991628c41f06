/* `--validate` on the real binary runs every check the start runs: a file it accepts is one the
 * daemon starts on, and one the daemon refuses it refuses too, with FILE:LINE: KEY and the exit
 * status docs/config.md gives (0 OK, 1 this host cannot run it, 2 the file is refused; --strict
 * makes a warning refuse). Listening addresses: host names resolve (both receivers), ":port" is
 * every interface, a busy port is a warning. Servers on 127.0.0.1 only. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "config.h"

static char dir[64];   /* a fresh directory per test */
static char cfg[128];  /* dir/c.yaml */
static char out[8192]; /* the last run's stdout and stderr */

static int setup(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    return 0;
  snprintf(dir, sizeof dir, "/tmp/tt-validate-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(cfg, sizeof cfg, "%s/c.yaml", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (dir[0] != '\0') {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
      return -1;
  }
  return 0;
}

/* Writes the configuration: the receivers and the admin port on ephemeral loopback ports unless
 * the text sets them, and no file sink unless it sets one, so only what a test sets is
 * checked. */
static void write_cfg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void write_cfg(const char *fmt, ...) {
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
}

/* Runs the binary with args (after --config FILE) and returns its exit status. */
static int run(const char *args) {
  const char *bin = getenv("TT_COLLECTOR_BIN");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s --config %s %s 2>&1", bin, cfg, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void has(const char *want) {
  if (strstr(out, want) == NULL)
    fail_msg("missing \"%s\" in:\n%s", want, out);
}

static void lacks(const char *unwanted) {
  if (strstr(out, unwanted) != NULL)
    fail_msg("unexpected \"%s\" in:\n%s", unwanted, out);
}

#define NEED_BIN()                                                                                 \
  do {                                                                                             \
    if (getenv("TT_COLLECTOR_BIN") == NULL)                                                        \
      skip();                                                                                      \
  } while (0)

static const char *quiet = "receivers:\n"
                           "  otlp_grpc: {endpoint: \"127.0.0.1:0\"}\n"
                           "  otlp_http: {endpoint: \"127.0.0.1:0\"}\n"
                           "admin: {endpoint: \"127.0.0.1:0\"}\n";

static void
a_sink_file_in_a_missing_directory_should_be_refused_by_validate_and_start(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("%ssink:\n  type: file\n  file:\n    path: %s/no/such/dir/x.jsonl\n", quiet, dir);
  assert_int_equal(run("--validate"), 1);
  char want[256];
  snprintf(want, sizeof want,
           "c.yaml:8: sink.file.path: the directory %s/no/such/dir does not exist", dir);
  has(want);
  lacks(": OK");
  /* The daemon refuses it the same way, before opening a port. */
  assert_int_equal(run(""), 1);
  has(want);
  lacks("listening");
  /* Once the directory is there, both accept it. */
  char sub[128];
  snprintf(sub, sizeof sub, "%s/no", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(sub, sizeof sub, "%s/no/such", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(sub, sizeof sub, "%s/no/such/dir", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(run("--validate"), 0);
  has("c.yaml: OK");
}

static void a_sink_path_that_is_a_directory_should_be_refused(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("%ssink: {type: file, file: {path: %s}}\n", quiet, dir);
  assert_int_equal(run("--validate"), 1);
  has("c.yaml:5: sink.file.path: ");
  has("is a directory");
}

static void a_spool_dir_under_a_file_should_be_refused_by_validate_and_start(void **state) {
  (void)state;
  NEED_BIN();
  char file[128];
  snprintf(file, sizeof file, "%s/plain", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  write_cfg("%ssink: {type: none}\nexporters:\n  - name: be\n    endpoint: \"127.0.0.1:9\"\n"
            "    insecure: true\n    spool:\n      dir: %s/spool\n",
            quiet, file);
  assert_int_equal(run("--validate"), 1);
  char want[512];
  snprintf(want, sizeof want,
           "c.yaml:11: exporters[0].spool.dir: cannot create %s/spool: %s is "
           "not a directory",
           file, file);
  has(want);
  assert_int_equal(run(""), 1);
  has(want);
}

/* Polls for path for up to 10 s. */
static bool appears(const char *path) {
  struct stat st;
  for (int i = 0; i < 200; i++) {
    if (stat(path, &st) == 0)
      return true;
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
  }
  return false;
}

static void
a_missing_spool_dir_should_validate_untouched_and_be_created_0700_at_start(void **state) {
  (void)state;
  NEED_BIN();
  char spool[128];
  snprintf(spool, sizeof spool, "%s/var/spool/be", dir);
  write_cfg("%ssink: {type: none}\nexporters:\n  - name: be\n    endpoint: \"127.0.0.1:9\"\n"
            "    insecure: true\n    spool: {dir: %s}\n",
            quiet, spool);
  assert_int_equal(run("--validate"), 0);
  struct stat st;
  char parent[128];
  snprintf(parent, sizeof parent, "%s/var", dir);
  assert_int_not_equal(stat(parent, &st), 0); /* --validate changes nothing on disk */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(getenv("TT_COLLECTOR_BIN"), "tailtrace-collector", "--config", cfg, (char *)NULL);
    _exit(127);
  }
  bool made = appears(spool);
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  assert_true(made);
  assert_int_equal(stat(parent, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(spool, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void host_names_should_resolve_for_both_receivers_and_unknown_ones_be_refused(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"localhost:0\"}\n"
            "  otlp_http: {endpoint: \"localhost:0\"}\nadmin: {endpoint: \"localhost:0\"}\n"
            "sink: {type: null}\n");
  assert_int_equal(run("--validate"), 0);
  has("c.yaml: OK");
  /* The daemon listens on what the name resolves to (IPv4 first), the HTTP receiver too. */
  const char *bin = getenv("TT_COLLECTOR_BIN");
  char log[128], cmd[512];
  snprintf(log, sizeof log, "%s/log", dir);
  snprintf(cmd, sizeof cmd, "timeout -s TERM 2 %s --config %s > %s 2>&1", bin, cfg, log);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  has("\"msg\":\"otlp_grpc listening\",\"host\":\"127.0.0.1\"");
  has("\"msg\":\"otlp_http listening\",\"host\":\"127.0.0.1\"");
  has("\"msg\":\"admin listening\",\"host\":\"127.0.0.1\"");
  /* A name that does not resolve (.invalid never does) is refused for either receiver. */
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"nohost.invalid:0\"}\n"
            "  otlp_http: {endpoint: \"nohost.invalid:0\"}\nadmin: {endpoint: \"127.0.0.1:0\"}\n"
            "sink: {type: null}\n");
  assert_int_equal(run("--validate"), 1);
  has("c.yaml:2: receivers.otlp_grpc.endpoint: cannot resolve host \"nohost.invalid\"");
  has("c.yaml:3: receivers.otlp_http.endpoint: cannot resolve host \"nohost.invalid\"");
  assert_int_equal(run(""), 1);
  has("c.yaml:3: receivers.otlp_http.endpoint: cannot resolve host");
}

static void a_port_without_a_host_should_mean_every_interface(void **state) {
  (void)state;
  NEED_BIN();
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "admin: {endpoint: \":23133\"}\n";
  assert_int_equal(tt__config_load_string(y, strlen(y), "t.yaml", &c, &e), 0);
  assert_string_equal(c.admin_endpoint, ":23133");
  tt__config_free(&c);
  tt__buf_free(&e);
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"127.0.0.1:0\"}\n"
            "  otlp_http: {endpoint: \"127.0.0.1:0\"}\nadmin: {endpoint: \":0\"}\n"
            "sink: {type: null}\n");
  assert_int_equal(run("--validate"), 0);
  const char *bin = getenv("TT_COLLECTOR_BIN");
  char log[128], cmd[512];
  snprintf(log, sizeof log, "%s/log", dir);
  snprintf(cmd, sizeof cmd, "timeout -s TERM 2 %s --config %s > %s 2>&1", bin, cfg, log);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  has("\"msg\":\"admin listening\",\"host\":\"0.0.0.0\"");
  /* Still a port is needed, and a valid one. */
  write_cfg("admin: {endpoint: \":\"}\n");
  assert_int_equal(run("--validate"), 2);
  has("c.yaml:1: admin.endpoint: expected host:port or :port");
  write_cfg("admin: {endpoint: \":70000\"}\n");
  assert_int_equal(run("--validate"), 2);
  has("got \":70000\"");
}

/* A listening loopback socket on an ephemeral port; returns its fd and sets *port. */
static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

static void a_busy_port_should_be_a_warning_and_refused_under_strict(void **state) {
  (void)state;
  NEED_BIN();
  int port;
  int fd = listen_loopback(&port);
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"127.0.0.1:%d\"}\n"
            "  otlp_http: {endpoint: \"127.0.0.1:0\"}\nadmin: {endpoint: \"127.0.0.1:0\"}\n"
            "sink: {type: null}\n",
            port);
  char want[160];
  snprintf(want, sizeof want,
           "c.yaml:2: receivers.otlp_grpc.endpoint: warning: 127.0.0.1:%d is in use now", port);
  assert_int_equal(run("--validate"), 0);
  has(want);
  has("c.yaml: OK (with warnings)");
  assert_int_equal(run("--validate --strict"), 2);
  has(want);
  lacks(": OK");
  close(fd);
  /* Free again: nothing to say. */
  assert_int_equal(run("--validate --strict"), 0);
  lacks("warning");
}

static void an_address_of_another_host_should_be_refused(void **state) {
  (void)state;
  NEED_BIN();
  /* 192.0.2.1 is TEST-NET-1: documentation only, never an address of this host. */
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"127.0.0.1:0\"}\n"
            "  otlp_http: {endpoint: \"192.0.2.1:0\"}\nadmin: {endpoint: \"127.0.0.1:0\"}\n"
            "sink: {type: null}\n");
  assert_int_equal(run("--validate"), 1);
  has("c.yaml:3: receivers.otlp_http.endpoint: cannot listen on 192.0.2.1:0:");
  has("not an address of this host");
}

static void two_listeners_on_one_port_should_be_refused_naming_both_lines(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("receivers:\n  otlp_grpc: {endpoint: \"127.0.0.1:24999\"}\n"
            "  otlp_http: {endpoint: \"127.0.0.1:0\"}\nadmin: {endpoint: \":24999\"}\n"
            "sink: {type: null}\n");
  assert_int_equal(run("--validate"), 1);
  has("c.yaml:4: admin.endpoint: port 24999 is also receivers.otlp_grpc.endpoint's (line 2)");
}

static void an_unreadable_tls_file_should_be_refused(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("%ssink: {type: none}\nexporters:\n  - name: be\n    endpoint: \"127.0.0.1:9\"\n"
            "    ca_file: %s/missing-ca.pem\n",
            quiet, dir);
  assert_int_equal(run("--validate"), 1);
  char want[200];
  snprintf(want, sizeof want, "c.yaml:9: exporters[0].ca_file: cannot read %s/missing-ca.pem", dir);
  has(want);
}

static void
an_empty_honeycomb_api_key_should_be_a_warning_naming_the_shipped_file_line(void **state) {
  (void)state;
  NEED_BIN();
  const char *src = getenv("TT_SOURCE_DIR");
  if (src == NULL)
    skip();
  /* deploy/honeycomb.yaml as shipped, its spool under this test's directory; the ports it
   * names may be busy on this host, which is a warning of its own and changes nothing here. */
  snprintf(cfg, sizeof cfg, "%s/deploy/honeycomb.yaml", src);
  char spool[128];
  snprintf(spool, sizeof spool, "%s/spool", dir);
  setenv("TT_SPOOL_DIR", spool, 1);
  setenv("HONEYCOMB_API_KEY", "", 1);
  assert_int_equal(run("--validate"), 0);
  has("honeycomb.yaml:22: exporters[0].headers: warning: header x-honeycomb-team is empty: "
      "${HONEYCOMB_API_KEY} expands to nothing");
  assert_int_equal(run("--validate --strict"), 2);
  setenv("HONEYCOMB_API_KEY", "k", 1);
  assert_int_equal(run("--validate"), 0);
  lacks("x-honeycomb-team is empty");
  unsetenv("HONEYCOMB_API_KEY");
  unsetenv("TT_SPOOL_DIR");
}

static void exit_status_should_tell_a_refused_file_from_a_warning(void **state) {
  (void)state;
  NEED_BIN();
  write_cfg("%sworkers: lots\n", quiet);
  assert_int_equal(run("--validate"), 2);
  has("c.yaml:5: workers: expected an integer, got \"lots\"");
  has("configuration refused");
  write_cfg("%ssink: {type: null}\npolicies: []\n", quiet);
  assert_int_equal(run("--validate"), 0);
  has("c.yaml:6: policies: warning: the list is empty");
  assert_int_equal(run("--validate --strict"), 2);
  /* --strict holds for the start as well: the daemon does not start on a warning. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "timeout -s KILL 10 %s --config %s --strict >/dev/null 2>&1",
           getenv("TT_COLLECTOR_BIN"), cfg);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2);
  assert_int_equal(run("--no-such-flag"), 2);
  has("usage:");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          a_sink_file_in_a_missing_directory_should_be_refused_by_validate_and_start, setup,
          teardown),
      cmocka_unit_test_setup_teardown(a_sink_path_that_is_a_directory_should_be_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          a_spool_dir_under_a_file_should_be_refused_by_validate_and_start, setup, teardown),
      cmocka_unit_test_setup_teardown(
          a_missing_spool_dir_should_validate_untouched_and_be_created_0700_at_start, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          host_names_should_resolve_for_both_receivers_and_unknown_ones_be_refused, setup,
          teardown),
      cmocka_unit_test_setup_teardown(a_port_without_a_host_should_mean_every_interface, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_busy_port_should_be_a_warning_and_refused_under_strict,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(an_address_of_another_host_should_be_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(two_listeners_on_one_port_should_be_refused_naming_both_lines,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(an_unreadable_tls_file_should_be_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(
          an_empty_honeycomb_api_key_should_be_a_warning_naming_the_shipped_file_line, setup,
          teardown),
      cmocka_unit_test_setup_teardown(exit_status_should_tell_a_refused_file_from_a_warning, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
