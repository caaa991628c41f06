/* tailtrace-collector: the daemon's entry point. It loads the configuration (a bad one never
 * starts anything), builds the pipeline and its sink, starts the receivers and the admin port,
 * then waits for signals on the main thread:
 *   SIGTERM / SIGINT  stop receiving, decide every held trace, flush, exit within the deadline
 *   SIGHUP            reload the policies and log.level from the configuration file
 * Signals are blocked in every thread and taken with sigwait here, so no handler runs on a
 * receiver or shard thread. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "config_check.h"
#include "config_reload.h"
#include "log.h"
#include "otlp_json.h"
#include "pipeline.h"
#include "recv_grpc.h"
#include "recv_http.h"
#include "sink.h"
#include "sink_otlp.h"
#include "summary.h"
#include "top.h"
#include "version.h"

static void usage(FILE *f) {
  fprintf(f, "usage: tailtrace-collector [--config FILE] [--validate] [--strict] [--version]\n"
             "                           [--describe-config]\n"
             "       tailtrace-collector top [--admin HOST:PORT] [--interval SECONDS] [--once]\n"
             "  --config FILE       YAML configuration (default: built-in defaults)\n"
             "  --validate          run every start-up check, print problems, exit 0 (OK),\n"
             "                      1 (this host cannot run it) or 2 (the file is refused)\n"
             "  --strict            a warning refuses the configuration too (exit 2)\n"
             "  --describe-config   print every configuration key with its default\n"
             "  --version           print the version\n");
}

typedef struct {
  uint64_t deadline_ms;
} watchdog_t;

/* The address a listener binds. tt__config_check resolved it a moment ago; a failure now (DNS
 * changed in between) is logged and leaves host empty, which the receiver's start refuses. */
static void listen_addr(const char *ep, char *host, size_t hostlen, int *port) {
  char err[320];
  if (tt__config_listen_addr(ep, host, hostlen, port, err, sizeof err) != 0) {
    TT_LOG(TT_LOG_ERROR, err, "\"endpoint\":\"%s\"", ep);
    host[0] = '\0';
  }
}

/* Enforces the shutdown deadline: if a flush hangs (a stuck disk, later a remote backend), the
 * process still exits, with a log line saying so. */
