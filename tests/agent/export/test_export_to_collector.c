/* libtailtrace to tailtrace-collector: spans made through the public API leave through the OTLP
 * exporter (gRPC, then HTTP/protobuf) and reach this project's collector binary, which keeps the
 * errored trace, drops the other, and writes the kept spans with their SampleRate to its file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exporter_otlp.h"
#include "internal.h"
#include "peers/otlp_peer.h"

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = calloc(1, (size_t)n + 1);
  if (b != NULL && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  return b;
}

typedef struct {
  pid_t pid;
  int grpc, http;
  char dir[64], sink[128];
} collector_t;

/* Starts the collector binary: keep traces with an error, drop the rest, decide 100 ms after the
 * root span, write kept spans as OTLP/JSON lines. */
static void collector_start(collector_t *c) {
  const char *bin = getenv("TT_COLLECTOR_BIN");
  if (bin == NULL)
    fail_msg("TT_COLLECTOR_BIN is not set (run through ctest)");
  snprintf(c->dir, sizeof c->dir, "/tmp/tt-a2c-XXXXXX");
  assert_non_null(mkdtemp(c->dir));
  snprintf(c->sink, sizeof c->sink, "%s/kept.jsonl", c->dir);
  c->grpc = closed_port();
  c->http = closed_port();
  char cfg[128];
  snprintf(cfg, sizeof cfg, "%s/collector.yaml", c->dir);
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  fprintf(f,
          "receivers:\n  otlp_grpc: {endpoint: \"127.0.0.1:%d\"}\n"
          "  otlp_http: {endpoint: \"127.0.0.1:%d\"}\n"
          "admin: {enabled: false}\nworkers: 1\n"
          "decision: {root_grace: 100ms, idle_timeout: 2s, tick: 10ms}\n"
          "sink: {type: file, file: {path: \"%s\"}}\nlog: {level: warn}\n"
          "policies:\n  - {name: errors, type: errors}\n",
          c->grpc, c->http, c->sink);
  fclose(f);
  c->pid = fork();
  assert_true(c->pid >= 0);
  if (c->pid == 0) {
    execl(bin, bin, "--config", cfg, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200 && !(port_open(c->grpc) && port_open(c->http)); i++)
    usleep(25000);
  assert_true(port_open(c->grpc) && port_open(c->http));
}

static int collector_stop(collector_t *c) {
  kill(c->pid, SIGTERM);
  int st = 0;
  waitpid(c->pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void export_to_collector(int proto) {
  collector_t c;
  collector_start(&c);
  char ep[128];
  if (proto == TT_OTLP_PROTOCOL_GRPC)
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", c.grpc);
  else
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", c.http);
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = proto;
  o.endpoint = ep;
  o.timeout_ms = 10000;
  tt_exporter_t x;
  assert_int_equal(tt_otlp_exporter_new(&o, &x), 0);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "agent-to-collector";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  to.exporter = &x;
  to.schedule_delay_ms = 20;
  assert_int_equal(tt_init(&to), 0);

  /* Trace 1: a server span whose child fails. Trace 2: all fine. */
  tt_span_options_t so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.kind = TT_SPAN_KIND_SERVER;
  tt_span_t *root = tt_span_start(NULL, "GET /pay", &so);
  tt_span_t *prev = tt_make_current(root);
  tt_span_t *child = tt_span_start(NULL, "charge-card", NULL);
  tt_span_record_exception(child, "CardDeclined", "insufficient funds", NULL);
  tt_span_context_t c1, c1child;
  tt_span_get_context(root, &c1);
  tt_span_get_context(child, &c1child);
  tt_span_end(child);
  tt_restore_current(prev);
  tt_span_end(root);
  tt_span_t *ok = tt_span_start(NULL, "GET /health", &so);
  tt_span_context_t c2;
  tt_span_get_context(ok, &c2);
  tt_span_end(ok);
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 10000000000ULL), 0);

  char tid1[33], sid1[17], sid1c[17], tid2[33];
  tt_trace_id_hex(&c1, tid1);
  tt_span_id_hex(&c1, sid1);
  tt_span_id_hex(&c1child, sid1c);
  tt_trace_id_hex(&c2, tid2);
  char want_root[64], want_child[64];
  snprintf(want_root, sizeof want_root, "\"spanId\":\"%s\"", sid1);
  snprintf(want_child, sizeof want_child, "\"spanId\":\"%s\"", sid1c);
  /* The collector decides 100 ms after the root arrives; give it up to 10 s on a busy machine. */
  char *kept = NULL;
  for (int i = 0; i < 400; i++) {
    free(kept);
    kept = read_file(c.sink);
    if (kept != NULL && strstr(kept, want_root) && strstr(kept, want_child))
      break;
    usleep(25000);
  }
  assert_int_equal(collector_stop(&c), 0);
  free(kept);
  kept = read_file(c.sink);
  assert_non_null(kept);
  if (strstr(kept, want_root) == NULL || strstr(kept, want_child) == NULL)
    fail_msg("errored trace %s not kept complete; file:\n%s", tid1, kept);
  assert_non_null(strstr(kept, tid1));
  assert_non_null(strstr(kept, "\"key\":\"SampleRate\""));
  assert_non_null(strstr(kept, "agent-to-collector"));
  assert_non_null(strstr(kept, "exception.message"));
  if (strstr(kept, tid2) != NULL)
    fail_msg("trace %s had no error and should have been dropped", tid2);
  free(kept);
  unlink(c.sink);
  char cfg[128];
  snprintf(cfg, sizeof cfg, "%s/collector.yaml", c.dir);
  unlink(cfg);
  rmdir(c.dir);
}

static void spans_should_reach_the_collector_over_grpc(void **state) {
  (void)state;
  export_to_collector(TT_OTLP_PROTOCOL_GRPC);
}

static void spans_should_reach_the_collector_over_http_protobuf(void **state) {
  (void)state;
  export_to_collector(TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spans_should_reach_the_collector_over_grpc),
      cmocka_unit_test(spans_should_reach_the_collector_over_http_protobuf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
