/* `tailtrace-collector top`: a live view of a running collector for people at a terminal. It
 * polls the admin port's /metrics (the same text Prometheus scrapes, so what it shows is what
 * the dashboards show) and redraws one screen per interval with plain ANSI sequences: rates
 * between the last two scrapes, gauges as they are. --once prints one screen, from two scrapes
 * an interval apart, and exits (scripts, tests). Single-threaded; nothing of the daemon runs. */
#include "top.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

/* One scrape: every sample line as its series (name and labels, as written) and value. */
typedef struct {
  char *key;
  double v;
} sample_t;

typedef struct {
  sample_t *s;
  size_t n, cap;
  char *text; /* owns the keys */
  double at;  /* CLOCK_MONOTONIC seconds of the scrape */
} snap_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void snap_free(snap_t *s) {
  free(s->s);
  free(s->text);
  memset(s, 0, sizeof *s);
}

/* GET /metrics over HTTP/1.0 (the answer ends with the connection). Returns 0 with the body
 * parsed into out, or -1 with a reason in err. */
static int scrape(const char *host, const char *port, snap_t *out, char *err, size_t errlen) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(gai));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *p = ai; p != NULL && fd < 0; p = p->ai_next) {
    fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0)
      continue;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  if (fd < 0) {
    snprintf(err, errlen, "cannot connect to the admin port %s:%s: %s", host, port,
             strerror(errno));
    return -1;
  }
  char req[256];
  int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", host);
  tt_buf_t b = TT_BUF_INIT;
  int rc = write(fd, req, (size_t)n) == n ? 0 : -1;
  char chunk[16384];
  ssize_t r;
  while (rc == 0 && (r = read(fd, chunk, sizeof chunk)) > 0)
    if (tt__buf_append(&b, chunk, (size_t)r) != 0)
      rc = -1;
  close(fd);
  int status = 0;
  if (rc == 0 && tt__buf_append(&b, "", 1) == 0)
    sscanf((const char *)b.data, "HTTP/1.%*d %d", &status);
  char *body = status == 200 ? strstr((char *)b.data, "\r\n\r\n") : NULL;
  if (body == NULL) {
    snprintf(err, errlen, "%s:%s/metrics: no answer or status %d", host, port, status);
    tt__buf_free(&b);
    return -1;
  }
  memset(out, 0, sizeof *out);
  out->at = mono_s();
  out->text = strdup(body + 4);
  tt__buf_free(&b);
  if (out->text == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (char *line = out->text, *next; line != NULL && *line != '\0'; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    char *sp = strrchr(line, ' ');
    if (line[0] == '#' || sp == NULL)
      continue;
    *sp = '\0';
    if (out->n == out->cap) {
      size_t cap = out->cap ? out->cap * 2 : 256;
      sample_t *g = realloc(out->s, cap * sizeof *g);
      if (g == NULL) {
        snap_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      out->s = g;
      out->cap = cap;
    }
    out->s[out->n].key = line;
    out->s[out->n].v = strtod(sp + 1, NULL);
    out->n++;
  }
  return 0;
}

/* Whether key is a series of metric `name` whose labels include every `k="v"` of `want` (a
 * comma-separated list; NULL or "" matches any labels). */
static bool matches(const char *key, const char *name, const char *want) {
  size_t n = strlen(name);
  if (strncmp(key, name, n) != 0 || (key[n] != '\0' && key[n] != '{'))
    return false;
  if (want == NULL || *want == '\0')
    return true;
  char one[160];
  for (const char *w = want; *w != '\0';) {
    const char *c = strchr(w, ',');
    size_t len = c ? (size_t)(c - w) : strlen(w);
    if (len >= sizeof one)
      return false;
    memcpy(one, w, len);
    one[len] = '\0';
    const char *at = strstr(key + n, one);
    if (at == NULL || (at[-1] != '{' && at[-1] != ','))
      return false;
    w += len + (c != NULL);
  }
  return true;
}

static double sum(const snap_t *s, const char *name, const char *want) {
  double t = 0;
  for (size_t i = 0; i < s->n; i++)
    if (matches(s->s[i].key, name, want))
      t += s->s[i].v;
  return t;
}

static bool has(const snap_t *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (matches(s->s[i].key, name, NULL))
      return true;
  return false;
}

/* Per second between the two scrapes; 0 for a counter that went back (a restart). */
static double rate(const snap_t *a, const snap_t *b, const char *name, const char *want) {
  double d = sum(b, name, want) - sum(a, name, want), dt = b->at - a->at;
  return d > 0 && dt > 0 ? d / dt : 0;
}

/* The value of label `k` in a series key, copied to out (empty when absent). */
static void label(const char *key, const char *k, char *out, size_t outlen) {
  char pat[64];
  snprintf(pat, sizeof pat, "%s=\"", k);
  const char *at = strstr(key, pat);
  out[0] = '\0';
  if (at == NULL || (at[-1] != '{' && at[-1] != ','))
    return;
  at += strlen(pat);
  const char *end = strchr(at, '"');
  size_t len = end ? (size_t)(end - at) : 0;
  if (len >= outlen)
    len = outlen - 1;
  memcpy(out, at, len);
  out[len] = '\0';
}

/* The q-quantile of a histogram's observations between two scrapes (all of b's when a is NULL),
 * interpolated inside the bucket as Prometheus's histogram_quantile does. NAN without any. */
static double quantile(const snap_t *a, const snap_t *b, const char *name, double q,
                       double *count) {
  char bucket[128];
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  double les[64], cum[64];
  size_t n = 0;
  for (size_t i = 0; i < b->n && n < 64; i++) {
    if (!matches(b->s[i].key, bucket, NULL))
      continue;
    char le[32];
    label(b->s[i].key, "le", le, sizeof le);
    les[n] = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
    char want[48];
    snprintf(want, sizeof want, "le=\"%s\"", le);
    cum[n] = b->s[i].v - (a ? sum(a, bucket, want) : 0);
    n++;
  }
  *count = n > 0 ? cum[n - 1] : 0;
  if (n == 0 || cum[n - 1] <= 0)
    return NAN;
  double rank = q * cum[n - 1];
  for (size_t i = 0; i < n; i++) {
    if (cum[i] < rank)
      continue;
    if (isinf(les[i]))
      return i > 0 ? les[i - 1] : NAN;
    double lo = i > 0 ? les[i - 1] : 0, below = i > 0 ? cum[i - 1] : 0;
    double in = cum[i] - below;
    return in > 0 ? lo + (les[i] - lo) * (rank - below) / in : les[i];
  }
  return NAN;
}

static const char *human_bytes(double v, char *out, size_t outlen) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(out, outlen, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return out;
}

/* Distinct values of label `k` over the series of `name`, at most max, in order of appearance. */
static size_t label_values(const snap_t *s, const char *name, const char *k, char (*out)[64],
                           size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (!matches(s->s[i].key, name, NULL))
      continue;
    char v[64];
    label(s->s[i].key, k, v, sizeof v);
    bool seen = false;
    for (size_t j = 0; j < n && !seen; j++)
      seen = strcmp(out[j], v) == 0;
    if (!seen && n < max)
      memcpy(out[n++], v, sizeof v);
  }
  return n;
}

