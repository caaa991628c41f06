/* Decision bus on Redis: real redis-server processes on loopback (started here, on ephemeral
 * ports), publish/lookup across bus instances, first keeper wins, TTL, sharding, AUTH, a node
 * going down and coming back, a full queue, TLS (trusted, untrusted, mutual, with a password)
 * and the value codec. A missing redis-server, or an openssl command that cannot make the test
 * certificates, fails the run: the bus is only tested against the real thing. Answers arrive on
 * the bus thread, so every wait is a condition variable with a generous deadline; nothing
 * asserts on time. The test's own commands go through the bus's RESP and connection code
 * (resp.h, bus_conn.h), which the bus tests exercise anyway. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus.h"
#include "bus_conn.h"
#include "resp.h"

extern char **environ;

#define DEADLINE_S 10
#define MAX_ANSWERS 4096

typedef struct {
  pid_t pid;
  int port;
  char password[32];
  bool tls;              /* --port 0 --tls-port port, with the test CA's server certificate */
  bool tls_auth_clients; /* --tls-auth-clients yes: a client certificate is required */
} redis_t;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  tt_bus_answer_t got[MAX_ANSWERS];
  size_t n;
} answers_t;

typedef struct {
  redis_t redis[2];
  tt_bus_t *bus[2];
  answers_t ans;
  uint64_t rng;
} fixture_t;

/* ---- redis-server processes ------------------------------------------------------------- */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- Test certificates ------------------------------------------------------------------ */

/* Made once per run with the openssl command line in a fresh directory: a CA, a server
 * certificate it signed for 127.0.0.1 and localhost, a client certificate it signed, and another
 * CA that signed nothing here (the untrusted one). */
static char tls_dir[64];

static const char *tls_path(const char *name) {
  static char paths[8][160];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, sizeof paths[0], "%s/%s", tls_dir, name);
  return p;
}

