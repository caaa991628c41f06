/* The real tailtrace-collector binary as a child process: OTLP/HTTP in over a socket, the admin
 * port, SIGHUP reloading the policies, and SIGTERM deciding every held trace and flushing it to
 * the file sink before a clean exit. Ports are ephemeral (port 0, read back from the JSON log). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "otlp_fixture.h"

typedef struct {
  char dir[64];
  char cfg[128], err[128], out[128];
  pid_t pid;
  int http_port, admin_port;
  int fifo_fd;
} daemon_t;

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static const char *sink_format = "protobuf";
static const char *memory_budget = "256MiB";
static const char *shutdown_deadline = "20s";
static bool out_is_fifo; /* the sink writes into a pipe nobody reads: its writes block */

static void write_config(daemon_t *d, double ratio) {
  char y[1024];
  snprintf(y, sizeof y,
           "receivers:\n"
           /* gRPC stays off here: libgrpc is not TSan-instrumented and reports races inside
            * itself; the gRPC receiver has its own tests. */
           "  otlp_grpc: {enabled: false, endpoint: \"127.0.0.1:0\"}\n"
           "  otlp_http: {endpoint: \"127.0.0.1:0\"}\n"
           "admin: {endpoint: \"127.0.0.1:0\"}\n"
           "workers: 2\n"
           "decision: {root_grace: 60s, idle_timeout: 60s}\n"
           "sink:\n  file: {path: \"%s\", format: %s}\n"
           "memory: {budget: %s, max_trace_size: 1MiB, retry_after: 2s}\n"
           "shutdown: {deadline: %s}\n"
           "policies:\n  - {type: ratio, ratio: %g}\n",
           d->out, sink_format, memory_budget, shutdown_deadline, ratio);
  write_file(d->cfg, y);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Waits (bounded) for a line containing `needle` in the child's log; returns the line's "port"
 * value, 0 when the line has none, -1 when it never came. */
static int wait_log(daemon_t *d, const char *needle) {
  for (int i = 0; i < 1000; i++) {
    FILE *f = fopen(d->err, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
      if (strstr(line, needle) != NULL) {
        fclose(f);
        const char *p = strstr(line, "\"port\":");
        return p ? atoi(p + 7) : 0;
      }
    }
    if (f != NULL)
      fclose(f);
    sleep_ms(10);
  }
  return -1;
}

static void start(daemon_t *d, double ratio) {
  const char *bin = getenv("TT_COLLECTOR_BIN");
  assert_non_null(bin);
  strcpy(d->dir, "/tmp/tt-daemon-XXXXXX");
  assert_non_null(mkdtemp(d->dir));
  snprintf(d->cfg, sizeof d->cfg, "%s/c.yaml", d->dir);
  snprintf(d->err, sizeof d->err, "%s/err.log", d->dir);
  snprintf(d->out, sizeof d->out, "%s/out.bin", d->dir);
  write_config(d, ratio);
  d->fifo_fd = -1;
  if (out_is_fifo) {
    assert_int_equal(mkfifo(d->out, 0600), 0);
    d->fifo_fd = open(d->out, O_RDONLY | O_NONBLOCK); /* lets the sink's open succeed */
    assert_true(d->fifo_fd >= 0);
  }
  d->pid = fork();
  assert_true(d->pid >= 0);
  if (d->pid == 0) {
    int fd = open(d->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    execl(bin, bin, "--config", d->cfg, (char *)NULL);
    _exit(127);
  }
  d->http_port = wait_log(d, "otlp_http listening");
  d->admin_port = wait_log(d, "admin listening");
  assert_true(d->http_port > 0);
  assert_true(d->admin_port > 0);
  assert_true(wait_log(d, "tailtrace-collector started") >= 0);
}

static int stop(daemon_t *d, int sig) {
  kill(d->pid, sig);
  int st = 0;
  assert_int_equal(waitpid(d->pid, &st, 0), d->pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void cleanup(daemon_t *d) {
  if (d->fifo_fd >= 0)
    close(d->fifo_fd);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d->dir);
  assert_int_equal(system(cmd), 0);
}

/* One HTTP/1.1 exchange; returns the status code and the body in out. */
static int http(int port, const char *method, const char *path, const uint8_t *body, size_t len,
                char *out, size_t outlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char hdr[256];
  int n = snprintf(hdr, sizeof hdr,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   method, path, len);
  assert_int_equal(write(fd, hdr, (size_t)n), n);
  if (len > 0)
    assert_int_equal(write(fd, body, len), (ssize_t)len);
  size_t got = 0;
  ssize_t r;
  while (got < outlen - 1 && (r = read(fd, out + got, outlen - 1 - got)) > 0)
    got += (size_t)r;
  out[got] = '\0';
  close(fd);
  int status = 0;
  sscanf(out, "HTTP/1.1 %d", &status);
  return status;
}

static void send_traces(daemon_t *d, size_t ntraces) {
  span_spec_t sp[40];
  for (size_t i = 0; i < ntraces; i++) {
    sp[2 * i] = fx_span(500 + i, 1, 0);
    sp[2 * i + 1] = fx_span(500 + i, 2, 1);
  }
  size_t len;
  uint8_t *req = fx_request(sp, ntraces * 2, &len);
  char resp[4096];
  assert_int_equal(http(d->http_port, "POST", "/v1/traces", req, len, resp, sizeof resp), 200);
  free(req);
}

/* Reads the protobuf file sink's length-delimited records; returns spans seen, and checks each
 * carries `trigger`. */
static size_t read_sink(daemon_t *d, const char *trigger) {
  FILE *f = fopen(d->out, "rb");
  assert_non_null(f);
  static uint8_t data[1 << 20];
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  size_t off = 0, spans = 0;
  while (off < n) {
    uint64_t len = 0;
    int shift = 0;
    while (data[off] & 0x80)
      len |= (uint64_t)(data[off++] & 0x7f) << shift, shift += 7;
    len |= (uint64_t)data[off++] << shift;
    assert_true(off + len <= n);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, len, data + off);
    assert_non_null(r);
    for (size_t a = 0; a < r->n_resource_spans; a++)
      for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = r->resource_spans[a]->scope_spans[b];
        for (size_t k = 0; k < ss->n_spans; k++) {
          assert_string_equal(fx_attr(ss->spans[k], "tailtrace.decision.trigger")->string_value,
                              trigger);
          spans++;
        }
      }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
    off += len;
  }
  return spans;
}

static void sigterm_should_decide_held_traces_flush_and_exit_cleanly(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  daemon_t d;
  start(&d, 1.0);
  send_traces(&d, 10);
  char resp[65536];
  assert_int_equal(http(d.admin_port, "GET", "/healthz", NULL, 0, resp, sizeof resp), 200);
  assert_int_equal(http(d.admin_port, "GET", "/readyz", NULL, 0, resp, sizeof resp), 200);
  /* Metrics follow the shards asynchronously: poll (bounded) until all ten traces are held. */
  bool held = false;
  for (int i = 0; i < 500 && !held; i++) {
    assert_int_equal(http(d.admin_port, "GET", "/metrics", NULL, 0, resp, sizeof resp), 200);
    held = strstr(resp, "\ntailtrace_traces_held 10\n") != NULL;
    if (!held)
      sleep_ms(10);
  }
  assert_true(held);
  assert_non_null(strstr(resp, "tailtrace_spans_accepted_total 20"));
  /* Nothing is decided yet (60 s grace): the file is empty until shutdown. */
  struct stat st;
  assert_int_equal(stat(d.out, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(stop(&d, SIGTERM), 0);
  assert_int_equal(read_sink(&d, "shutdown"), 20);
  assert_true(wait_log(&d, "\"spans_kept\":20") >= 0);
  cleanup(&d);
}

static void sighup_should_reload_policies(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  daemon_t d;
  start(&d, 0.0); /* keeps nothing */
  send_traces(&d, 5);
  write_config(&d, 1.0); /* keeps everything */
  kill(d.pid, SIGHUP);
  assert_true(wait_log(&d, "policies reloaded") >= 0);
  assert_int_equal(stop(&d, SIGTERM), 0);
  /* The held traces were decided at shutdown under the reloaded policies. */
  assert_int_equal(read_sink(&d, "shutdown"), 10);
  cleanup(&d);
}

static void json_sink_should_write_kept_traces_as_otlp_json_lines(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  daemon_t d;
  sink_format = "json";
  start(&d, 1.0);
  sink_format = "protobuf";
  const char *body =
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
      "\"value\":{\"stringValue\":\"web\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":"
      "\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\",\"name\":"
      "\"GET /\",\"status\":{\"code\":2}}]}]}]}";
  char resp[4096];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d.http_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   strlen(body), body);
  assert_int_equal(write(fd, req, (size_t)n), n);
  ssize_t got = read(fd, resp, sizeof resp - 1);
  assert_true(got > 12);
  resp[got] = '\0';
  close(fd);
  assert_non_null(strstr(resp, "HTTP/1.1 200"));
  assert_int_equal(stop(&d, SIGTERM), 0);
  FILE *f = fopen(d.out, "r");
  assert_non_null(f);
  char line[8192];
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  assert_non_null(strstr(line, "\"traceId\":\"0af7651916cd43dd8448eb211c80319c\""));
  assert_non_null(strstr(line, "\"traceState\":\"ot=th:0\""));
  assert_non_null(strstr(line, "{\"key\":\"SampleRate\",\"value\":{\"intValue\":\"1\"}}"));
  assert_non_null(strstr(line, "\"stringValue\":\"shutdown\""));
  cleanup(&d);
}

static void memory_budget_should_throttle_senders_with_retry_after(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  daemon_t d;
  memory_budget = "1MiB";
  start(&d, 1.0);
  memory_budget = "256MiB";
  /* Requests of 20 traces x 20 spans with 1 KiB attributes (~420 KiB) against a 1 MiB budget and
   * a 60 s grace: the budget fills within a few requests and the sender must be told to retry. */
  static char big[1024];
  memset(big, 'x', sizeof big - 1);
  static span_spec_t sp[400];
  static char resp[4096];
  int accepted = 0, throttled = 0;
  for (int r = 0; r < 12 && throttled == 0; r++) {
    for (int i = 0; i < 400; i++) {
      sp[i] =
          fx_span(9000 + (uint64_t)r * 20 + (uint64_t)i / 20, (uint64_t)i % 20 + 1, i % 20 ? 1 : 0);
      sp[i].attr_key = "payload";
      sp[i].attr_str = big;
    }
    size_t len;
    uint8_t *req = fx_request(sp, 400, &len);
    int st = http(d.http_port, "POST", "/v1/traces", req, len, resp, sizeof resp);
    free(req);
    if (st == 200) {
      accepted++;
    } else {
      assert_int_equal(st, 429);
      assert_non_null(strstr(resp, "Retry-After: 2"));
      throttled++;
    }
  }
  assert_true(accepted >= 1);
  assert_int_equal(throttled, 1);
  assert_int_equal(stop(&d, SIGTERM), 0);
  /* Every accepted span was decided and written; none of the refused request's. Some traces were
   * decided early under pressure, the rest at shutdown. */
  FILE *f = fopen(d.err, "r");
  char line[1024];
  bool found = false;
  char want[64];
  snprintf(want, sizeof want, "\"spans_accepted\":%d,\"spans_kept\":%d", accepted * 400,
           accepted * 400);
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    found |= strstr(line, want) != NULL;
  if (f != NULL)
    fclose(f);
  assert_true(found);
  cleanup(&d);
}

static void shutdown_should_exit_at_its_deadline_when_a_sink_is_stuck(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  daemon_t d;
  out_is_fifo = true;
  shutdown_deadline = "1s";
  start(&d, 1.0);
  out_is_fifo = false;
  shutdown_deadline = "20s";
  /* More kept bytes than a pipe holds (64 KiB): the flush at shutdown blocks in write(). */
  static char big[1024];
  memset(big, 'y', sizeof big - 1);
  static span_spec_t sp[200];
  for (int i = 0; i < 200; i++) {
    sp[i] = fx_span(7000 + (uint64_t)i / 10, (uint64_t)i % 10 + 1, i % 10 ? 1 : 0);
    sp[i].attr_key = "payload";
    sp[i].attr_str = big;
  }
  size_t len;
  uint8_t *req = fx_request(sp, 200, &len);
  static char resp[4096];
  assert_int_equal(http(d.http_port, "POST", "/v1/traces", req, len, resp, sizeof resp), 200);
  free(req);
  assert_int_equal(stop(&d, SIGTERM), 3);
  assert_true(wait_log(&d, "shutdown deadline passed") >= 0);
  cleanup(&d);
}

static void bad_config_should_never_start_the_daemon(void **state) {
  (void)state;
  const char *bin = getenv("TT_COLLECTOR_BIN");
  if (bin == NULL)
    skip();
  char dir[] = "/tmp/tt-bad-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cfg[128], cmd[512];
  snprintf(cfg, sizeof cfg, "%s/c.yaml", dir);
  write_file(cfg, "receivers:\n  otlp_http: {endpoint: \"127.0.0.1:0\"}\nworkers: lots\n");
  snprintf(cmd, sizeof cmd, "%s --config %s 2>/dev/null", bin, cfg);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sigterm_should_decide_held_traces_flush_and_exit_cleanly),
      cmocka_unit_test(sighup_should_reload_policies),
      cmocka_unit_test(json_sink_should_write_kept_traces_as_otlp_json_lines),
      cmocka_unit_test(memory_budget_should_throttle_senders_with_retry_after),
      cmocka_unit_test(shutdown_should_exit_at_its_deadline_when_a_sink_is_stuck),
      cmocka_unit_test(bad_config_should_never_start_the_daemon),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