static void render(FILE *f, const char *where, const snap_t *a, const snap_t *b) {
  char t1[32], t2[32], t3[32];
  double dt = b->at - a->at;
  fprintf(f, "tailtrace-collector top  %s  (rates over the last %.1f s)\n\n", where, dt);

  fprintf(f, "SPANS/s     in %.1f  accepted %.1f  refused %.1f (invalid %.1f, invalid_utf8 %.1f)\n",
          rate(a, b, "tailtrace_spans_received_total", NULL),
          rate(a, b, "tailtrace_spans_accepted_total", NULL),
          rate(a, b, "tailtrace_spans_refused_total", NULL),
          rate(a, b, "tailtrace_spans_refused_total", "cause=\"invalid\""),
          rate(a, b, "tailtrace_spans_refused_total", "cause=\"invalid_utf8\""));
  fprintf(f, "REQUESTS/s  in %.1f  refused:", rate(a, b, "tailtrace_requests_total", NULL));
  char causes[16][64];
  size_t nc = label_values(b, "tailtrace_requests_refused_total", "cause", causes, 16);
  for (size_t i = 0; i < nc; i++) {
    char want[96];
    snprintf(want, sizeof want, "cause=\"%s\"", causes[i]);
    fprintf(f, " %s %.1f", causes[i], rate(a, b, "tailtrace_requests_refused_total", want));
  }
  fprintf(f, "\n");

  double held = sum(b, "tailtrace_held_bytes", NULL),
         cache = sum(b, "tailtrace_decided_cache_bytes", NULL);
  double budget = sum(b, "tailtrace_memory_budget_bytes", NULL);
  double spans_held = sum(b, "tailtrace_spans_accepted_total", NULL) -
                      sum(b, "tailtrace_spans_kept_total", NULL) -
                      sum(b, "tailtrace_spans_dropped_total", NULL) -
                      sum(b, "tailtrace_spans_duplicate_total", NULL);
  fprintf(
      f, "HELD        traces %.0f (pending %.0f)  spans %.0f  bytes %s + cache %s of %s (%.1f%%)\n",
      sum(b, "tailtrace_traces_held", NULL), sum(b, "tailtrace_traces_pending", NULL),
      spans_held > 0 ? spans_held : 0, human_bytes(held, t1, sizeof t1),
      human_bytes(cache, t2, sizeof t2), human_bytes(budget, t3, sizeof t3),
      budget > 0 ? 100 * (held + cache) / budget : 0.0);

  fprintf(f, "TRACES/s    kept %.1f  dropped %.1f  (spans kept %.1f, dropped %.1f)\n",
          rate(a, b, "tailtrace_traces_decided_total", "decision=\"keep\""),
          rate(a, b, "tailtrace_traces_decided_total", "decision=\"drop\""),
          rate(a, b, "tailtrace_spans_kept_total", NULL),
          rate(a, b, "tailtrace_spans_dropped_total", NULL));
  for (int d = 0; d < 2; d++) {
    const char *dec = d == 0 ? "keep" : "drop";
    char reasons[32][64];
    size_t nr = label_values(b, "tailtrace_traces_decided_total", "reason", reasons, 32);
    fprintf(f, "  %s by reason:", dec);
    bool any = false;
    for (size_t i = 0; i < nr; i++) {
      char want[160];
      snprintf(want, sizeof want, "decision=\"%s\",reason=\"%s\"", dec, reasons[i]);
      if (!has(b, "tailtrace_traces_decided_total") ||
          sum(b, "tailtrace_traces_decided_total", want) == 0)
        continue;
      fprintf(f, " %s %.1f", reasons[i], rate(a, b, "tailtrace_traces_decided_total", want));
      any = true;
    }
    fprintf(f, "%s\n", any ? "" : " -");
  }

  char names[16][64];
  size_t ns = label_values(b, "tailtrace_sink_spans_total", "sink", names, 16);
  fprintf(f, "SINKS/s    ");
  for (size_t i = 0; i < ns; i++) {
    char want[160];
    snprintf(want, sizeof want, "sink=\"%s\",outcome=\"accepted\"", names[i]);
    double acc = rate(a, b, "tailtrace_sink_spans_total", want);
    snprintf(want, sizeof want, "sink=\"%s\",outcome=\"refused\"", names[i]);
    fprintf(f, " %s: accepted %.1f refused %.1f;", names[i], acc,
            rate(a, b, "tailtrace_sink_spans_total", want));
  }
  fprintf(f, "%s\n", ns ? "" : " -");

  size_t ne = label_values(b, "tailtrace_exporter_up", "exporter", names, 16);
  if (ne > 0)
    fprintf(f, "EXPORTERS   %-16s %-8s %12s %12s %12s %10s %12s\n", "name", "state", "delivered/s",
            "queued", "spooled/s", "in spool", "lost/s");
  for (size_t i = 0; i < ne; i++) {
    char w[128], w2[192];
    snprintf(w, sizeof w, "exporter=\"%s\"", names[i]);
    bool up = sum(b, "tailtrace_exporter_up", w) > 0;
    bool refusing = sum(b, "tailtrace_exporter_refusing", w) > 0;
    snprintf(w2, sizeof w2, "%s,outcome=\"delivered\"", w);
    double delivered = rate(a, b, "tailtrace_exporter_spans_total", w2);
    double lost = rate(a, b, "tailtrace_exporter_spans_total", w) - delivered;
    fprintf(f, "            %-16s %-8s %12.1f %12.0f %12.1f %10.0f %12.1f\n", names[i],
            up         ? "up"
            : refusing ? "REFUSING"
                       : "DOWN",
            delivered, sum(b, "tailtrace_exporter_queue_spans", w),
            rate(a, b, "tailtrace_exporter_spooled_spans_total", w),
            sum(b, "tailtrace_exporter_spool_batches", w), lost > 0 ? lost : 0);
  }

  double count, p50 = quantile(a, b, "tailtrace_decision_latency_seconds", 0.5, &count);
  double p99 = quantile(a, b, "tailtrace_decision_latency_seconds", 0.99, &count);
  if (count > 0)
    fprintf(f, "DECISION    p50 %.3f s  p99 %.3f s  (%.0f traces decided in the interval)\n", p50,
            p99, count);
  else
    fprintf(f, "DECISION    no trace decided in the interval\n");

  double cpu = rate(a, b, "process_cpu_seconds_total", NULL);
  fprintf(f, "PROCESS     rss %s  cpu %.1f%%  fds %.0f of %.0f\n",
          human_bytes(sum(b, "process_resident_memory_bytes", NULL), t1, sizeof t1), 100 * cpu,
          sum(b, "process_open_fds", NULL), sum(b, "process_max_fds", NULL));
}