static void run_openssl(const char *const *argv) {
  char log[160];
  snprintf(log, sizeof log, "%s/openssl.log", tls_dir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawnp(&pid, "openssl", &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    fail_msg("cannot run openssl (%s): it is required to make the test certificates", strerror(rc));
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("openssl %s %s failed (status %d): see %s", argv[1], argv[2], st, log);
}

static void write_text(const char *name, const char *text) {
  FILE *fp = fopen(tls_path(name), "w");
  assert_non_null(fp);
  assert_true(fputs(text, fp) >= 0);
  assert_int_equal(fclose(fp), 0);
}

static void new_ca(const char *key, const char *pem, const char *cn) {
  char subj[64];
  snprintf(subj, sizeof subj, "/CN=%s", cn);
  const char *argv[] = {"openssl",
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-keyout",
                        tls_path(key),
                        "-out",
                        tls_path(pem),
                        "-days",
                        "2",
                        "-subj",
                        subj,
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                        NULL};
  run_openssl(argv);
}

static void new_leaf(const char *name, const char *ext) {
  char key[64], csr[64], pem[64], extf[64], subj[64];
  snprintf(key, sizeof key, "%s.key", name);
  snprintf(csr, sizeof csr, "%s.csr", name);
  snprintf(pem, sizeof pem, "%s.pem", name);
  snprintf(extf, sizeof extf, "%s.ext", name);
  snprintf(subj, sizeof subj, "/CN=tailtrace test %s", name);
  write_text(extf, ext);
  const char *req[] = {"openssl",
                       "req",
                       "-new",
                       "-newkey",
                       "ec",
                       "-pkeyopt",
                       "ec_paramgen_curve:prime256v1",
                       "-nodes",
                       "-keyout",
                       tls_path(key),
                       "-out",
                       tls_path(csr),
                       "-subj",
                       subj,
                       NULL};
  run_openssl(req);
  char ca[160], cakey[160], csrp[160], pemp[160], extp[160];
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  snprintf(cakey, sizeof cakey, "%s", tls_path("ca.key"));
  snprintf(csrp, sizeof csrp, "%s", tls_path(csr));
  snprintf(pemp, sizeof pemp, "%s", tls_path(pem));
  snprintf(extp, sizeof extp, "%s", tls_path(extf));
  const char *sign[] = {
      "openssl",         "x509", "-req", "-in",   csrp, "-CA",      ca,   "-CAkey", cakey,
      "-CAcreateserial", "-out", pemp,   "-days", "2",  "-extfile", extp, NULL};
  run_openssl(sign);
}

/* Makes the certificates on first use; any failure fails the calling test (never a skip). */
static void tls_files(void) {
  if (tls_dir[0] != '\0')
    return;
  char tmpl[] = "/tmp/tt-bus-tls-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  snprintf(tls_dir, sizeof tls_dir, "%s", tmpl);
  new_ca("ca.key", "ca.pem", "tailtrace test CA");
  new_ca("other-ca.key", "other-ca.pem", "tailtrace untrusted CA");
  new_leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                     "extendedKeyUsage=serverAuth\n");
  new_leaf("client", "extendedKeyUsage=clientAuth\n");
}

static void tls_files_remove(void) {
  if (tls_dir[0] == '\0')
    return;
  static const char *const names[] = {"ca.key",       "ca.pem",     "ca.srl",     "other-ca.key",
                                      "other-ca.pem", "server.key", "server.csr", "server.pem",
                                      "server.ext",   "client.key", "client.csr", "client.pem",
                                      "client.ext",   "openssl.log"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    unlink(tls_path(names[i]));
  rmdir(tls_dir);
}

/* ---- The test's own Redis client -------------------------------------------------------- */

/* Sends one command (after AUTH when the server has a password; over TLS with the test CA and
 * client certificate when it speaks TLS) on a fresh connection and leaves its reply in p. 0, or
 * -1 when the server could not be reached or refused AUTH. */
static int redis_call(const redis_t *r, tt_resp_parser_t *p, size_t argc, const char *const *argv) {
  tt_bus_tls_t *tls = NULL;
  if (r->tls) {
    tt_bus_tls_opts_t to = {tls_path("ca.pem"), tls_path("client.pem"), tls_path("client.key"),
                            NULL, false};
    char err[256];
    if (tt__bus_tls_new(&to, &tls, err, sizeof err) != 0)
      fail_msg("test TLS client: %s", err);
  }
  uint64_t deadline = tt__bus_now_ns() + 2000000000ull;
  tt_bus_conn_t *c = NULL;
  char err[256];
  int rc = tt__bus_conn_open("127.0.0.1", r->port, tls, deadline, &c, err, sizeof err);
  tt_buf_t w = TT_BUF_INIT;
  size_t replies = 1;
  if (rc == 0 && r->password[0] != '\0') {
    const char *auth[] = {"AUTH", r->password};
    size_t lens[] = {4, strlen(r->password)};
    assert_true(tt__resp_encode(&w, 2, auth, lens) > 0);
    replies = 2;
  }
  size_t lens[8];
  assert_true(argc <= 8);
  for (size_t i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  assert_true(tt__resp_encode(&w, argc, argv, lens) > 0);
  if (rc == 0)
    rc = tt__bus_conn_write(c, w.data, w.len, deadline);
  uint8_t buf[4096];
  size_t off = 0, len = 0;
  for (size_t k = 0; k < replies && rc == 0; k++) {
    tt__resp_parser_reset(p);
    int done = 0;
    while (done == 0) {
      if (off == len) {
        long got = tt__bus_conn_read(c, buf, sizeof buf, deadline);
        if (got < 0) {
          rc = -1;
          break;
        }
        off = 0;
        len = (size_t)got;
      }
      size_t used = 0;
      done = tt__resp_feed(p, buf + off, len - off, &used);
      off += used;
      assert_true(done >= 0);
    }
    if (rc == 0 && k + 1 < replies && p->nodes[0].type != TT_RESP_STATUS)
      rc = -1; /* AUTH refused */
  }
  tt__buf_free(&w);
  tt__bus_conn_close(c);
  tt__bus_tls_free(tls);
  return rc == 0 ? 0 : -1;
}

/* Starts redis-server on r->port (chosen here when 0) and returns once it answers PING. */
static void redis_start(redis_t *r) {
  if (r->port == 0)
    r->port = free_port();
  char port[16];
  snprintf(port, sizeof port, "%d", r->port);
  const char *argv[32] = {"redis-server", "--port",      port, "--bind",
                          "127.0.0.1",    "--save",      "",   "--appendonly",
                          "no",           "--daemonize", "no"};
  int argc = 11;
  if (r->password[0] != '\0') {
    argv[argc++] = "--requirepass";
    argv[argc++] = r->password;
  }
  char cert[160], key[160], ca[160];
  if (r->tls) {
    tls_files();
    snprintf(cert, sizeof cert, "%s", tls_path("server.pem"));
    snprintf(key, sizeof key, "%s", tls_path("server.key"));
    snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
    argv[2] = "0"; /* no plain TCP port */
    argv[argc++] = "--tls-port";
    argv[argc++] = port;
    argv[argc++] = "--tls-cert-file";
    argv[argc++] = cert;
    argv[argc++] = "--tls-key-file";
    argv[argc++] = key;
    argv[argc++] = "--tls-ca-cert-file";
    argv[argc++] = ca;
    argv[argc++] = "--tls-auth-clients";
    argv[argc++] = r->tls_auth_clients ? "yes" : "no";
  }
  argv[argc] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&r->pid, "redis-server", &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r->pid = 0;
    fail_msg("cannot start redis-server (%s): it is required by this test", strerror(rc));
  }
  uint64_t deadline = mono_ms() + DEADLINE_S * 1000;
  while (mono_ms() < deadline) {
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
      r->pid = 0;
      fail_msg("redis-server on port %d exited at start (status %d)", r->port, st);
    }
    tt_resp_parser_t p;
    tt__resp_parser_init(&p, NULL);
    const char *ping[] = {"PING"};
    bool ok = redis_call(r, &p, 1, ping) == 0 && p.nodes[0].type == TT_RESP_STATUS &&
              strcmp(tt__resp_str(&p, 0), "PONG") == 0;
    tt__resp_parser_free(&p);
    if (ok)
      return;
    sleep_ms(20);
  }
  fail_msg("redis-server on port %d did not answer PING", r->port);
}

static void redis_kill(redis_t *r) {
  if (r->pid <= 0)
    return;
  kill(r->pid, SIGKILL);
  waitpid(r->pid, NULL, 0);
  r->pid = 0;
}

/* cmd, with arg when not NULL, answered by an integer. */
static long long redis_int(const redis_t *r, const char *cmd, const char *arg) {
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  const char *argv[] = {cmd, arg};
  assert_int_equal(redis_call(r, &p, arg != NULL ? 2 : 1, argv), 0);
  assert_int_equal(p.nodes[0].type, TT_RESP_INTEGER);
  long long v = p.nodes[0].integer;
  tt__resp_parser_free(&p);
  return v;
}

/* ---- Bus helpers ------------------------------------------------------------------------ */

static void on_answer(void *ctx, const tt_bus_answer_t *a, size_t n) {
  answers_t *w = ctx;
  pthread_mutex_lock(&w->mu);
  for (size_t i = 0; i < n && w->n < MAX_ANSWERS; i++)
    w->got[w->n++] = a[i];
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void reset_answers(fixture_t *f) {
  pthread_mutex_lock(&f->ans.mu);
  f->ans.n = 0;
  pthread_mutex_unlock(&f->ans.mu);
}

/* True when at least n answers arrived before the deadline. */
static bool wait_answers(fixture_t *f, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += DEADLINE_S;
  pthread_mutex_lock(&f->ans.mu);
  int rc = 0;
  while (f->ans.n < n && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&f->ans.cv, &f->ans.mu, &ts);
  bool ok = f->ans.n >= n;
  pthread_mutex_unlock(&f->ans.mu);
  return ok;
}

static tt_bus_answer_t answer_for(fixture_t *f, uint64_t cookie) {
  tt_bus_answer_t a;
  memset(&a, 0, sizeof a);
  a.status = 1;
  pthread_mutex_lock(&f->ans.mu);
  for (size_t i = 0; i < f->ans.n; i++)
    if (f->ans.got[i].cookie == cookie)
      a = f->ans.got[i];
  pthread_mutex_unlock(&f->ans.mu);
  return a;
}

static void random_id(fixture_t *f, uint8_t id[16]) {
  for (int i = 0; i < 16; i++) {
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    id[i] = (uint8_t)f->rng;
  }
}

static void endpoint(const redis_t *r, char *out, size_t cap) {
  snprintf(out, cap, "127.0.0.1:%d", r->port);
}

static tt_bus_redis_opts_t opts_for(fixture_t *f, const char *const *eps, size_t n) {
  tt_bus_redis_opts_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = n;
  o.timeout_ms = 1000; /* generous: sanitizer builds on a loaded machine */
  o.backoff_min_ms = 20;
  o.backoff_max_ms = 200;
  o.answer = on_answer;
  o.answer_ctx = &f->ans;
  return o;
}

static tt_bus_t *new_bus(fixture_t *f, int slot, const tt_bus_redis_opts_t *o) {
  assert_int_equal(tt__bus_redis_new(o, &f->bus[slot]), 0);
  assert_non_null(f->bus[slot]);
  return f->bus[slot];
}

static void free_bus(fixture_t *f, int slot) {
  tt__bus_free(f->bus[slot]);
  f->bus[slot] = NULL;
}

static tt_bus_stats_t stats_of(tt_bus_t *b) {
  tt_bus_stats_t s;
  tt__bus_stats(b, &s);
  return s;
}

/* Publishes are acknowledged asynchronously; the stats say when the store has them. */
static void wait_published(tt_bus_t *b, uint64_t n) {
  uint64_t deadline = mono_ms() + DEADLINE_S * 1000;
  while (stats_of(b).published < n && mono_ms() < deadline)
    sleep_ms(5);
  assert_true(stats_of(b).published >= n);
}

static void wait_nodes_up(tt_bus_t *b, unsigned n) {
  uint64_t deadline = mono_ms() + DEADLINE_S * 1000;
  while (stats_of(b).nodes_up < n && mono_ms() < deadline)
    sleep_ms(5);
  assert_int_equal(stats_of(b).nodes_up, n);
}

static tt_bus_keep_t keep_of(const uint8_t id[16], uint64_t threshold, const char *reason) {
  tt_bus_keep_t k;
  memset(&k, 0, sizeof k);
  memcpy(k.trace_id, id, 16);
  k.threshold = threshold;
  snprintf(k.reason, sizeof k.reason, "%s", reason);
  return k;
}

/* Looks one id up and returns its answer (status 1 when none came before the deadline). */
static tt_bus_answer_t lookup_one(fixture_t *f, tt_bus_t *b, const uint8_t id[16],
                                  uint64_t cookie) {
  reset_answers(f);
  assert_int_equal(tt__bus_lookup(b, 7, id, cookie), 0);
  assert_true(wait_answers(f, 1));
  return answer_for(f, cookie);
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->ans.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&f->ans.cv, &ca);
  pthread_condattr_destroy(&ca);
  f->rng = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  free_bus(f, 0);
  free_bus(f, 1);
  redis_kill(&f->redis[0]);
  redis_kill(&f->redis[1]);
  pthread_cond_destroy(&f->ans.cv);
  pthread_mutex_destroy(&f->ans.mu);
  free(f);
  return 0;
}

/* ---- Bus behaviour ---------------------------------------------------------------------- */

static void a_published_keep_should_be_found_by_another_bus_instance(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *a = new_bus(f, 0, &o), *b = new_bus(f, 1, &o);

  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t k = keep_of(id, UINT64_C(0x12345678abcdef), "error span: db.query");
  assert_int_equal(tt__bus_publish(a, &k), 0);
  wait_published(a, 1);

  tt_bus_answer_t got = lookup_one(f, b, id, 42);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  assert_int_equal(got.owner, 7);
  assert_memory_equal(got.trace_id, id, 16);
  assert_memory_equal(got.keep.trace_id, id, 16);
  assert_int_equal(got.keep.threshold, UINT64_C(0x12345678abcdef));
  assert_string_equal(got.keep.reason, "error span: db.query");

  tt_bus_stats_t sa = stats_of(a), sb = stats_of(b);
  assert_int_equal(sa.nodes, 1);
  assert_int_equal(sa.nodes_up, 1);
  assert_int_equal(sa.published, 1);
  assert_int_equal(sa.publish_existing, 0);
  assert_true(sa.commands >= 1 && sa.keys >= 1 && sa.bytes_sent > 0 && sa.bytes_received > 0);
  assert_int_equal(sb.lookups, 1);
  assert_int_equal(sb.lookups_found, 1);
  assert_int_equal(sb.lookups_failed, 0);
  assert_int_equal(sb.errors, 0);
  assert_true(sb.rtt_count >= 1 && sb.batches >= 1);
  uint64_t sum = 0;
  for (int i = 0; i < TT_BUS_RTT_BUCKETS; i++)
    sum += sb.rtt_us_buckets[i];
  assert_int_equal(sum, sb.rtt_count);
}

static void a_lookup_of_an_unknown_trace_should_answer_not_found(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  tt_bus_answer_t got = lookup_one(f, b, id, 5);
  assert_int_equal(got.status, 0);
  assert_false(got.found);
  assert_int_equal(got.cookie, 5);
}

static void the_first_keeper_should_win_when_two_publish_the_same_trace(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *a = new_bus(f, 0, &o), *b = new_bus(f, 1, &o);
  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t first = keep_of(id, 0x10, "first"), second = keep_of(id, 0x20, "second");
  assert_int_equal(tt__bus_publish(a, &first), 0);
  wait_published(a, 1);
  assert_int_equal(tt__bus_publish(b, &second), 0);
  wait_published(b, 1);
  assert_int_equal(stats_of(b).publish_existing, 1);

  tt_bus_answer_t got = lookup_one(f, b, id, 1);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  assert_string_equal(got.keep.reason, "first");
  assert_int_equal(got.keep.threshold, 0x10);
}

static void keys_should_expire_after_the_configured_ttl(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.key_ttl_s = 123;
  o.key_prefix = "test:bus:";
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t k = keep_of(id, 0xabc, "slow span");
  assert_int_equal(tt__bus_publish(b, &k), 0);
  wait_published(b, 1);

  char key[64];
  int n = snprintf(key, sizeof key, "test:bus:");
  for (int i = 0; i < 16; i++)
    n += snprintf(key + n, sizeof key - (size_t)n, "%02x", id[i]);
  long long ttl = redis_int(&f->redis[0], "TTL", key);
  assert_true(ttl > 0 && ttl <= 123);

  /* The stored value is the documented text format, readable by any Redis client. */
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  const char *get[] = {"GET", key};
  assert_int_equal(redis_call(&f->redis[0], &p, 2, get), 0);
  assert_int_equal(p.nodes[0].type, TT_RESP_BULK);
  assert_string_equal(tt__resp_str(&p, 0), "1;abc;slow span");
  tt__resp_parser_free(&p);
}

static void
lookups_should_fail_fast_when_redis_is_down_and_succeed_after_it_restarts(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  assert_int_equal(lookup_one(f, b, id, 1).status, 0);

  redis_kill(&f->redis[0]);
  /* The first lookup meets the dead connection, the next ones a node known to be down. */
  for (uint64_t cookie = 2; cookie < 5; cookie++) {
    tt_bus_answer_t got = lookup_one(f, b, id, cookie);
    assert_true(got.status < 0);
    assert_false(got.found);
  }
  tt_bus_stats_t s = stats_of(b);
  assert_true(s.errors >= 1);

  redis_start(&f->redis[0]); /* same port */
  tt_bus_keep_t k = keep_of(id, 0x5, "after restart");
  bool found = false;
  uint64_t deadline = mono_ms() + DEADLINE_S * 1000;
  for (uint64_t cookie = 100; !found && mono_ms() < deadline; cookie++) {
    int rc = tt__bus_publish(b, &k);
    assert_true(rc == 0 || rc == -EAGAIN);
    tt_bus_answer_t got = lookup_one(f, b, id, cookie);
    found = got.status == 0 && got.found && strcmp(got.keep.reason, "after restart") == 0;
    if (!found)
      sleep_ms(20);
  }
  assert_true(found);
  deadline = mono_ms() + DEADLINE_S * 1000;
  while (stats_of(b).reconnects < 1 && mono_ms() < deadline)
    sleep_ms(5);
  s = stats_of(b);
  assert_true(s.reconnects >= 1);
  assert_true(s.lookups_failed >= 3);
  assert_int_equal(s.nodes_up, 1);
}

/* Retries a lookup until the bus answers it with status 0 (a node settling after a restart or
 * a pause); true when it did before the deadline. */
static bool lookup_until_answered(fixture_t *f, tt_bus_t *b, const uint8_t id[16]) {
  uint64_t deadline = mono_ms() + DEADLINE_S * 1000;
  for (uint64_t cookie = 1000; mono_ms() < deadline; cookie++) {
    if (lookup_one(f, b, id, cookie).status == 0)
      return true;
    sleep_ms(20);
  }
  return false;
}

static void lookups_should_time_out_when_a_node_stops_answering(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.timeout_ms = 300;
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  assert_true(lookup_until_answered(f, b, id));

  /* A stopped server keeps its socket open and says nothing: only the bus's deadline ends the
   * wait. */
  assert_int_equal(kill(f->redis[0].pid, SIGSTOP), 0);
  tt_bus_answer_t got = lookup_one(f, b, id, 2);
  assert_int_equal(kill(f->redis[0].pid, SIGCONT), 0);
  assert_int_equal(got.status, -ETIMEDOUT);
  assert_true(lookup_until_answered(f, b, id));
}

static void trace_ids_should_spread_over_several_nodes(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  redis_start(&f->redis[1]);
  char ep0[64], ep1[64];
  endpoint(&f->redis[0], ep0, sizeof ep0);
  endpoint(&f->redis[1], ep1, sizeof ep1);
  const char *eps[] = {ep0, ep1};
  tt_bus_redis_opts_t o = opts_for(f, eps, 2);
  tt_bus_t *a = new_bus(f, 0, &o), *b = new_bus(f, 1, &o);

  enum { N = 64 };
  uint8_t ids[N][16];
  size_t on_node[2] = {0, 0};
  for (int i = 0; i < N; i++) {
    random_id(f, ids[i]);
    on_node[tt__bus_node_of(ids[i], 2)]++;
    char reason[32];
    snprintf(reason, sizeof reason, "rule %d", i);
    tt_bus_keep_t k = keep_of(ids[i], (uint64_t)i, reason);
    assert_int_equal(tt__bus_publish(a, &k), 0);
  }
  wait_published(a, N);
  assert_true(on_node[0] > 0 && on_node[1] > 0);
  assert_int_equal(redis_int(&f->redis[0], "DBSIZE", NULL), (long long)on_node[0]);
  assert_int_equal(redis_int(&f->redis[1], "DBSIZE", NULL), (long long)on_node[1]);

  reset_answers(f);
  for (int i = 0; i < N; i++)
    assert_int_equal(tt__bus_lookup(b, 0, ids[i], (uint64_t)i), 0);
  assert_true(wait_answers(f, N));
  for (int i = 0; i < N; i++) {
    tt_bus_answer_t got = answer_for(f, (uint64_t)i);
    assert_int_equal(got.status, 0);
    assert_true(got.found);
    assert_memory_equal(got.trace_id, ids[i], 16);
    assert_int_equal(got.keep.threshold, (uint64_t)i);
    char reason[32];
    snprintf(reason, sizeof reason, "rule %d", i);
    assert_string_equal(got.keep.reason, reason);
  }
}

static void lookups_should_be_answered_across_several_mget_chunks(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.flush_interval_ms = 50; /* a wide window so most lookups share one batch */
  tt_bus_t *a = new_bus(f, 0, &o), *b = new_bus(f, 1, &o);
  enum { N = 1300 }; /* three MGETs of at most 512 keys */
  static uint8_t ids[N][16];
  for (int i = 0; i < N; i++) {
    random_id(f, ids[i]);
    if (i % 2 == 0) {
      tt_bus_keep_t k = keep_of(ids[i], (uint64_t)i, "even");
      assert_int_equal(tt__bus_publish(a, &k), 0);
    }
  }
  wait_published(a, N / 2);
  reset_answers(f);
  for (int i = 0; i < N; i++)
    assert_int_equal(tt__bus_lookup(b, 3, ids[i], (uint64_t)i), 0);
  assert_true(wait_answers(f, N));
  for (int i = 0; i < N; i++) {
    tt_bus_answer_t got = answer_for(f, (uint64_t)i);
    assert_int_equal(got.status, 0);
    assert_int_equal(got.found, i % 2 == 0);
    if (got.found)
      assert_int_equal(got.keep.threshold, (uint64_t)i);
  }
  tt_bus_stats_t s = stats_of(b);
  assert_true(s.commands >= 3);
  assert_int_equal(s.keys, N);
}

static void a_stored_value_of_another_version_should_fail_that_lookup_only(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  const char *set[] = {"SET", "tt:k:deadbeef0102030405060708090a0b0c", "2;new;format"};
  assert_int_equal(redis_call(&f->redis[0], &p, 3, set), 0);
  assert_int_equal(p.nodes[0].type, TT_RESP_STATUS);
  tt__resp_parser_free(&p);

  tt_bus_answer_t got = lookup_one(f, b, id, 1);
  assert_int_equal(got.status, -EPROTO);
  assert_false(got.found);
  /* The node stays up: the next lookup is answered by it. */
  uint8_t other[16];
  random_id(f, other);
  got = lookup_one(f, b, other, 2);
  assert_int_equal(got.status, 0);
  assert_int_equal(stats_of(b).reconnects, 0);
}

static void a_password_should_be_sent_when_configured(void **state) {
  fixture_t *f = *state;
  snprintf(f->redis[0].password, sizeof f->redis[0].password, "s3cret-pw");
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.password = "s3cret-pw";
  tt_bus_t *with = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t k = keep_of(id, 0x1, "authenticated");
  assert_int_equal(tt__bus_publish(with, &k), 0);
  wait_published(with, 1);
  tt_bus_answer_t got = lookup_one(f, with, id, 1);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  assert_int_equal(stats_of(with).errors, 0);

  o.password = NULL;
  tt_bus_t *without = new_bus(f, 1, &o);
  for (uint64_t cookie = 2; cookie < 4; cookie++) {
    got = lookup_one(f, without, id, cookie);
    assert_true(got.status < 0);
    assert_false(got.found);
  }
  free_bus(f, 1);

  o.password = "wrong";
  without = new_bus(f, 1, &o);
  got = lookup_one(f, without, id, 9);
  assert_true(got.status < 0);
}

static void a_full_queue_should_refuse_without_blocking(void **state) {
  fixture_t *f = *state;
  char ep[64];
  snprintf(ep, sizeof ep, "127.0.0.1:%d", free_port()); /* nothing listens there */
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.queue_limit = 8;
  o.flush_interval_ms = 60000; /* holds the queue: only free ends this window */
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  reset_answers(f);
  for (uint64_t i = 0; i < 8; i++)
    assert_int_equal(tt__bus_lookup(b, 1, id, i), 0);
  assert_int_equal(tt__bus_lookup(b, 1, id, 8), -EAGAIN);
  tt_bus_keep_t k = keep_of(id, 1, "x");
  assert_int_equal(tt__bus_publish(b, &k), -EAGAIN);
  tt_bus_stats_t s = stats_of(b);
  assert_int_equal(s.lookups_refused, 1);
  assert_int_equal(s.publish_dropped, 1);

  /* free answers what it could not send, so no caller waits for an answer that never comes. */
  free_bus(f, 0);
  pthread_mutex_lock(&f->ans.mu);
  assert_int_equal(f->ans.n, 8);
  for (size_t i = 0; i < 8; i++)
    assert_int_equal(f->ans.got[i].status, -ECANCELED);
  pthread_mutex_unlock(&f->ans.mu);
}

static void free_should_flush_queued_publishes_once(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.flush_interval_ms = 60000;
  tt_bus_t *b = new_bus(f, 0, &o);
  wait_nodes_up(b, 1);
  for (int i = 0; i < 3; i++) {
    uint8_t id[16];
    random_id(f, id);
    tt_bus_keep_t k = keep_of(id, 1, "kept at shutdown");
    assert_int_equal(tt__bus_publish(b, &k), 0);
  }
  free_bus(f, 0);
  assert_int_equal(redis_int(&f->redis[0], "DBSIZE", NULL), 3);
}

static void publish_should_refuse_a_keep_the_value_format_cannot_carry(void **state) {
  fixture_t *f = *state;
  char ep[64];
  snprintf(ep, sizeof ep, "127.0.0.1:%d", free_port());
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *b = new_bus(f, 0, &o);
  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t k = keep_of(id, 1, "a;b");
  assert_int_equal(tt__bus_publish(b, &k), -EINVAL);
  k = keep_of(id, 1, "ok");
  memset(k.reason, 'r', sizeof k.reason); /* no NUL within TT_BUS_REASON_MAX */
  assert_int_equal(tt__bus_publish(b, &k), -EINVAL);
  k = keep_of(id, TT_BUS_THRESHOLD_MAX + 1, "ok");
  assert_int_equal(tt__bus_publish(b, &k), -EINVAL);
  uint8_t zero[16] = {0};
  k = keep_of(zero, 1, "ok");
  assert_int_equal(tt__bus_publish(b, &k), -EINVAL);
  assert_int_equal(tt__bus_lookup(b, 0, zero, 0), -EINVAL);
}

static void bad_options_should_be_refused(void **state) {
  fixture_t *f = *state;
  const char *cases[] = {"127.0.0.1",   "127.0.0.1:",      ":6379",
                         "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:63x9",
                         "::1:6379",    "[::1]6379",       "127.0.0.1:123456"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *eps[] = {cases[i]};
    tt_bus_redis_opts_t o = opts_for(f, eps, 1);
    tt_bus_t *b = NULL;
    assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
    assert_null(b);
  }
  const char *good[] = {"127.0.0.1:6379"};
  tt_bus_redis_opts_t o = opts_for(f, good, 1);
  o.answer = NULL;
  tt_bus_t *b = NULL;
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  o = opts_for(f, good, 0);
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  tt__bus_free(NULL);
}

static void node_choice_should_be_stable_and_documented(void **state) {
  (void)state;
  /* Fixed values: a change here would split the bus between old and new collectors. */
  uint8_t id[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
  uint64_t z = UINT64_C(0x0807060504030201);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  z ^= z >> 31;
  assert_int_equal(tt__bus_node_of(id, 7), (unsigned)(z % 7));
  assert_int_equal(tt__bus_node_of(id, 1), 0);
  /* Only the first 8 bytes count. */
  uint8_t other[16];
  memcpy(other, id, 16);
  other[15] ^= 0xff;
  assert_int_equal(tt__bus_node_of(other, 1000), tt__bus_node_of(id, 1000));
}

static void byte_counters_should_be_exact_in_both_directions(void **state) {
  fixture_t *f = *state;
  redis_start(&f->redis[0]);
  char ep[64];
  endpoint(&f->redis[0], ep, sizeof ep);
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  tt_bus_t *b = new_bus(f, 0, &o);
  wait_nodes_up(b, 1);
  uint8_t id[16];
  random_id(f, id);
  assert_int_equal(lookup_one(f, b, id, 1).status, 0);
  tt_bus_stats_t s = stats_of(b);
  /* On connect "*1\r\n$4\r\nPING\r\n" answered "+PONG\r\n"; then
   * "*2\r\n$4\r\nMGET\r\n$37\r\n" + the 37-byte key + "\r\n", answered "*1\r\n$-1\r\n". */
  assert_int_equal(s.commands, 2);
  assert_int_equal(s.bytes_sent, (4 + 4 + 6) + (4 + 4 + 6 + 5 + 37 + 2));
  assert_int_equal(s.bytes_received, 7 + (4 + 5));
}

/* ---- TLS -------------------------------------------------------------------------------- */

/* Publishes a keep through pub and looks it up through look; the lookup's answer. */
static tt_bus_answer_t share_and_look_up(fixture_t *f, tt_bus_t *pub, tt_bus_t *look) {
  uint8_t id[16];
  random_id(f, id);
  tt_bus_keep_t k = keep_of(id, 0x77, "over tls");
  assert_int_equal(tt__bus_publish(pub, &k), 0);
  wait_published(pub, stats_of(pub).published + 1);
  return lookup_one(f, look, id, 77);
}

static tt_bus_redis_opts_t tls_opts_for(fixture_t *f, const char *const *eps, const char *ca) {
  tt_bus_redis_opts_t o = opts_for(f, eps, 1);
  o.tls = true;
  o.tls_ca_file = ca;
  return o;
}

static void a_tls_node_should_be_used_with_a_trusted_ca(void **state) {
  fixture_t *f = *state;
  f->redis[0].tls = true;
  redis_start(&f->redis[0]);
  char ep[64], ca[160];
  endpoint(&f->redis[0], ep, sizeof ep);
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, ca);
  tt_bus_t *a = new_bus(f, 0, &o);
  /* The second instance names the server by host name instead of its address. */
  o.tls_server_name = "localhost";
  tt_bus_t *b = new_bus(f, 1, &o);
  tt_bus_answer_t got = share_and_look_up(f, a, b);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  assert_string_equal(got.keep.reason, "over tls");
  assert_int_equal(got.keep.threshold, 0x77);
  tt_bus_stats_t sa = stats_of(a), sb = stats_of(b);
  assert_int_equal(sa.errors, 0);
  assert_int_equal(sb.errors, 0);
  assert_int_equal(sa.nodes_up, 1);
  /* Counted as RESP bytes, not TLS records: PING answered "+PONG\r\n", one SET "+OK\r\n". */
  assert_int_equal(sa.bytes_received, 7 + 5);
}

static void a_tls_node_with_an_untrusted_certificate_should_be_refused(void **state) {
  fixture_t *f = *state;
  f->redis[0].tls = true;
  redis_start(&f->redis[0]);
  char ep[64], other[160], ca[160];
  endpoint(&f->redis[0], ep, sizeof ep);
  snprintf(other, sizeof other, "%s", tls_path("other-ca.pem"));
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  const char *eps[] = {ep};
  uint8_t id[16];
  random_id(f, id);

  /* A CA that did not sign the server's certificate. */
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, other);
  tt_bus_t *b = new_bus(f, 0, &o);
  for (uint64_t cookie = 1; cookie < 4; cookie++) {
    tt_bus_answer_t got = lookup_one(f, b, id, cookie);
    assert_true(got.status < 0);
    assert_false(got.found);
  }
  tt_bus_stats_t s = stats_of(b);
  assert_true(s.errors >= 1);
  assert_int_equal(s.lookups_failed, 3);
  assert_int_equal(s.nodes_up, 0);
  free_bus(f, 0);

  /* The right CA, but a name the certificate does not carry. */
  o = tls_opts_for(f, eps, ca);
  o.tls_server_name = "redis.example.com";
  b = new_bus(f, 0, &o);
  tt_bus_answer_t got = lookup_one(f, b, id, 9);
  assert_true(got.status < 0);
  assert_true(stats_of(b).errors >= 1);
  free_bus(f, 0);

  /* Plain TCP to the TLS port is no connection either. */
  o = opts_for(f, eps, 1);
  b = new_bus(f, 0, &o);
  assert_true(lookup_one(f, b, id, 10).status < 0);
}