static void *watchdog(void *arg) {
  watchdog_t *w = arg;
  struct timespec ts = {(time_t)(w->deadline_ms / 1000), (long)(w->deadline_ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  TT_LOG(TT_LOG_ERROR, "shutdown deadline passed; exiting without a complete flush",
         "\"deadline_ms\":%llu", (unsigned long long)w->deadline_ms);
  _exit(3);
  return NULL;
}

/* `url` without a userinfo part ("https://user:secret@host/" -> "https://host/"): the start line
 * names endpoints, never credentials (header values are not logged at all). */
static const char *strip_userinfo(const char *url, char *out, size_t n) {
  const char *start = strstr(url, "://");
  start = start ? start + 3 : url;
  const char *at = strchr(start, '@');
  const char *slash = strchr(start, '/');
  if (at == NULL || (slash != NULL && slash < at))
    return url;
  snprintf(out, n, "%.*s%s", (int)(start - url), url, at + 1);
  return out;
}

/* The start line: what this process runs with, so a log shows where traces go without the
 * configuration file at hand. */
static void log_started(const tt_config_t *cfg, const char *grpc, const char *http,
                        const char *admin) {
  tt_buf_t b = TT_BUF_INIT;
  char e1[600], e2[600];
  int rc = tt__buf_appendf(&b, "\"version\":\"%s\",\"config\":\"%s\",\"receivers\":{",
                           tt__collector_version(), tt__log_str(e1, sizeof e1, cfg->source));
  const char *sep = "";
  if (grpc[0]) {
    rc = rc ? rc : tt__buf_appendf(&b, "\"otlp_grpc\":\"%s\"", tt__log_str(e1, sizeof e1, grpc));
    sep = ",";
  }
  if (http[0])
    rc = rc ? rc
            : tt__buf_appendf(&b, "%s\"otlp_http\":\"%s\"", sep, tt__log_str(e1, sizeof e1, http));
  rc = rc ? rc
          : tt__buf_appendf(&b, "},\"admin\":\"%s\",\"policies\":[",
                            tt__log_str(e1, sizeof e1, admin[0] ? admin : "off"));
  for (size_t i = 0; rc == 0 && cfg->policies && i < cfg->policies->n; i++)
    rc = tt__buf_appendf(&b, "%s{\"name\":\"%s\",\"kind\":\"%s\"}", i ? "," : "",
                         tt__log_str(e1, sizeof e1, cfg->policies->items[i].name),
                         tt__policy_kind_name(cfg->policies->items[i].kind));
  rc = rc ? rc : tt__buf_appendf(&b, "],\"sink\":\"%s\"", cfg->sink_type);
  if (rc == 0 && strcmp(cfg->sink_type, "file") == 0)
    rc = tt__buf_appendf(&b, ",\"sink_path\":\"%s\",\"sink_format\":\"%s\"",
                         tt__log_str(e1, sizeof e1, cfg->file_path), cfg->file_format);
  rc = rc ? rc : tt__buf_append_str(&b, ",\"exporters\":[");
  for (size_t i = 0; rc == 0 && i < cfg->nexporters; i++) {
    const tt_exporter_conf_t *e = &cfg->exporters[i];
    char url[300];
    rc = tt__buf_appendf(&b, "%s{\"name\":\"%s\",\"protocol\":\"%s\",\"endpoint\":\"%s\"",
                         i ? "," : "", tt__log_str(e1, sizeof e1, e->name), e->protocol,
                         tt__log_str(e2, sizeof e2, strip_userinfo(e->endpoint, url, sizeof url)));
    if (rc == 0 && e->spool_dir[0])
      rc = tt__buf_appendf(&b, ",\"spool_dir\":\"%s\",\"spool_mode\":\"%s\"",
                           tt__log_str(e1, sizeof e1, e->spool_dir), e->spool_mode);
    rc = rc ? rc : tt__buf_append_str(&b, "}");
  }
  rc = rc ? rc
          : tt__buf_appendf(&b,
                            "],\"memory_budget\":%llu,\"workers\":%lld,\"bus\":\"%s\","
                            "\"summary_interval_ms\":%llu",
                            (unsigned long long)cfg->memory_budget, (long long)cfg->workers,
                            cfg->bus_type, (unsigned long long)cfg->log_summary_ms);
  rc = rc ? rc : tt__buf_append(&b, "", 1);
  if (rc == 0)
    TT_LOG(TT_LOG_INFO, "tailtrace-collector started", "%s", (const char *)b.data);
  tt__buf_free(&b);
}

static int json_encode(const uint8_t *pb, size_t len, tt_buf_t *out) {
  return tt__otlp_json_from_pb(pb, len, out);
}

static void close_sinks(tt_sink_t **sinks, size_t n) {
  for (size_t i = 0; i < n; i++)
    sinks[i]->vt->close(sinks[i]);
  free(sinks);
}

/* The local sink (unless sink.type is none) followed by one OTLP sink per exporter. The pipeline
 * hands every kept batch to each, and each OTLP sink queues it on its own, so a slow backend
 * never holds back the file or another backend. On failure everything opened is closed. */
static int open_sinks(const tt_config_t *cfg, tt_sink_t ***out, size_t *n) {
  tt_sink_t **sinks = calloc(cfg->nexporters + 1, sizeof *sinks);
  if (sinks == NULL)
    return -ENOMEM;
  size_t k = 0;
  int rc = 0;
  char err[600];
  if (strcmp(cfg->sink_type, "null") == 0) {
    sinks[k] = tt__sink_null_new();
    rc = sinks[k] ? 0 : -ENOMEM;
    k += sinks[k] != NULL;
  } else if (strcmp(cfg->sink_type, "file") == 0) {
    bool proto = strcmp(cfg->file_format, "protobuf") == 0;
    tt_file_sink_opts_t fo = {cfg->file_path, cfg->file_max_bytes, (unsigned)cfg->file_max_files,
                              proto ? tt__sink_encode_delimited : json_encode, proto};
    rc = tt__sink_file_open(&fo, &sinks[k]);
    if (rc != 0)
      TT_LOG(TT_LOG_ERROR, "cannot open the file sink",
             "\"path\":\"%s\",\"errno\":%d,\"error\":\"%s\"",
             tt__log_str(err, sizeof err, cfg->file_path), -rc, strerror(-rc));
    else
      k++;
  }
  for (size_t i = 0; rc == 0 && i < cfg->nexporters; i++) {
    const tt_exporter_conf_t *e = &cfg->exporters[i];
    tt_otlp_sink_opts_t o = {0};
    o.name = e->name;
    o.protocol =
        strcmp(e->protocol, "grpc") == 0 ? TT_FWD_PROTOCOL_GRPC : TT_FWD_PROTOCOL_HTTP_PROTOBUF;
    o.endpoint = e->endpoint;
    o.headers = e->headers[0] ? e->headers : NULL;
    o.timeout_ms = (int32_t)e->timeout_ms;
    o.gzip = strcmp(e->compression, "gzip") == 0;
    o.insecure = e->insecure;
    o.ca_file = e->ca_file[0] ? e->ca_file : NULL;
    o.cert_file = e->cert_file[0] ? e->cert_file : NULL;
    o.key_file = e->key_file[0] ? e->key_file : NULL;
    o.queue_bytes = e->queue_bytes;
    o.max_request_bytes = e->max_request_bytes;
    o.retry_initial_ms = (int32_t)e->retry_initial_ms;
    o.retry_max_ms = (int32_t)e->retry_max_ms;
    o.spool_dir = e->spool_dir[0] ? e->spool_dir : NULL;
    o.spool_bytes = e->spool_bytes;
    o.spool_fsync = e->spool_fsync;
    o.spool_always = strcmp(e->spool_mode, "always") == 0;
    err[0] = '\0';
    rc = tt__sink_otlp_open(&o, &sinks[k], err, sizeof err);
    if (rc != 0) {
      TT_LOG(TT_LOG_ERROR, err, "\"exporter\":\"%s\",\"errno\":%d,\"error\":\"%s\"", e->name, -rc,
             strerror(-rc));
      break;
    }
    k++;
  }
  if (rc != 0) {
    close_sinks(sinks, k);
    return rc;
  }
  *out = sinks;
  *n = k;
  return 0;
}

/* Connections are descriptors. The soft open-files limit (often 1024) is raised to the hard one,
 * as servers do, and the receivers' caps are lowered where they would still not fit beside the
 * admin port and the descriptors the sinks, spool and bus need: running out of descriptors would
 * stop every port, /healthz included, where a cap refuses only the connections over it. */
static void fit_connection_caps(tt_config_t *cfg) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
    struct rlimit up = {want, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0)
      rl.rlim_cur = want;
  }
  const int64_t reserve = 64 /* admin */ + 256 /* sinks, spool, bus, logs, gRPC core */;
  int64_t avail = (int64_t)(rl.rlim_cur == RLIM_INFINITY ? 1048576 : rl.rlim_cur) - reserve;
  int64_t h = cfg->http_enabled ? cfg->http_max_conns : 0;
  int64_t g = cfg->grpc_enabled ? cfg->grpc_max_conns : 0;
  if (h + g <= avail)
    return;
  int64_t nh = avail <= 32 ? 16 : h * avail / (h + g);
  int64_t ng = avail <= 32 ? 16 : g * avail / (h + g);
  nh = nh < 16 ? 16 : nh;
  ng = ng < 16 ? 16 : ng;
  TT_LOG(TT_LOG_WARN, "connection caps lowered to fit the open-files limit",
         "\"nofile\":%llu,\"otlp_http_max_connections\":%lld,\"otlp_grpc_max_connections\":%lld",
         (unsigned long long)rl.rlim_cur, (long long)(h ? nh : 0), (long long)(g ? ng : 0));
  if (h)
    cfg->http_max_conns = nh;
  if (g)
    cfg->grpc_max_conns = ng;
}