static void usage(FILE *f) {
  fprintf(f, "usage: tailtrace-collector top [--admin HOST:PORT] [--interval SECONDS] [--once]\n"
             "  --admin HOST:PORT    the collector's admin port (default 127.0.0.1:13133)\n"
             "  --interval SECONDS   time between scrapes (default 1)\n"
             "  --once               print one screen (two scrapes an interval apart) and exit\n"
             "  q or Ctrl-C quits the live view\n");
}

/* Waits up to `seconds` for a key on stdin (a terminal in raw mode); true when it was q. */
static bool wait_for_quit(double seconds, bool tty) {
  double end = mono_s() + seconds;
  for (;;) {
    double left = end - mono_s();
    if (left <= 0 || interrupted)
      return interrupted;
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int r = poll(&p, tty ? 1 : 0, (int)(left * 1000) + 1);
    if (r > 0) {
      char c;
      if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q' || c == 3))
        return true;
    }
  }
}

int tt__top_main(int argc, char **argv) {
  const char *admin = "127.0.0.1:13133";
  double interval = 1;
  bool once = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc) {
      admin = argv[++i];
    } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
      interval = strtod(argv[++i], NULL);
    } else if (strcmp(argv[i], "--once") == 0) {
      once = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "tailtrace-collector top: unknown argument %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (!(interval >= 0.1 && interval <= 3600)) {
    fprintf(stderr, "tailtrace-collector top: --interval must be 0.1 to 3600 seconds\n");
    return 2;
  }
  char host[256], port[16];
  const char *colon = strrchr(admin, ':');
  if (colon == NULL || colon == admin || (size_t)(colon - admin) >= sizeof host ||
      strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port) {
    fprintf(stderr, "tailtrace-collector top: --admin wants HOST:PORT, not %s\n", admin);
    return 2;
  }
  memcpy(host, admin, (size_t)(colon - admin));
  host[colon - admin] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:13133 */
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  snprintf(port, sizeof port, "%s", colon + 1);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  char err[512];
  snap_t prev, cur;
  if (scrape(host, port, &prev, err, sizeof err) != 0) {
    fprintf(stderr, "tailtrace-collector top: %s\n", err);
    return 1;
  }
  bool tty = !once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  struct termios saved;
  if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
    struct termios raw = saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    fputs("\033[?25l", stdout); /* hide the cursor while redrawing */
  } else {
    tty = false;
  }
  int rc = 0;
  for (;;) {
    if (wait_for_quit(interval, tty))
      break;
    if (scrape(host, port, &cur, err, sizeof err) != 0) {
      if (once || !tty) {
        fprintf(stderr, "tailtrace-collector top: %s\n", err);
        rc = 1;
        break;
      }
      fprintf(stdout, "\033[H\033[2J%s\n(retrying; q quits)\n", err);
      fflush(stdout);
      continue;
    }
    if (tty)
      fputs("\033[H\033[2J", stdout);
    render(stdout, admin, &prev, &cur);
    if (tty)
      fputs("\nq or Ctrl-C quits\n", stdout);
    fflush(stdout);
    snap_free(&prev);
    prev = cur;
    if (once)
      break;
  }
  snap_free(&prev);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    fputs("\033[?25h", stdout);
    fflush(stdout);
  }
  return rc;
}
