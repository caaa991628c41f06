/* The sink interface: where kept traces go.
 *
 * A sink receives batches of kept spans as serialized ExportTraceServiceRequest bytes, already
 * re-framed from the spans' original bytes and annotated with their sample rate and decision
 * reason. The same bytes suit every exporter: the file sink writes them as OTLP/JSON lines, a
 * remote exporter (later) sends them over OTLP as they are.
 *
 * Threading: submit, flush and healthy may be called from several shard threads at once; each
 * sink serialises internally. close is called once, after every other call has returned. */
#ifndef TT_COLLECTOR_SINK_H
#define TT_COLLECTOR_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct tt_sink_s tt_sink_t;

typedef struct {
  const char *name;
  /* Takes one batch: `req` is borrowed for the call. Returns 0, or a negative errno when the
   * batch was not written (the caller counts it as a failed export). */
  int (*submit)(tt_sink_t *s, const uint8_t *req, size_t len, size_t nspans);
  /* Pushes buffered data out (fflush, send queue). Returns 0 or a negative errno. */
  int (*flush)(tt_sink_t *s);
  /* False while the sink cannot deliver (for /readyz). */
  bool (*healthy)(tt_sink_t *s);
  /* Flushes and frees the sink. */
  void (*close)(tt_sink_t *s);
} tt_sink_vtable_t;

struct tt_sink_s {
  const tt_sink_vtable_t *vt;
};

/* Encoder used by the file sink: appends one line's worth for the request to out. Returns 0 or a
 * negative errno. tt__otlp_json_from_pb (otlp_json.h) has this shape. */
typedef int (*tt_sink_encode_fn)(const uint8_t *pb, size_t len, tt_buf_t *out);

typedef struct {
  const char *path;   /* copied */
  uint64_t max_bytes; /* rotate when the file would grow past this; 0: never */
  unsigned max_files; /* rotated files kept: path.1 .. path.N (N >= 1) */
  tt_sink_encode_fn encode;
  bool raw; /* false: each record is a line ('\n' appended); true: records written as encoded */
} tt_file_sink_opts_t;

/* Encoder for `sink.file.format: protobuf`: each batch as a varint length followed by the
 * ExportTraceServiceRequest bytes (the length-delimited framing protobuf tools read). */
int tt__sink_encode_delimited(const uint8_t *pb, size_t len, tt_buf_t *out);

/* Opens (appends to) the file sink. Returns 0 or a negative errno. Caller closes. */
int tt__sink_file_open(const tt_file_sink_opts_t *o, tt_sink_t **out);

/* A sink that discards everything and counts it (benchmarks, `sink: null`). */
tt_sink_t *tt__sink_null_new(void);
/* Spans a null sink has taken. */
uint64_t tt__sink_null_spans(tt_sink_t *s);

#endif
