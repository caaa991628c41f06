/* The default sink: kept traces as one encoded line per batch (OTLP/JSON through
 * tt__otlp_json_from_pb in the daemon) appended to a local file, rotated by size:
 * path -> path.1 -> ... -> path.N, the oldest removed. A mutex serialises shard threads; the
 * encoding happens outside it. Also the null sink. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sink.h"

typedef struct {
  tt_sink_t base;
  pthread_mutex_t mu;
  char *path;
  uint64_t max_bytes;
  unsigned max_files;
  tt_sink_encode_fn encode;
  bool raw;
  int fd;        /* guarded by mu */
  uint64_t size; /* guarded by mu */
  atomic_bool ok;
} file_sink_t;

static int open_file(file_sink_t *f) {
  f->fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (f->fd < 0)
    return -errno;
  struct stat st;
  f->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  return 0;
}

/* Shifts path.(N-1) -> path.N ... path -> path.1 and opens a fresh path. Called under mu. */
static int rotate(file_sink_t *f) {
  close(f->fd);
  f->fd = -1;
  size_t n = strlen(f->path) + 16;
  char *from = malloc(n), *to = malloc(n);
  if (from == NULL || to == NULL) {
    free(from);
    free(to);
    return -ENOMEM;
  }
  snprintf(to, n, "%s.%u", f->path, f->max_files);
  unlink(to);
  for (unsigned i = f->max_files; i > 1; i--) {
    snprintf(from, n, "%s.%u", f->path, i - 1);
    snprintf(to, n, "%s.%u", f->path, i);
    rename(from, to);
  }
  snprintf(to, n, "%s.1", f->path);
  rename(f->path, to);
  free(from);
  free(to);
  return open_file(f);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int file_submit(tt_sink_t *s, const uint8_t *req, size_t len, size_t nspans) {
  file_sink_t *f = (file_sink_t *)s;
  (void)nspans;
  tt_buf_t line = TT_BUF_INIT;
  int rc = f->encode(req, len, &line);
  if (rc == 0 && !f->raw)
    rc = tt__buf_append(&line, "\n", 1);
  if (rc != 0) {
    tt__buf_free(&line);
    return rc < 0 ? rc : -EINVAL;
  }
  pthread_mutex_lock(&f->mu);
  if (f->fd >= 0 && f->max_bytes > 0 && f->size > 0 && f->size + line.len > f->max_bytes) {
    rc = rotate(f);
    if (rc != 0)
      TT_LOG(TT_LOG_ERROR, "file sink rotation failed", "\"errno\":%d,\"error\":\"%s\"", -rc,
             strerror(-rc));
  }
  if (f->fd < 0 && open_file(f) != 0)
    rc = -EIO;
  else
    rc = write_all(f->fd, line.data, line.len);
  if (rc == 0)
    f->size += line.len;
  atomic_store(&f->ok, rc == 0);
  pthread_mutex_unlock(&f->mu);
  tt__buf_free(&line);
  return rc;
}

static int file_flush(tt_sink_t *s) {
  file_sink_t *f = (file_sink_t *)s;
  pthread_mutex_lock(&f->mu);
  int rc = f->fd >= 0 && fdatasync(f->fd) != 0 && errno != EINVAL ? -errno : 0;
  pthread_mutex_unlock(&f->mu);
  return rc;
}

static bool file_healthy(tt_sink_t *s) {
  return atomic_load(&((file_sink_t *)s)->ok);
}

static void file_close(tt_sink_t *s) {
  file_sink_t *f = (file_sink_t *)s;
  if (f->fd >= 0)
    close(f->fd);
  pthread_mutex_destroy(&f->mu);
  free(f->path);
  free(f);
}

static const tt_sink_vtable_t file_vt = {"file", file_submit, file_flush, file_healthy, file_close};

int tt__sink_file_open(const tt_file_sink_opts_t *o, tt_sink_t **out) {
  if (o->path == NULL || o->encode == NULL)
    return -EINVAL;
  file_sink_t *f = calloc(1, sizeof *f);
  if (f == NULL || (f->path = strdup(o->path)) == NULL) {
    free(f);
    return -ENOMEM;
  }
  f->base.vt = &file_vt;
  f->max_bytes = o->max_bytes;
  f->max_files = o->max_files ? o->max_files : 1;
  f->encode = o->encode;
  f->raw = o->raw;
  pthread_mutex_init(&f->mu, NULL);
  int rc = open_file(f);
  if (rc != 0) {
    pthread_mutex_destroy(&f->mu);
    free(f->path);
    free(f);
    return rc;
  }
  atomic_init(&f->ok, true);
  *out = &f->base;
  return 0;
}

int tt__sink_encode_delimited(const uint8_t *pb, size_t len, tt_buf_t *out) {
  int rc = tt__buf_append_varint(out, len);
  return rc == 0 ? tt__buf_append(out, pb, len) : rc;
}

/* ---- null sink ------------------------------------------------------------------------------ */

typedef struct {
  tt_sink_t base;
  atomic_uint_fast64_t spans;
} null_sink_t;

static int null_submit(tt_sink_t *s, const uint8_t *req, size_t len, size_t nspans) {
  (void)req;
  (void)len;
  atomic_fetch_add(&((null_sink_t *)s)->spans, nspans);
  return 0;
}

static int null_flush(tt_sink_t *s) {
  (void)s;
  return 0;
}

static bool null_healthy(tt_sink_t *s) {
  (void)s;
  return true;
}

static void null_close(tt_sink_t *s) {
  free(s);
}

static const tt_sink_vtable_t null_vt = {"null", null_submit, null_flush, null_healthy, null_close};

tt_sink_t *tt__sink_null_new(void) {
  null_sink_t *n = calloc(1, sizeof *n);
  if (n == NULL)
    return NULL;
  n->base.vt = &null_vt;
  return &n->base;
}

uint64_t tt__sink_null_spans(tt_sink_t *s) {
  return atomic_load(&((null_sink_t *)s)->spans);
}