static void an_insecure_tls_bus_should_skip_verification(void **state) {
  fixture_t *f = *state;
  f->redis[0].tls = true;
  redis_start(&f->redis[0]);
  char ep[64], other[160];
  endpoint(&f->redis[0], ep, sizeof ep);
  snprintf(other, sizeof other, "%s", tls_path("other-ca.pem"));
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, other);
  o.tls_insecure = true;
  o.tls_server_name = "redis.example.com";
  tt_bus_t *b = new_bus(f, 0, &o);
  tt_bus_answer_t got = share_and_look_up(f, b, b);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
}

static void mutual_tls_should_send_the_client_certificate(void **state) {
  fixture_t *f = *state;
  f->redis[0].tls = true;
  f->redis[0].tls_auth_clients = true;
  redis_start(&f->redis[0]);
  char ep[64], ca[160], cert[160], key[160];
  endpoint(&f->redis[0], ep, sizeof ep);
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  snprintf(cert, sizeof cert, "%s", tls_path("client.pem"));
  snprintf(key, sizeof key, "%s", tls_path("client.key"));
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, ca);
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  tt_bus_t *with = new_bus(f, 0, &o);
  tt_bus_answer_t got = share_and_look_up(f, with, with);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  assert_int_equal(stats_of(with).errors, 0);

  /* Without a client certificate the server ends the connection (under TLS 1.3 after the
   * handshake, so the bus's PING on connect is what finds out): the node never counts as up. */
  o = tls_opts_for(f, eps, ca);
  tt_bus_t *without = new_bus(f, 1, &o);
  uint8_t id[16];
  random_id(f, id);
  for (uint64_t cookie = 1; cookie < 3; cookie++)
    assert_true(lookup_one(f, without, id, cookie).status < 0);
  assert_true(stats_of(without).errors >= 1);
  assert_int_equal(stats_of(without).nodes_up, 0);
}

