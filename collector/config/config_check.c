/* The host checks of a configuration (see config_check.h): one function runs them for
 * `--validate` and for the start, so the two cannot disagree about a file. */
#include "config_check.h"
#include "sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int tt__config_listen_split(const char *ep, char *host, size_t hostlen, int *port) {
  if (ep[0] != ':')
    return tt__config_split_endpoint(ep, host, hostlen, port);
  /* ":4317": no host, every interface. Split "0:4317" for the port's rules, then drop the host. */
  char probe[32];
  if (strlen(ep) > sizeof probe - 2 || hostlen == 0)
    return -EINVAL;
  snprintf(probe, sizeof probe, "0%s", ep);
  char h[4];
  if (tt__config_split_endpoint(probe, h, sizeof h, port) != 0)
    return -EINVAL;
  host[0] = '\0';
  return 0;
}

int tt__config_listen_addr(const char *ep, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen) {
  char name[256];
  if (tt__config_listen_split(ep, name, sizeof name, port) != 0) {
    snprintf(err, errlen, "expected host:port or :port with a port 0-65535, got \"%s\"", ep);
    return -EINVAL;
  }
  if (name[0] == '\0')
    snprintf(name, sizeof name, "0.0.0.0");
  struct in6_addr a;
  if (inet_pton(AF_INET, name, &a) == 1 || inet_pton(AF_INET6, name, &a) == 1) {
    if (strlen(name) >= hostlen) {
      snprintf(err, errlen, "address too long");
      return -EINVAL;
    }
    snprintf(host, hostlen, "%s", name);
    return 0;
  }
  /* A name is resolved once, here, as the OpenTelemetry Collector does for "localhost:4317":
   * the receivers take addresses, and a listener does not follow DNS changes anyway. IPv4 is
   * preferred, as Go's listener prefers it, so "localhost" means 127.0.0.1 on every host. */
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(name, NULL, &hints, &res);
  if (rc != 0 || res == NULL) {
    snprintf(err, errlen,
             "cannot resolve host \"%s\" (%s); write an address, a name this host resolves, "
             "or :PORT for every interface",
             name, rc != 0 ? gai_strerror(rc) : "no address");
    return -ENOENT;
  }
  const struct addrinfo *pick = NULL;
  for (const struct addrinfo *r = res; r != NULL && pick == NULL; r = r->ai_next)
    if (r->ai_family == AF_INET)
      pick = r;
  for (const struct addrinfo *r = res; r != NULL && pick == NULL; r = r->ai_next)
    if (r->ai_family == AF_INET6)
      pick = r;
  char text[INET6_ADDRSTRLEN] = "";
  if (pick != NULL && pick->ai_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)pick->ai_addr)->sin_addr, text, sizeof text);
  else if (pick != NULL)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, text,
              sizeof text);
  freeaddrinfo(res);
  if (text[0] == '\0' || strlen(text) >= hostlen) {
    snprintf(err, errlen, "host \"%s\" has no IPv4 or IPv6 address", name);
    return -ENOENT;
  }
  snprintf(host, hostlen, "%s", text);
  return 0;
}

/* One check's state: the config and where its lines go. */
typedef struct {
  const tt_config_t *c;
  tt_buf_t *errs, *warns;
  int nerr;
} check_t;