/* Gives every exporter until half the shutdown deadline, counted from now, to deliver what is
 * queued, the flush included; then the request in flight is aborted and what is left goes to
 * the spool (or is counted lost). The other half is for that spill, the rest of the shutdown
 * and the exit, so a backend that accepts requests and never answers cannot push the process
 * into the watchdog. */
static void stop_exporters_by(tt_sink_t **sinks, size_t n, uint64_t deadline_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t stop_by = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)deadline_ms * 500000;
  for (size_t i = 0; i < n; i++)
    if (tt__sink_is_otlp(sinks[i]))
      tt__sink_otlp_stop_by(sinks[i], stop_by);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "top") == 0)
    return tt__top_main(argc - 1, argv + 1);
  const char *config_path = NULL;
  bool validate = false, strict = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("tailtrace-collector %s\n", tt__collector_version());
      return 0;
    } else if (strcmp(argv[i], "--validate") == 0) {
      validate = true;
    } else if (strcmp(argv[i], "--strict") == 0) {
      strict = true;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      config_path = argv[i] + 9;
    } else if (strcmp(argv[i], "--describe-config") == 0) {
      tt_buf_t b = TT_BUF_INIT;
      tt__config_describe(&b);
      fwrite(b.data, 1, b.len, stdout);
      tt__buf_free(&b);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "tailtrace-collector: unknown argument %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }

  tt_config_t cfg;
  tt_buf_t errs = TT_BUF_INIT;
  int rc = config_path ? tt__config_load_file(config_path, &cfg, &errs) : tt__config_defaults(&cfg);
  if (rc != 0) {
    /* --validate speaks to a person; the daemon's stderr is read by log shippers too, so its
     * refusal is JSON lines like everything else it writes. */
    if (validate) {
      if (errs.len > 0)
        fwrite(errs.data, 1, errs.len, stderr);
      fprintf(stderr, "tailtrace-collector: configuration refused\n");
    } else {
      tt__config_log_lines(TT_LOG_ERROR, &errs);
      TT_LOG(TT_LOG_ERROR, "configuration refused", "\"component\":\"config\"");
    }
    tt__buf_free(&errs);
    tt__config_free(&cfg);
    return 2;
  }
  /* What works but probably not as meant: said by --validate, and logged at start. Then what
   * the file needs of this host, checked the same way for both (config_check.h). */
  tt_buf_t warns = TT_BUF_INIT;
  tt__config_warnings(&cfg, &warns);
  rc = tt__config_check(&cfg, validate ? TT_CHECK_VALIDATE : TT_CHECK_START, &errs, &warns);
  if (validate || rc != 0 || (strict && warns.len > 0)) {
    int code = strict && warns.len > 0 ? 2 : rc != 0 ? 1 : 0;
    if (validate) {
      if (errs.len > 0)
        fwrite(errs.data, 1, errs.len, stderr);
      if (warns.len > 0)
        fwrite(warns.data, 1, warns.len, stderr);
    } else {
      tt__config_log_lines(TT_LOG_ERROR, &errs);
      if (strict)
        tt__config_log_lines(TT_LOG_ERROR, &warns);
    }
    const char *why = code == 2 ? "configuration refused (--strict: a warning counts as an error)"
                                : "this host cannot run the configuration";
    if (code == 0) {
      printf("%s: OK%s\n", cfg.source, warns.len > 0 ? " (with warnings)" : "");
    } else if (!validate) {
      TT_LOG(TT_LOG_ERROR, why, "\"component\":\"config\"");
    } else {
      fprintf(stderr, "tailtrace-collector: %s\n", why);
    }
    tt__buf_free(&errs);
    tt__buf_free(&warns);
    tt__config_free(&cfg);
    return code;
  }
  tt__buf_free(&errs);
  tt__log_set_level((tt_log_level_t)tt__log_level_parse(cfg.log_level));
  tt__grpc_route_core_logs();
  tt__config_log_lines(TT_LOG_WARN, &warns);
  tt__buf_free(&warns);

  /* Block the signals we wait for before any thread exists, so every thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The configuration as the file gave it, before the caps are fitted: what a SIGHUP's fresh
   * load is compared with (shallow: it shares cfg's policies and exporters, never freed). */
  tt_config_t loaded = cfg;
  fit_connection_caps(&cfg);
  tt_sink_t **sinks = NULL;
  size_t nsinks = 0;
  if (open_sinks(&cfg, &sinks, &nsinks) != 0) {
    tt__config_free(&cfg);
    return 1;
  }
  tt_pipeline_opts_t po;
  tt__config_pipeline_opts(&cfg, &po);
  po.sinks = sinks;
  po.nsinks = nsinks;
  po.policies = cfg.policies;
  tt_red_t *red = NULL;
  if (cfg.signals.enabled)
    rc = tt__red_new(&cfg.signals, &red);
  po.red = red;
  tt_pipeline_t *pipe = NULL;
  if (rc == 0)
    rc = tt__pipeline_new(&po, &pipe);
  if (rc != 0) {
    tt__red_free(red);
    TT_LOG(TT_LOG_ERROR, "cannot start the pipeline", "\"errno\":%d,\"error\":\"%s\"", -rc,
           strerror(-rc));
    close_sinks(sinks, nsinks);
    tt__config_free(&cfg);
    return 1;
  }

  atomic_bool ready;
  atomic_init(&ready, false);
  tt_grpc_receiver_t *grpc = NULL;
  tt_http_receiver_t *http = NULL;
  tt_admin_t *admin = NULL;
  tt_summary_t *summary = NULL;
  tt_refusals_t *refusals = &tt__pipeline_metrics(pipe)->refusals;
  char grpc_at[160] = "", http_at[160] = "", admin_at[160] = "";
  char host[128];
  int port;
  int exit_code = 0;
  if (cfg.grpc_enabled) {
    listen_addr(cfg.grpc_endpoint, host, sizeof host, &port);
    tt_grpc_receiver_opts_t go = {.host = host,
                                  .port = port,
                                  .max_recv_msg_bytes = cfg.grpc_max_message,
                                  .read_timeout_ms = (uint32_t)cfg.grpc_request_timeout_ms,
                                  .max_connections = (uint32_t)cfg.grpc_max_conns,
                                  .max_connections_per_ip = (uint32_t)cfg.grpc_max_conns_per_ip,
                                  .idle_timeout_ms = (uint32_t)cfg.grpc_idle_ms,
                                  .handler = tt__pipeline_handle,
                                  .ctx = pipe,
                                  .refusals = refusals,
                                  .http_endpoint = cfg.http_enabled ? cfg.http_endpoint : NULL};
    rc = tt__grpc_receiver_start(&go, &grpc);
    if (rc != 0) {
      TT_LOG(TT_LOG_ERROR, "cannot start the OTLP/gRPC receiver",
             "\"endpoint\":\"%s\",\"errno\":%d,\"error\":\"%s\"", cfg.grpc_endpoint, -rc,
             strerror(-rc));
      exit_code = 1;
      goto stop;
    }
    TT_LOG(TT_LOG_INFO, "otlp_grpc listening", "\"host\":\"%s\",\"port\":%d", host,
           tt__grpc_receiver_port(grpc));
    snprintf(grpc_at, sizeof grpc_at, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             tt__grpc_receiver_port(grpc));
  }
  if (cfg.http_enabled) {
    listen_addr(cfg.http_endpoint, host, sizeof host, &port);
    tt_http_receiver_opts_t ho = {.host = host,
                                  .port = port,
                                  .max_body_bytes = cfg.http_max_body,
                                  .idle_timeout_ms = (uint32_t)cfg.http_idle_ms,
                                  .header_timeout_ms = (uint32_t)cfg.http_header_timeout_ms,
                                  .min_body_rate = (uint32_t)cfg.http_min_body_rate,
                                  .max_connections = (uint32_t)cfg.http_max_conns,
                                  .max_connections_per_ip = (uint32_t)cfg.http_max_conns_per_ip,
                                  .receive_budget_bytes = cfg.http_receive_budget,
                                  .handler = tt__pipeline_handle,
                                  .ctx = pipe,
                                  .refusals = refusals,
                                  .grpc_endpoint = grpc_at};
    rc = tt__http_receiver_start(&ho, &http);
    if (rc != 0) {
      TT_LOG(TT_LOG_ERROR, "cannot start the OTLP/HTTP receiver",
             "\"endpoint\":\"%s\",\"errno\":%d,\"error\":\"%s\"", cfg.http_endpoint, -rc,
             strerror(-rc));
      exit_code = 1;
      goto stop;
    }
    TT_LOG(TT_LOG_INFO, "otlp_http listening", "\"host\":\"%s\",\"port\":%d", host,
           tt__http_receiver_port(http));
    snprintf(http_at, sizeof http_at, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             tt__http_receiver_port(http));
  }
  if (cfg.admin_enabled) {
    listen_addr(cfg.admin_endpoint, host, sizeof host, &port);
    tt_admin_opts_t ao = {host, port, pipe, &ready, http, grpc};
    rc = tt__admin_start(&ao, &admin);
    if (rc != 0) {
      TT_LOG(TT_LOG_ERROR, "cannot start the admin port",
             "\"endpoint\":\"%s\",\"errno\":%d,\"error\":\"%s\"", cfg.admin_endpoint, -rc,
             strerror(-rc));
      exit_code = 1;
      goto stop;
    }
    TT_LOG(TT_LOG_INFO, "admin listening", "\"host\":\"%s\",\"port\":%d", host,
           tt__admin_port(admin));
    snprintf(admin_at, sizeof admin_at, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             tt__admin_port(admin));
  }
  tt_summary_opts_t so = {.pipeline = pipe,
                          .memory_budget = cfg.memory_budget,
                          .interval_ms = (uint32_t)cfg.log_summary_ms};
  if (tt__summary_start(&so, &summary) != 0)
    TT_LOG(TT_LOG_WARN, "cannot start the summary thread; no summary lines", "%s", "");
  atomic_store(&ready, true);
  log_started(&cfg, grpc_at, http_at, admin_at);

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      if (config_path == NULL) {
        TT_LOG(TT_LOG_INFO, "SIGHUP: no configuration file; nothing to reload",
               "\"component\":\"config\"");
        continue;
      }
      tt__config_reload(config_path, &loaded, pipe);
      continue;
    }
    TT_LOG(TT_LOG_INFO, "shutting down", "\"signal\":%d,\"deadline_ms\":%llu", sig,
           (unsigned long long)cfg.shutdown_deadline_ms);
    break;
  }