static void password_over_tls(void **state) {
  fixture_t *f = *state;
  f->redis[0].tls = true;
  snprintf(f->redis[0].password, sizeof f->redis[0].password, "tls-pw-0123");
  redis_start(&f->redis[0]);
  char ep[64], ca[160];
  endpoint(&f->redis[0], ep, sizeof ep);
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  const char *eps[] = {ep};
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, ca);
  o.password = "tls-pw-0123";
  tt_bus_t *with = new_bus(f, 0, &o);
  tt_bus_answer_t got = share_and_look_up(f, with, with);
  assert_int_equal(got.status, 0);
  assert_true(got.found);
  tt_bus_stats_t s = stats_of(with);
  assert_int_equal(s.errors, 0);
  assert_true(s.commands >= 3); /* AUTH, SET, MGET */

  o.password = "wrong";
  tt_bus_t *wrong = new_bus(f, 1, &o);
  uint8_t id[16];
  random_id(f, id);
  for (uint64_t cookie = 1; cookie < 3; cookie++)
    assert_true(lookup_one(f, wrong, id, cookie).status < 0);
  assert_true(stats_of(wrong).errors >= 1);
}

static void tls_files_that_do_not_load_should_be_refused_at_start(void **state) {
  fixture_t *f = *state;
  tls_files();
  char ca[160], cert[160], key[160], server_key[160];
  snprintf(ca, sizeof ca, "%s", tls_path("ca.pem"));
  snprintf(cert, sizeof cert, "%s", tls_path("client.pem"));
  snprintf(key, sizeof key, "%s", tls_path("client.key"));
  snprintf(server_key, sizeof server_key, "%s", tls_path("server.key"));
  const char *eps[] = {"127.0.0.1:6379"};
  tt_bus_t *b = NULL;
  tt_bus_redis_opts_t o = tls_opts_for(f, eps, "/nonexistent/ca.pem");
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  o = tls_opts_for(f, eps, ca);
  o.tls_cert_file = cert; /* without its key */
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  o.tls_cert_file = NULL;
  o.tls_key_file = key; /* without its certificate */
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  o.tls_cert_file = cert;
  o.tls_key_file = server_key; /* another certificate's key */
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  o.tls_cert_file = ca; /* not a key at all */
  o.tls_key_file = ca;
  assert_int_equal(tt__bus_redis_new(&o, &b), -EINVAL);
  assert_null(b);
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  assert_int_equal(tt__bus_redis_new(&o, &b), 0);
  tt__bus_free(b);
}

