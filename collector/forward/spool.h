/* Disk spool: an append-only, checksummed, size-capped queue of opaque batches in a directory.
 *
 * An exporter whose backend is down longer than its memory queue can hold writes kept batches
 * here and replays them in order when the backend returns, or after a collector restart; with
 * spool.mode always, it writes every batch here before sending it.
 *
 * Layout: the directory holds segment files `seg-<16 hex digits>.tts`, numbered in append
 * order. A segment is a sequence of records:
 *
 *   u32 magic 'TTS1' | u8 version | u8 flags | u16 reserved | u32 payload length |
 *   u32 crc32 (payload) | u64 enqueue time (unix ms) | payload
 *
 * all little-endian. A record is durable once tt__spool_append returns 0 (with fsync on).
 * Consuming a record sets its CONSUMED flag (0x01) in place, so a restart resumes after the last
 * acknowledged record (a record the budget dropped has CONSUMED and DROPPED, 0x02); at most the
 * records in flight at a crash (one peeked run) are sent again. A segment whose records are all
 * consumed is deleted.
 *
 * Damage is never fatal: on open, a record with a bad magic, length or checksum ends the
 * replay of its segment (the rest of that file is skipped and counted), and a truncated tail
 * (a crash mid-write) is cut off. Both are reported through the stats and the error log hook.
 *
 * Budget: max_bytes bounds the segment files on disk. Records are dropped one at a time, oldest
 * first, never a whole segment at once: an append that would take the waiting records past
 * max_bytes - segment_bytes marks just enough of the oldest ones consumed (and dropped) to make
 * room, counts them and hands each one's first bytes to opts->dropped. Consumed and dropped
 * records leave the file only with their whole segment, but they are always a prefix of the
 * oldest segment, so reserving one segment for them keeps the files within max_bytes. During a
 * long outage the newest data is the most useful, and the budget is the user's hard limit. The
 * default segment size is an eighth of the budget (at most 8 MiB), so 7/8 of it holds waiting
 * records; a given segment_bytes is cut to half the budget.
 *
 * Thread-safety: every function takes an internal mutex, so one thread may append while
 * another peeks and acknowledges; there must be at most one appending thread and one reading
 * thread at a time. An append's fsync runs outside the mutex, so a reader never waits for the
 * disk sync of a concurrent append. Errors are negative errno values. */
#ifndef TT_COLLECTOR_SPOOL_H
#define TT_COLLECTOR_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct tt_spool_s tt_spool_t;

typedef struct {
  const char *dir;        /* created if missing (one level); required */
  uint64_t max_bytes;     /* total on-disk budget, headers included; 0 = 1 GiB */
  uint64_t segment_bytes; /* rotate the write segment past this size; 0 = max_bytes/8, at
                           * most 8 MiB; cut to max_bytes/2 */
  int fsync;              /* 1: fsync each appended record and each consumed flag */
  /* Called with a one-line description of damage or budget drops (the first drop, then at
   * most one line a minute while drops go on); may be NULL. */
  void (*report)(void *ctx, const char *msg);
  /* Called for each record the budget drops, with the first min(8, length) bytes of its
   * payload, so that the caller can count what it held (a span count, say). Runs on the
   * appending thread under the spool's lock: it must not call the spool. May be NULL. */
  void (*dropped)(void *ctx, const uint8_t *head, size_t n);
  void *report_ctx; /* for report and dropped */
} tt_spool_opts_t;

typedef struct {
  uint64_t records;         /* records waiting */
  uint64_t bytes;           /* on-disk bytes of the live segments (consumed records included
                             until their segment is removed) */
  uint64_t waiting_bytes;   /* bytes of the waiting records, headers included: 0 once drained */
  uint64_t budget_bytes;    /* what waiting records may take before the oldest are dropped */
  uint64_t oldest_unix_ms;  /* enqueue time of the oldest waiting record; 0 when empty */
  uint64_t dropped_records; /* pushed out by the budget, one record at a time */
  uint64_t dropped_bytes;
  uint64_t corrupt_records; /* bad checksum/length/magic found on open (and skipped) */
  uint64_t truncated_bytes; /* cut off a segment's torn tail on open */
} tt_spool_stats_t;

/* Opens (or creates) the spool in opts->dir and scans what is there. On failure returns a
 * negative errno and writes a message to err. The caller frees with tt__spool_close. */
int tt__spool_open(const tt_spool_opts_t *opts, tt_spool_t **out, char *err, size_t errlen);

/* Appends one record (copied), first dropping the oldest records the budget has no room for.
 * Returns 0, -EMSGSIZE when one record (with its 24-byte header) exceeds max_bytes -
 * segment_bytes, or the errno of a failed write (the record is then not in the spool). */
int tt__spool_append(tt_spool_t *s, const void *data, size_t len, uint64_t now_unix_ms);

/* Copies the oldest waiting record into out (replacing its contents) and starts a new peeked
 * run with it, forgetting any earlier run not yet acknowledged. Returns 0, -ENOENT when the
 * spool is empty, or a negative errno (a failed read is never reported as empty). Peeking
 * again without an ack returns the same record. */
int tt__spool_peek(tt_spool_t *s, tt_buf_t *out, uint64_t *enqueued_unix_ms);

/* Copies the waiting record after the last one of the peeked run into out (replacing its
 * contents) and adds it to the run, so a reader can gather several records before it
 * acknowledges any. Returns 0; -ENOENT when no record follows or no run was started (or all
 * of it was acknowledged); -EMSGSIZE, taking nothing, when the record's length exceeds
 * max_len; or a negative errno. */
int tt__spool_peek_next(tt_spool_t *s, tt_buf_t *out, size_t max_len);

/* Marks the oldest record of the peeked run consumed and takes it out of the run. Returns 0,
 * -ENOENT (nothing peeked, or the record was dropped by the budget meanwhile), or the errno of
 * a failed flag write or sync: the record then still counts as consumed for this open spool
 * (peek moves on, so it is never handed out twice in one run), but a restart may replay it. */
int tt__spool_ack(tt_spool_t *s);

void tt__spool_stats(tt_spool_t *s, tt_spool_stats_t *out);

/* Closes files and frees; what is on disk stays for the next open. NULL is a no-op. */
void tt__spool_close(tt_spool_t *s);

/* Test-only fault injection, process-wide (every open spool): the next `count` record reads
 * (peek, peek_next), consumed-mark writes (ack) or record writes (append) fail with -err as if
 * the disk had answered so; a failed mark still moves the spool on, as a real one does, and a
 * failed append leaves nothing behind. count 0 disarms. Compiled in because it costs one
 * relaxed atomic load per call; the collector never calls it. */
typedef enum {
  TT_SPOOL_FAULT_READ = 0,
  TT_SPOOL_FAULT_MARK = 1,
  TT_SPOOL_FAULT_WRITE = 2
} tt_spool_fault_t;
void tt__spool_inject_fault(tt_spool_fault_t op, unsigned count, int err);

#endif
