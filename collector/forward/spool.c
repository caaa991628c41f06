/* Disk spool; the format and the guarantees are described in spool.h.
 *
 * In memory we keep one small entry per segment file (its number, size, how many records in
 * it still wait, and where the next waiting record starts), never an entry per record, so a
 * spool of millions of records costs a few bytes per segment. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_MAGIC 0x31535454u /* "TTS1" read as little-endian bytes */
#define SPOOL_VERSION 1
#define SPOOL_HDR 24
#define FLAG_CONSUMED 0x01
#define FLAG_DROPPED                                                                               \
  0x02 /* with CONSUMED: dropped by the budget, not sent (for a reader's eyes)                     \
        */
#define DEFAULT_MAX_BYTES (1ull << 30)
#define MAX_DEFAULT_SEGMENT_BYTES (8ull << 20)
#define DROP_REPORT_EVERY_MS 60000

typedef struct {
  uint64_t seq;
  uint64_t size;     /* bytes of valid records (a damaged tail is not counted) */
  uint64_t waiting;  /* records not yet consumed */
  uint64_t live;     /* bytes (headers included) of those records */
  uint64_t read_off; /* offset of the first record that may still wait */
} segment_t;

typedef struct {
  uint64_t seq, off; /* segment and offset of the record's header */
  uint32_t len;      /* payload length */
  uint8_t flags;
  uint8_t dropped; /* its segment was dropped by the budget after the peek */
} peek_t;