/* ---- Value codec ------------------------------------------------------------------------ */

static void value_should_round_trip(void **state) {
  (void)state;
  const struct {
    uint64_t t;
    const char *reason;
    const char *want;
  } cases[] = {
      {0, "", "1;0;"},
      {1, "error", "1;1;error"},
      {UINT64_C(0xabcdef), "latency > 500ms", "1;abcdef;latency > 500ms"},
      {TT_BUS_THRESHOLD_MAX, "123456789012345678901234567890123456789",
       "1;ffffffffffffff;123456789012345678901234567890123456789"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tt_bus_keep_t k, d;
    memset(&k, 0, sizeof k);
    k.threshold = cases[i].t;
    snprintf(k.reason, sizeof k.reason, "%s", cases[i].reason);
    char v[TT_BUS_VALUE_MAX];
    int n = tt__bus_value_encode(&k, v, sizeof v);
    assert_int_equal(n, (int)strlen(cases[i].want));
    assert_string_equal(v, cases[i].want);
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(tt__bus_value_decode(v, (size_t)n, &d), 0);
    assert_int_equal(d.threshold, k.threshold);
    assert_string_equal(d.reason, k.reason);
    for (int j = 0; j < 16; j++)
      assert_int_equal(d.trace_id[j], 0xa5); /* untouched */
  }
  /* Leading zeros are accepted; the encoder never writes them. */
  tt_bus_keep_t d;
  assert_int_equal(tt__bus_value_decode("1;00000000000001;x", 18, &d), 0);
  assert_int_equal(d.threshold, 1);
}

static void value_encode_should_refuse_a_semicolon_or_unprintable_reason(void **state) {
  (void)state;
  tt_bus_keep_t k;
  memset(&k, 0, sizeof k);
  char v[TT_BUS_VALUE_MAX];
  snprintf(k.reason, sizeof k.reason, "a;b");
  assert_int_equal(tt__bus_value_encode(&k, v, sizeof v), -EINVAL);
  snprintf(k.reason, sizeof k.reason, "tab\there");
  assert_int_equal(tt__bus_value_encode(&k, v, sizeof v), -EINVAL);
  snprintf(k.reason, sizeof k.reason, "caf\xc3\xa9");
  assert_int_equal(tt__bus_value_encode(&k, v, sizeof v), -EINVAL);
  memset(k.reason, 'x', sizeof k.reason);
  assert_int_equal(tt__bus_value_encode(&k, v, sizeof v), -EINVAL);
  snprintf(k.reason, sizeof k.reason, "ok");
  k.threshold = TT_BUS_THRESHOLD_MAX + 1;
  assert_int_equal(tt__bus_value_encode(&k, v, sizeof v), -EINVAL);
  k.threshold = 0xff;
  assert_int_equal(tt__bus_value_encode(&k, v, 7), -ENOSPC); /* "1;ff;ok" needs 8 with NUL */
  assert_int_equal(tt__bus_value_encode(&k, v, 8), 7);
}

static void value_decode_should_refuse_garbage_and_overlong_thresholds(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "1",
      "1;",
      "1;0",
      "1;;x",
      "2;0;x",
      "0;0;x",
      "11;0;x",
      "1;fffffffffffffff;x", /* 15 digits: past 56 bits */
      "1;000000000000000;x", /* 15 digits even when small */
      "1;ABC;x",
      "1;-1;x",
      "1; 1;x",
      "1;0x1;x",
      "1;0;a;b",
      "1;0;tab\there",
      "1;0;1234567890123456789012345678901234567890", /* 40-character reason */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tt_bus_keep_t k, before;
    memset(&k, 0x5a, sizeof k);
    before = k;
    assert_int_equal(tt__bus_value_decode(bad[i], strlen(bad[i]), &k), -EINVAL);
    assert_memory_equal(&k, &before, sizeof k); /* untouched on failure */
  }
  /* A NUL inside the value is a byte like any other unprintable one. */
  tt_bus_keep_t k;
  assert_int_equal(tt__bus_value_decode("1;0;a\0b", 7, &k), -EINVAL);
  /* Length, not a NUL, ends the value. */
  assert_int_equal(tt__bus_value_decode("1;7;abcdef", 5, &k), 0);
  assert_int_equal(k.threshold, 7);
  assert_string_equal(k.reason, "a");
}