stop:;
  static watchdog_t wd;
  wd.deadline_ms = cfg.shutdown_deadline_ms;
  pthread_t wt;
  pthread_create(&wt, NULL, watchdog, &wd);
  pthread_detach(wt);
  tt__summary_stop(summary);
  stop_exporters_by(sinks, nsinks, cfg.shutdown_deadline_ms);
  atomic_store(&ready, false);
  /* Receivers first: new requests get UNAVAILABLE from the pipeline meanwhile, and once the
   * receivers have stopped no handler call is in flight. */
  tt__admin_forget_receivers(admin);
  tt__grpc_receiver_stop(grpc);
  tt__http_receiver_stop(http);
  tt__pipeline_shutdown(pipe);
  tt_metrics_t *m = tt__pipeline_metrics(pipe);
  TT_LOG(TT_LOG_INFO, "stopped",
         "\"spans_accepted\":%llu,\"spans_kept\":%llu,\"spans_dropped\":%llu",
         (unsigned long long)atomic_load(&m->spans_accepted),
         (unsigned long long)atomic_load(&m->spans_kept),
         (unsigned long long)atomic_load(&m->spans_dropped));
  tt__admin_stop(admin);
  tt__pipeline_free(pipe);
  tt__red_free(red);
  close_sinks(sinks, nsinks);
  tt__config_free(&cfg);
  return exit_code;
}