struct tt_spool_s {
  pthread_mutex_t mu;
  tt_spool_opts_t opts;
  char *dir;
  segment_t *segs; /* sorted by seq; the last one is the write segment when write_fd >= 0 */
  size_t nsegs, capsegs;
  int write_fd;
  int read_fd; /* open on the oldest segment with waiting records, or -1 */
  uint64_t read_seq;
  /* Records handed out by peek/peek_next and not yet acknowledged: a run from the head, in
   * order, acknowledged from its front. peek_head is the oldest; entries before it are done. */
  peek_t *peeks;
  size_t npeeks, peek_head, peekcap;
  uint64_t head_enq_ms; /* enqueue time of the record at the read position, 0 if unknown */
  uint64_t live_bytes;  /* bytes of the waiting records, headers included */
  uint64_t live_budget; /* what they may take: max_bytes minus one segment (spool.h) */
  /* Budget drops are reported at the first one and then at most once a minute, with counts:
   * during a long outage every append drops, and a line per drop would flood the log. */
  uint64_t drop_report_ms; /* append time of the last report; 0: none yet */
  uint64_t drops_unreported, drop_bytes_unreported;
  tt_spool_stats_t st;
};

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void report(tt_spool_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(tt_spool_t *s, const char *fmt, ...) {
  if (s->opts.report == NULL)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  s->opts.report(s->opts.report_ctx, msg);
}

static void seg_path(const tt_spool_t *s, uint64_t seq, char *out, size_t n) {
  snprintf(out, n, "%s/seg-%016" PRIx64 ".tts", s->dir, seq);
}

static int read_full(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t r = pread(fd, p, len, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return -ENODATA;
    p += r;
    off += (uint64_t)r;
    len -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Returns arr (n elements of size bytes, *cap allocated) with room for one more, doubling it
 * when full, or NULL when that fails (arr is then unchanged and still the caller's). */
static void *room_for_one(void *arr, size_t n, size_t *cap, size_t size) {
  if (n < *cap)
    return arr;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(arr, ncap * size);
  if (p != NULL)
    *cap = ncap;
  return p;
}

static int segs_push(tt_spool_t *s, segment_t seg) {
  segment_t *segs = room_for_one(s->segs, s->nsegs, &s->capsegs, sizeof *segs);
  if (segs == NULL)
    return -ENOMEM;
  s->segs = segs;
  s->segs[s->nsegs++] = seg;
  return 0;
}

static int cmp_seg(const void *a, const void *b) {
  uint64_t x = ((const segment_t *)a)->seq, y = ((const segment_t *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Validates one segment file record by record. Stops at the first damaged record: its bytes
 * and everything after are not trusted (a record's length field is what finds the next one).
 * A torn tail, the common result of a crash mid-append, is cut off so new appends never
 * follow garbage. */
static int scan_segment(tt_spool_t *s, segment_t *seg) {
  char path[4096];
  seg_path(s, seg->seq, path, sizeof path);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat stt;
  if (fstat(fd, &stt) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  uint64_t fsize = (uint64_t)stt.st_size, off = 0;
  uint8_t hdr[SPOOL_HDR];
  uint8_t *payload = NULL;
  size_t paycap = 0;
  int first_waiting_found = 0;
  seg->waiting = 0;
  seg->live = 0;
  seg->read_off = 0;
  while (off < fsize) {
    if (fsize - off < SPOOL_HDR) {
      report(s, "spool: %s: torn record header at offset %" PRIu64 ", %" PRIu64 " bytes cut", path,
             off, fsize - off);
      s->st.truncated_bytes += fsize - off;
      if (ftruncate(fd, (off_t)off) != 0) { /* best effort: the size below excludes it anyway */
      }
      break;
    }
    if (read_full(fd, hdr, SPOOL_HDR, off) != 0)
      break;
    uint32_t len = get32(hdr + 8);
    if (get32(hdr) != SPOOL_MAGIC || hdr[4] != SPOOL_VERSION) {
      report(s, "spool: %s: bad record header at offset %" PRIu64 "; rest of file skipped", path,
             off);
      s->st.corrupt_records++;
      break;
    }
    if ((uint64_t)len > fsize - off - SPOOL_HDR) {
      report(s, "spool: %s: truncated record at offset %" PRIu64 ", %" PRIu64 " bytes cut", path,
             off, fsize - off);
      s->st.truncated_bytes += fsize - off;
      if (ftruncate(fd, (off_t)off) != 0) {
      }
      break;
    }
    if (len > paycap) {
      uint8_t *np = realloc(payload, len);
      if (np == NULL) {
        free(payload);
        close(fd);
        return -ENOMEM;
      }
      payload = np;
      paycap = len;
    }
    if (len > 0 && read_full(fd, payload, len, off + SPOOL_HDR) != 0)
      break;
    if ((uint32_t)crc32(0L, payload, len) != get32(hdr + 12)) {
      report(s, "spool: %s: checksum mismatch at offset %" PRIu64 "; rest of file skipped", path,
             off);
      s->st.corrupt_records++;
      break;
    }
    if (!(hdr[5] & FLAG_CONSUMED)) {
      seg->waiting++;
      seg->live += SPOOL_HDR + (uint64_t)len;
      if (!first_waiting_found) {
        first_waiting_found = 1;
        seg->read_off = off;
      }
    }
    off += SPOOL_HDR + len;
  }
  free(payload);
  close(fd);
  seg->size = off;
  if (!first_waiting_found)
    seg->read_off = off;
  return 0;
}

static void delete_segment_file(tt_spool_t *s, uint64_t seq) {
  char path[4096];
  seg_path(s, seq, path, sizeof path);
  unlink(path);
}

static void close_read(tt_spool_t *s) {
  if (s->read_fd >= 0)
    close(s->read_fd);
  s->read_fd = -1;
  s->head_enq_ms = 0;
}

/* Removes segment i from disk and memory. Records still waiting in it count as dropped (only
 * when the budget cannot drop them one by one: their contents could not be read). */
static void remove_segment(tt_spool_t *s, size_t i, int count_as_dropped) {
  segment_t *seg = &s->segs[i];
  if (count_as_dropped && seg->waiting > 0) {
    s->st.dropped_records += seg->waiting;
    s->st.dropped_bytes += seg->live;
    report(s,
           "spool: budget of %" PRIu64 " bytes reached and segment %" PRIu64
           " unreadable; dropped its %" PRIu64 " batches (%" PRIu64 " bytes) whole",
           s->opts.max_bytes, seg->seq, seg->waiting, seg->live);
  }
  if (s->read_fd >= 0 && s->read_seq == seg->seq)
    close_read(s);
  for (size_t k = s->peek_head; k < s->npeeks; k++)
    if (s->peeks[k].seq == seg->seq)
      s->peeks[k].dropped = 1; /* their acks answer -ENOENT: counted as dropped here */
  int is_write = (s->write_fd >= 0 && i == s->nsegs - 1);
  if (is_write) {
    close(s->write_fd);
    s->write_fd = -1;
  }
  delete_segment_file(s, seg->seq);
  s->st.records -= seg->waiting;
  s->live_bytes -= seg->live;
  s->st.bytes -= seg->size;
  memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof *s->segs);
  s->nsegs--;
}

static int open_write_segment(tt_spool_t *s) {
  uint64_t seq = s->nsegs ? s->segs[s->nsegs - 1].seq + 1 : 1;
  char path[4096];
  seg_path(s, seq, path, sizeof path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  segment_t seg = {seq, 0, 0, 0, 0};
  int rc = segs_push(s, seg);
  if (rc != 0) {
    close(fd);
    unlink(path);
    return rc;
  }
  s->write_fd = fd;
  return 0;
}

/* Creates dir and every missing parent, each 0700: the spool holds trace data, which may be
 * sensitive, and a directory made here belongs to the running user alone. Parents that exist
 * are left as they are. Returns 0 or a negative errno. */
static int make_dirs(const char *dir) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return -ENAMETOOLONG;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char keep = *p;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      return -errno;
    if (keep == '\0')
      return 0;
    *p = keep;
  }
}

int tt__spool_open(const tt_spool_opts_t *opts, tt_spool_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0') {
    snprintf(err, errlen, "spool: no directory given");
    return -EINVAL;
  }
  int mk = make_dirs(opts->dir);
  if (mk != 0) {
    snprintf(err, errlen, "spool: cannot create %s: %s", opts->dir, strerror(-mk));
    return mk;
  }
  tt_spool_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->dir = strdup(opts->dir);
  if (s->dir == NULL) {
    free(s);
    return -ENOMEM;
  }
  s->opts = *opts;
  s->opts.dir = s->dir;
  if (s->opts.max_bytes == 0)
    s->opts.max_bytes = DEFAULT_MAX_BYTES;
  /* Small segments keep the reserve for consumed records (one segment) a small part of the
   * budget; at least one segment must be left for waiting records. */
  if (s->opts.segment_bytes == 0) {
    s->opts.segment_bytes = s->opts.max_bytes / 8;
    if (s->opts.segment_bytes > MAX_DEFAULT_SEGMENT_BYTES)
      s->opts.segment_bytes = MAX_DEFAULT_SEGMENT_BYTES;
  }
  if (s->opts.segment_bytes > s->opts.max_bytes / 2)
    s->opts.segment_bytes = s->opts.max_bytes / 2;
  if (s->opts.segment_bytes == 0)
    s->opts.segment_bytes = 1;
  s->live_budget = s->opts.max_bytes - s->opts.segment_bytes;
  s->write_fd = s->read_fd = -1;
  pthread_mutex_init(&s->mu, NULL);

  DIR *d = opendir(s->dir);
  if (d == NULL) {
    int e = errno;
    snprintf(err, errlen, "spool: cannot open %s: %s", s->dir, strerror(e));
    tt__spool_close(s);
    return -e;
  }
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    uint64_t seq;
    char tail[8];
    if (sscanf(de->d_name, "seg-%16" SCNx64 ".%7s", &seq, tail) == 2 && strcmp(tail, "tts") == 0) {
      segment_t seg = {seq, 0, 0, 0, 0};
      if ((rc = segs_push(s, seg)) != 0)
        break;
    }
  }
  closedir(d);
  if (rc == 0 && s->nsegs > 1)
    qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_seg);
  for (size_t i = 0; rc == 0 && i < s->nsegs; i++) {
    rc = scan_segment(s, &s->segs[i]);
    if (rc != 0) {
      snprintf(err, errlen, "spool: cannot read segment %" PRIu64 " in %s: %s", s->segs[i].seq,
               s->dir, strerror(-rc));
      break;
    }
    s->st.records += s->segs[i].waiting;
    s->live_bytes += s->segs[i].live;
    s->st.bytes += s->segs[i].size;
  }
  /* Fully consumed segments left by an earlier run are garbage now. */
  for (size_t i = 0; rc == 0 && i < s->nsegs;) {
    if (s->segs[i].waiting == 0)
      remove_segment(s, i, 0);
    else
      i++;
  }
  if (rc == 0)
    rc = open_write_segment(s);
  if (rc != 0) {
    if (err[0] == '\0')
      snprintf(err, errlen, "spool: %s: %s", s->dir, strerror(-rc));
    tt__spool_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* Test-only fault injection (spool.h): how many more reads, marks or
 * appends fail, and with what. */
static atomic_uint fault_left[3];
static atomic_int fault_errno[3];

void tt__spool_inject_fault(tt_spool_fault_t op, unsigned count, int err) {
  atomic_store(&fault_errno[op], err);
  atomic_store(&fault_left[op], count);
}

static int injected_fault(tt_spool_fault_t op) {
  unsigned left = atomic_load_explicit(&fault_left[op], memory_order_relaxed);
  while (left > 0) {
    if (atomic_compare_exchange_weak(&fault_left[op], &left, left - 1))
      return -atomic_load(&fault_errno[op]);
  }
  return 0;
}

static int make_room(tt_spool_t *s, uint64_t need, uint64_t now_unix_ms);

int tt__spool_append(tt_spool_t *s, const void *data, size_t len, uint64_t now_unix_ms) {
  if (len > UINT32_MAX || (uint64_t)len + SPOOL_HDR > s->live_budget)
    return -EMSGSIZE;
  uint64_t need = SPOOL_HDR + (uint64_t)len;
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  /* Rotate first, so that the consumed records of the old write segment can leave with it. */
  if (s->write_fd < 0 || s->segs[s->nsegs - 1].size + need > s->opts.segment_bytes) {
    if (s->write_fd >= 0) {
      close(s->write_fd);
      s->write_fd = -1;
      if (s->segs[s->nsegs - 1].waiting == 0)
        remove_segment(s, s->nsegs - 1, 0);
    }
    rc = open_write_segment(s);
  }
  if (rc == 0)
    rc = make_room(s, need, now_unix_ms);
  if (rc != 0) {
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  segment_t *seg = &s->segs[s->nsegs - 1];
  uint8_t hdr[SPOOL_HDR] = {0};
  put32(hdr, SPOOL_MAGIC);
  hdr[4] = SPOOL_VERSION;
  put32(hdr + 8, (uint32_t)len);
  put32(hdr + 12, (uint32_t)crc32(0L, data, (uInt)len));
  put64(hdr + 16, now_unix_ms);
  rc = injected_fault(TT_SPOOL_FAULT_WRITE);
  if (rc == 0)
    rc = write_full(s->write_fd, hdr, SPOOL_HDR);
  if (rc == 0)
    rc = write_full(s->write_fd, data, len);
  /* The sync runs without the mutex, so the reader's peek and ack never wait for the disk.
   * That is safe because there is one appender: only an append rotates, drops or closes the
   * write segment (an ack never removes it), so write_fd and the write segment's size stay
   * ours, and the record is invisible to the reader until seg->size covers it below. */
  int fd = s->write_fd;
  uint64_t at = seg->size;
  pthread_mutex_unlock(&s->mu);
  if (rc == 0 && s->opts.fsync && fdatasync(fd) != 0)
    rc = -errno;
  if (rc != 0) {
    /* Leave no half record behind for the next append to follow. */
    if (ftruncate(fd, (off_t)at) != 0) {
    }
    return rc;
  }
  pthread_mutex_lock(&s->mu);
  seg = &s->segs[s->nsegs - 1]; /* an ack may have moved the array's earlier entries */
  if (seg->waiting == 0)
    seg->read_off = seg->size;
  seg->size += need;
  seg->waiting++;
  seg->live += need;
  s->st.records++;
  s->live_bytes += need;
  s->st.bytes += need;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* Points read_fd at segment seq's file. */
static int use_segment(tt_spool_t *s, uint64_t seq) {
  if (s->read_fd >= 0 && s->read_seq == seq)
    return 0;
  close_read(s);
  char path[4096];
  seg_path(s, seq, path, sizeof path);
  s->read_fd = open(path, O_RDWR | O_CLOEXEC);
  if (s->read_fd < 0)
    return -errno;
  s->read_seq = seq;
  return 0;
}

/* Finds the first waiting record at or after (from_seq, from_off), skipping consumed ones, and
 * leaves read_fd on its segment with its header in hdr and its offset in *at. Returns the
 * segment index, -ENOENT when nothing waits there, or the errno of a failed open or read (a
 * disk error must not pass for an empty spool). (0, 0) is the head. */
static int locate_from(tt_spool_t *s, uint64_t from_seq, uint64_t from_off, uint8_t hdr[SPOOL_HDR],
                       uint64_t *at) {
  for (size_t i = 0; i < s->nsegs; i++) {
    segment_t *seg = &s->segs[i];
    if (seg->waiting == 0 || seg->seq < from_seq)
      continue;
    int whole = seg->seq != from_seq || from_off <= seg->read_off;
    uint64_t off = whole ? seg->read_off : from_off;
    int rc = use_segment(s, seg->seq);
    if (rc != 0)
      return rc;
    while (off + SPOOL_HDR <= seg->size) {
      if ((rc = read_full(s->read_fd, hdr, SPOOL_HDR, off)) != 0)
        return rc == -ENODATA ? -EIO : rc;
      if (!(hdr[5] & FLAG_CONSUMED)) {
        *at = off;
        return (int)i;
      }
      off += SPOOL_HDR + get32(hdr + 8);
      if (whole)
        seg->read_off = off;
    }
    if (whole) {
      /* The counters said a record waits but none was found: trust the file. */
      s->st.records -= seg->waiting;
      s->live_bytes -= seg->live;
      seg->waiting = 0;
      seg->live = 0;
    }
  }
  return -ENOENT;
}

/* Reports budget drops: the first, then at most one line a minute with what was dropped since
 * the last line (DROP_REPORT_EVERY_MS). mu held. */
static void report_drops(tt_spool_t *s, uint64_t now_unix_ms) {
  if (s->drops_unreported == 0 ||
      (s->drop_report_ms != 0 && now_unix_ms < s->drop_report_ms + DROP_REPORT_EVERY_MS))
    return;
  report(s,
         "spool: budget of %" PRIu64 " bytes reached; dropped the %" PRIu64
         " oldest batches (%" PRIu64 " bytes)%s; %" PRIu64 " dropped in all",
         s->opts.max_bytes, s->drops_unreported, s->drop_bytes_unreported,
         s->drop_report_ms != 0 ? " in the last minute or more" : "", s->st.dropped_records);
  s->drop_report_ms = now_unix_ms ? now_unix_ms : 1;
  s->drops_unreported = s->drop_bytes_unreported = 0;
}

/* Drops the oldest waiting record for the budget: marks it consumed and dropped on disk (not
 * synced: should the mark be lost, the record only comes back, over budget, to be dropped
 * again), counts it, hands its first bytes to opts.dropped, and deletes its segment once
 * nothing in it waits (unless it is the write segment). A record of a peeked run answers its
 * ack with -ENOENT. Returns 0, -ENOENT when nothing waits, or the errno of a failed read (the
 * record is then left alone). mu held. */
static int drop_oldest(tt_spool_t *s) {
  uint8_t hdr[SPOOL_HDR];
  uint64_t at = 0;
  int i = locate_from(s, 0, 0, hdr, &at);
  if (i < 0)
    return i;
  segment_t *seg = &s->segs[i];
  uint32_t len = get32(hdr + 8);
  uint8_t head[8];
  size_t hn = len < sizeof head ? len : sizeof head;
  int rc = hn > 0 ? read_full(s->read_fd, head, hn, at + SPOOL_HDR) : 0;
  if (rc != 0)
    return rc == -ENODATA ? -EIO : rc;
  uint8_t flags = (uint8_t)(hdr[5] | FLAG_CONSUMED | FLAG_DROPPED);
  if (pwrite(s->read_fd, &flags, 1, (off_t)(at + 5)) != 1) {
    /* Best effort, as the comment above says. */
  }
  uint64_t bytes = SPOOL_HDR + (uint64_t)len;
  seg->waiting--;
  seg->live -= bytes;
  seg->read_off = at + bytes;
  s->st.records--;
  s->live_bytes -= bytes;
  s->head_enq_ms = 0;
  s->st.dropped_records++;
  s->st.dropped_bytes += bytes;
  s->drops_unreported++;
  s->drop_bytes_unreported += bytes;
  for (size_t k = s->peek_head; k < s->npeeks; k++)
    if (s->peeks[k].seq == seg->seq && s->peeks[k].off == at)
      s->peeks[k].dropped = 1;
  if (s->opts.dropped != NULL)
    s->opts.dropped(s->opts.report_ctx, head, hn);
  int is_write = (s->write_fd >= 0 && (size_t)i == s->nsegs - 1);
  if (seg->waiting == 0 && !is_write)
    remove_segment(s, (size_t)i, 0);
  return 0;
}

/* Makes room for an append of need bytes within the budget (spool.h): drops the oldest records
 * until the waiting ones and the new one fit in live_budget and the files in max_bytes. The
 * second bound matters only for segments written with a larger segment size (an earlier run's
 * settings); the first keeps it on its own. A record that cannot be read to be dropped takes
 * its whole segment with it. When nothing waits and the files are still too big, the write
 * segment holds only consumed records: it starts afresh. mu held; the write segment is open. */
static int make_room(tt_spool_t *s, uint64_t need, uint64_t now_unix_ms) {
  int rc = 0;
  while (s->live_bytes + need > s->live_budget ||
         (s->st.bytes + need > s->opts.max_bytes && s->live_bytes > 0)) {
    rc = drop_oldest(s);
    if (rc == -ENOENT)
      break; /* the counters said a record waits, the files disagree: they won */
    if (rc != 0) {
      size_t i = 0;
      while (i < s->nsegs && s->segs[i].waiting == 0)
        i++;
      if (i == s->nsegs)
        break;
      int is_write = (i == s->nsegs - 1);
      remove_segment(s, i, 1);
      if (is_write && (rc = open_write_segment(s)) != 0)
        break;
      rc = 0;
    }
  }
  if (rc == 0 || rc == -ENOENT) {
    rc = 0;
    if (s->st.bytes + need > s->opts.max_bytes && s->live_bytes == 0 &&
        s->segs[s->nsegs - 1].size > 0) {
      remove_segment(s, s->nsegs - 1, 0);
      rc = open_write_segment(s);
    }
  }
  report_drops(s, now_unix_ms);
  return rc;
}

/* Reads the waiting record found at or after (from_seq, from_off) into out and appends it to
 * the peeked run. Fails with -EMSGSIZE, taking nothing, when its payload exceeds max_len. */
static int take_record(tt_spool_t *s, uint64_t from_seq, uint64_t from_off, tt_buf_t *out,
                       size_t max_len, uint64_t *enqueued_unix_ms) {
  uint8_t hdr[SPOOL_HDR];
  uint64_t at = 0;
  int i = locate_from(s, from_seq, from_off, hdr, &at);
  if (i < 0)
    return i;
  uint32_t len = get32(hdr + 8);
  if (len > max_len)
    return -EMSGSIZE;
  peek_t *peeks = room_for_one(s->peeks, s->npeeks, &s->peekcap, sizeof *peeks);
  if (peeks == NULL)
    return -ENOMEM;
  s->peeks = peeks;
  tt__buf_reset(out);
  int rc = tt__buf_reserve(out, len);
  if (rc == 0)
    rc = injected_fault(TT_SPOOL_FAULT_READ);
  if (rc == 0 && len > 0)
    rc = read_full(s->read_fd, out->data, len, at + SPOOL_HDR);
  if (rc != 0)
    return rc == -ENODATA ? -EIO : rc;
  out->len = len;
  s->peeks[s->npeeks++] = (peek_t){s->segs[i].seq, at, len, hdr[5], 0};
  if (enqueued_unix_ms != NULL)
    *enqueued_unix_ms = get64(hdr + 16);
  return 0;
}

int tt__spool_peek(tt_spool_t *s, tt_buf_t *out, uint64_t *enqueued_unix_ms) {
  pthread_mutex_lock(&s->mu);
  s->npeeks = s->peek_head = 0; /* a new run starts at the head */
  uint64_t enq = 0;
  int rc = take_record(s, 0, 0, out, UINT32_MAX, &enq);
  if (rc == 0) {
    s->head_enq_ms = enq;
    if (enqueued_unix_ms != NULL)
      *enqueued_unix_ms = enq;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int tt__spool_peek_next(tt_spool_t *s, tt_buf_t *out, size_t max_len) {
  pthread_mutex_lock(&s->mu);
  int rc;
  if (s->peek_head == s->npeeks) {
    rc = -ENOENT; /* no run to extend: peek starts one */
  } else {
    const peek_t *last = &s->peeks[s->npeeks - 1];
    rc = take_record(s, last->seq, last->off + SPOOL_HDR + last->len, out, max_len, NULL);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int tt__spool_ack(tt_spool_t *s) {
  pthread_mutex_lock(&s->mu);
  if (s->peek_head == s->npeeks) {
    pthread_mutex_unlock(&s->mu);
    return -ENOENT;
  }
  peek_t p = s->peeks[s->peek_head++];
  if (s->peek_head == s->npeeks)
    s->npeeks = s->peek_head = 0;
  size_t i = 0;
  while (i < s->nsegs && s->segs[i].seq != p.seq)
    i++;
  if (p.dropped || i == s->nsegs) {
    pthread_mutex_unlock(&s->mu); /* dropped by the budget meanwhile */
    return -ENOENT;
  }
  segment_t *seg = &s->segs[i];
  /* The record counts as consumed in memory even when its flag cannot be written: the caller
   * is done with it, and handing it out again in this run would send it twice. Only a restart
   * would replay it (the error tells the caller to count that). */
  uint8_t flags = (uint8_t)(p.flags | FLAG_CONSUMED);
  int rc = injected_fault(TT_SPOOL_FAULT_MARK);
  if (rc == 0)
    rc = use_segment(s, p.seq);
  if (rc == 0) {
    ssize_t w = pwrite(s->read_fd, &flags, 1, (off_t)(p.off + 5));
    if (w != 1)
      rc = w < 0 ? -errno : -EIO;
    else if (s->opts.fsync && fdatasync(s->read_fd) != 0)
      rc = -errno;
  }
  seg->waiting--;
  seg->live -= SPOOL_HDR + (uint64_t)p.len;
  s->st.records--;
  s->live_bytes -= SPOOL_HDR + (uint64_t)p.len;
  seg->read_off = p.off + SPOOL_HDR + p.len;
  s->head_enq_ms = 0;
  int is_write = (s->write_fd >= 0 && i == s->nsegs - 1);
  if (seg->waiting == 0 && !is_write)
    remove_segment(s, i, 0);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void tt__spool_stats(tt_spool_t *s, tt_spool_stats_t *out) {
  pthread_mutex_lock(&s->mu);
  if (s->st.records > 0 && s->head_enq_ms == 0) {
    uint8_t hdr[SPOOL_HDR];
    uint64_t at;
    if (locate_from(s, 0, 0, hdr, &at) >= 0)
      s->head_enq_ms = get64(hdr + 16);
  }
  *out = s->st;
  out->waiting_bytes = s->live_bytes;
  out->budget_bytes = s->live_budget;
  out->oldest_unix_ms = s->st.records > 0 ? s->head_enq_ms : 0;
  pthread_mutex_unlock(&s->mu);
}

void tt__spool_close(tt_spool_t *s) {
  if (s == NULL)
    return;
  if (s->write_fd >= 0) {
    if (s->opts.fsync)
      fsync(s->write_fd);
    close(s->write_fd);
    /* An empty write segment is left by every open; do not let them pile up. */
    if (s->nsegs > 0 && s->segs[s->nsegs - 1].waiting == 0)
      delete_segment_file(s, s->segs[s->nsegs - 1].seq);
  }
  close_read(s);
  pthread_mutex_destroy(&s->mu);
  free(s->segs);
  free(s->peeks);
  free(s->dir);
  free(s);
}