int main(void) {
  /* The bus thread blocks SIGPIPE itself; the test's own TLS connections do not write to a dead
   * server, but a collector ignores SIGPIPE anyway, so do the same. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_published_keep_should_be_found_by_another_bus_instance,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_lookup_of_an_unknown_trace_should_answer_not_found, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(the_first_keeper_should_win_when_two_publish_the_same_trace,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(keys_should_expire_after_the_configured_ttl, setup, teardown),
      cmocka_unit_test_setup_teardown(
          lookups_should_fail_fast_when_redis_is_down_and_succeed_after_it_restarts, setup,
          teardown),
      cmocka_unit_test_setup_teardown(lookups_should_time_out_when_a_node_stops_answering, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(trace_ids_should_spread_over_several_nodes, setup, teardown),
      cmocka_unit_test_setup_teardown(lookups_should_be_answered_across_several_mget_chunks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          a_stored_value_of_another_version_should_fail_that_lookup_only, setup, teardown),
      cmocka_unit_test_setup_teardown(a_password_should_be_sent_when_configured, setup, teardown),
      cmocka_unit_test_setup_teardown(a_full_queue_should_refuse_without_blocking, setup, teardown),
      cmocka_unit_test_setup_teardown(free_should_flush_queued_publishes_once, setup, teardown),
      cmocka_unit_test_setup_teardown(publish_should_refuse_a_keep_the_value_format_cannot_carry,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(bad_options_should_be_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(byte_counters_should_be_exact_in_both_directions, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_tls_node_should_be_used_with_a_trusted_ca, setup, teardown),
      cmocka_unit_test_setup_teardown(a_tls_node_with_an_untrusted_certificate_should_be_refused,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(an_insecure_tls_bus_should_skip_verification, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(mutual_tls_should_send_the_client_certificate, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(password_over_tls, setup, teardown),
      cmocka_unit_test_setup_teardown(tls_files_that_do_not_load_should_be_refused_at_start, setup,
                                      teardown),
      cmocka_unit_test(node_choice_should_be_stable_and_documented),
      cmocka_unit_test(value_should_round_trip),
      cmocka_unit_test(value_encode_should_refuse_a_semicolon_or_unprintable_reason),
      cmocka_unit_test(value_decode_should_refuse_garbage_and_overlong_thresholds),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  tls_files_remove();
  return failed;
}