static void problem(check_t *ck, bool error, size_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void problem(check_t *ck, bool error, size_t line, const char *key, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tt__buf_appendf(error ? ck->errs : ck->warns, "%s:%zu: %s: %s%s\n", ck->c->source, line, key,
                  error ? "" : "warning: ", msg);
  ck->nerr += error;
}

/* A receiver's or the admin port's address, resolved. */
typedef struct {
  const char *key;
  const char *ep;
  char host[64];
  int port;
  bool ok;
} listener_t;

/* Binds the address as the receivers do (SO_REUSEADDR, so a socket in TIME_WAIT is no
 * obstacle), and closes it at once. Returns 0 or a negative errno. */
static int try_bind(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (tt__sockaddr_literal(host, port, &ss, &len) != 0)
    return -EINVAL;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1, rc = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    rc = -errno;
  close(fd);
  return rc;
}

static bool wildcard(const char *host) {
  return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static void check_listeners(check_t *ck, tt_check_mode_t mode) {
  const tt_config_t *c = ck->c;
  listener_t ls[3] = {{"receivers.otlp_grpc.endpoint", c->grpc_endpoint, "", 0, false},
                      {"receivers.otlp_http.endpoint", c->http_endpoint, "", 0, false},
                      {"admin.endpoint", c->admin_endpoint, "", 0, false}};
  bool on[3] = {c->grpc_enabled, c->http_enabled, c->admin_enabled};
  for (size_t i = 0; i < 3; i++) {
    if (!on[i])
      continue;
    char err[320];
    size_t line = tt__config_line(c, ls[i].key);
    if (tt__config_listen_addr(ls[i].ep, ls[i].host, sizeof ls[i].host, &ls[i].port, err,
                               sizeof err) != 0) {
      problem(ck, true, line, ls[i].key, "%s", err);
      continue;
    }
    ls[i].ok = true;
    /* Two listeners on one port fail the second bind at start; said here with both lines. A
     * port of 0 is a fresh one each time, never shared. */
    bool clash = false;
    for (size_t j = 0; j < i && !clash; j++) {
      if (!ls[j].ok || ls[j].port != ls[i].port || ls[i].port == 0)
        continue;
      if (strcmp(ls[j].host, ls[i].host) == 0 || wildcard(ls[j].host) || wildcard(ls[i].host)) {
        problem(ck, true, line, ls[i].key,
                "port %d is also %s's (line %zu): each listener needs its own port", ls[i].port,
                ls[j].key, tt__config_line(c, ls[j].key));
        clash = true;
      }
    }
    if (clash || mode != TT_CHECK_VALIDATE)
      continue;
    int rc = try_bind(ls[i].host, ls[i].port);
    if (rc == -EADDRINUSE)
      /* Validating the next configuration beside the running collector is the usual case: the
       * port is busy because that collector holds it. Said, not refused. */
      problem(ck, false, line, ls[i].key,
              "%s:%d is in use now (by a running collector?); the daemon cannot start while it "
              "is",
              ls[i].host, ls[i].port);
    else if (rc != 0)
      problem(ck, true, line, ls[i].key, "cannot listen on %s:%d: %s%s", ls[i].host, ls[i].port,
              strerror(-rc),
              rc == -EADDRNOTAVAIL ? " (not an address of this host)"
              : rc == -EACCES      ? " (ports below 1024 need privileges)"
                                   : "");
  }
}

/* Copies the directory part of path into dir ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t n) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, n, ".");
  else if (slash == path)
    snprintf(dir, n, "/");
  else
    snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

static void check_sink_file(check_t *ck) {
  const tt_config_t *c = ck->c;
  if (strcmp(c->sink_type, "file") != 0)
    return;
  const char *key = "sink.file.path";
  size_t line = tt__config_line(c, key);
  char dir[sizeof c->file_path];
  dir_of(c->file_path, dir, sizeof dir);
  struct stat st;
  /* The file sink creates its file, never its directory: a missing one is most often a typo or
   * a volume that is not mounted, where creating it would write the traces somewhere no one
   * looks. */
  if (stat(dir, &st) != 0)
    problem(ck, true, line, key,
            "the directory %s does not exist (%s); the file sink creates "
            "its file but not its directory",
            dir, strerror(errno));
  else if (!S_ISDIR(st.st_mode))
    problem(ck, true, line, key, "%s is not a directory", dir);
  else if (access(dir, W_OK | X_OK) != 0)
    problem(ck, true, line, key, "cannot create files in %s: %s", dir, strerror(errno));
  else if (stat(c->file_path, &st) == 0 && S_ISDIR(st.st_mode))
    problem(ck, true, line, key, "%s is a directory; give the path of a file", c->file_path);
  else if (stat(c->file_path, &st) == 0 && access(c->file_path, W_OK) != 0)
    problem(ck, true, line, key, "cannot write %s: %s", c->file_path, strerror(errno));
}

/* A spool directory must exist or be creatable: the nearest existing ancestor is a directory
 * this user can create entries in. At start the missing part is created, mode 0700 (the spool
 * holds trace data, which may be sensitive), each parent too. */
static void check_spool_dir(check_t *ck, const tt_exporter_conf_t *e, size_t idx,
                            tt_check_mode_t mode) {
  char key[64];
  snprintf(key, sizeof key, "exporters[%zu].spool.dir", idx);
  size_t line = tt__config_exporter_line(e, "spool.dir");
  char path[sizeof e->spool_dir];
  snprintf(path, sizeof path, "%s", e->spool_dir);
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/')
    path[--len] = '\0';
  struct stat st;
  if (stat(path, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      problem(ck, true, line, key, "%s is not a directory", path);
    else if (access(path, R_OK | W_OK | X_OK) != 0)
      problem(ck, true, line, key, "cannot use %s: %s", path, strerror(errno));
    else if ((st.st_mode & 077) != 0)
      /* One the collector makes is 0700; one made by hand may let other users read the traces.
       * Said, not refused: the operator may share it on purpose. */
      problem(ck, false, line, key,
              "%s is open to other users (mode %04o); the spool holds trace data: chmod 0700 "
              "it",
              path, (unsigned)(st.st_mode & 07777));
    return;
  }
  /* Find the nearest ancestor that exists: path is cut at each slash from the end. */
  char anc[sizeof path];
  snprintf(anc, sizeof anc, "%s", path);
  for (;;) {
    char *slash = strrchr(anc, '/');
    if (slash == NULL) {
      snprintf(anc, sizeof anc, ".");
      break;
    }
    if (slash == anc) {
      anc[1] = '\0';
      break;
    }
    *slash = '\0';
    if (stat(anc, &st) == 0)
      break;
  }
  if (stat(anc, &st) != 0 || !S_ISDIR(st.st_mode)) {
    problem(ck, true, line, key, "cannot create %s: %s is not a directory", path, anc);
    return;
  }
  if (access(anc, W_OK | X_OK) != 0) {
    problem(ck, true, line, key, "cannot create %s: %s: %s", path, anc, strerror(errno));
    return;
  }
  if (mode != TT_CHECK_START)
    return;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char keep = *p;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      problem(ck, true, line, key, "cannot create %s: %s", path, strerror(errno));
      return;
    }
    if (keep == '\0')
      return;
    *p = keep;
  }
}

static void check_readable(check_t *ck, size_t line, const char *key, const char *path) {
  if (path[0] != '\0' && access(path, R_OK) != 0)
    problem(ck, true, line, key, "cannot read %s: %s", path, strerror(errno));
}

int tt__config_check(const tt_config_t *c, tt_check_mode_t mode, tt_buf_t *errs, tt_buf_t *warns) {
  check_t ck = {c, errs, warns, 0};
  check_listeners(&ck, mode);
  check_sink_file(&ck);
  for (size_t i = 0; i < c->nexporters; i++) {
    const tt_exporter_conf_t *e = &c->exporters[i];
    if (e->spool_dir[0] != '\0')
      check_spool_dir(&ck, e, i, mode);
    static const char *const files[] = {"ca_file", "cert_file", "key_file"};
    const char *paths[] = {e->ca_file, e->cert_file, e->key_file};
    for (size_t k = 0; k < 3; k++) {
      char key[64];
      snprintf(key, sizeof key, "exporters[%zu].%s", i, files[k]);
      check_readable(&ck, tt__config_exporter_line(e, files[k]), key, paths[k]);
    }
  }
  if (strcmp(c->bus_type, "redis") == 0 && c->bus_tls) {
    static const char *const keys[] = {"bus.redis.tls.ca_file", "bus.redis.tls.cert_file",
                                       "bus.redis.tls.key_file"};
    const char *paths[] = {c->bus_tls_ca_file, c->bus_tls_cert_file, c->bus_tls_key_file};
    for (size_t k = 0; k < 3; k++)
      check_readable(&ck, tt__config_line(c, keys[k]), keys[k], paths[k]);
  }
  return ck.nerr ? -EINVAL : 0;
}
