/* RESP2, the Redis protocol, as far as the decision bus needs it: commands encoded as arrays of
 * bulk strings, and an incremental parser for the replies (+simple, -error, :integer, $bulk and
 * nil, *array and nil, nested arrays). Pure functions on buffers, no I/O: the caller reads bytes
 * from wherever (a socket, TLS, a fuzzer) and feeds them in chunks of any size.
 *
 * Every length is bounded by tt_resp_limits_t: a bulk string or an array longer than its limit,
 * a reply nested too deep or holding too many values or bytes is a protocol error as soon as its
 * header is read. Memory grows only with the bytes actually received, never with a length the
 * peer announced, and never past the limits.
 *
 * Threading: a parser belongs to one thread at a time; the encoder is reentrant. */
#ifndef TT_COLLECTOR_DECIDE_RESP_H
#define TT_COLLECTOR_DECIDE_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Depth of the parser's fixed stack: the most nested arrays any limits may allow. */
#define TT_RESP_DEPTH_MAX 16

typedef enum {
  TT_RESP_STATUS = 1, /* +OK */
  TT_RESP_ERROR,      /* -ERR ... */
  TT_RESP_INTEGER,    /* :42 */
  TT_RESP_BULK,       /* $3 foo */
  TT_RESP_NIL,        /* $-1 or *-1 */
  TT_RESP_ARRAY       /* *n: the n values follow it in the node list */
} tt_resp_type_t;

/* One parsed value. A reply is a list of nodes in prefix order: an array's node comes first,
 * followed by its elements (and theirs, recursively). */
typedef struct {
  uint8_t type;  /* tt_resp_type_t */
  uint8_t depth; /* 0 for the reply itself, 1 for the elements of a top-level array, ... */
  size_t len;    /* STATUS, ERROR, BULK: bytes; ARRAY: elements; else 0 */
  int64_t integer;
  size_t off; /* STATUS, ERROR, BULK: offset of the bytes (then a NUL) in tt_resp_parser_t.data */
} tt_resp_node_t;

typedef struct {
  size_t max_bulk;     /* longest bulk string or status/error line, bytes */
  size_t max_elements; /* longest array */
  unsigned max_depth;  /* deepest array nesting: 1 = arrays of scalars only; <= TT_RESP_DEPTH_MAX */
  size_t max_nodes;    /* values in one reply, the reply itself included */
  size_t max_bytes;    /* bytes of strings held for one reply, one NUL per string included */
} tt_resp_limits_t;

/* The parser's state. Treat every field as private except nodes, nnodes and data, which are the
 * last complete reply, valid from a return of 1 until the next feed or reset. */
typedef struct {
  tt_resp_limits_t lim;
  tt_resp_node_t *nodes;
  size_t nnodes, nodes_cap;
  char *data;
  size_t data_len, data_cap;
  /* Where the parser is inside the current reply. */
  uint8_t state;
  uint8_t type;                   /* type byte of the value being read */
  uint8_t neg;                    /* a '-' opened the number being read */
  uint8_t ndigits;                /* digits of that number so far */
  uint64_t num;                   /* its magnitude so far */
  size_t remaining;               /* bulk bytes still to come */
  size_t cur;                     /* node being filled (STATUS, ERROR, BULK) */
  unsigned depth;                 /* open arrays */
  size_t left[TT_RESP_DEPTH_MAX]; /* elements still to come in each open array */
  int error; /* sticky: once a stream is broken, every feed fails until reset */
} tt_resp_parser_t;

/* Limits for a parser; any 0 field takes the default (1 MiB strings, 65536 elements, depth 4,
 * 65537 nodes, 4 MiB of bytes). max_depth above TT_RESP_DEPTH_MAX is lowered to it. lim may be
 * NULL: every default. */
void tt__resp_parser_init(tt_resp_parser_t *p, const tt_resp_limits_t *lim);

/* Frees the parser's memory; it may be initialised again. */
void tt__resp_parser_free(tt_resp_parser_t *p);

/* Forgets the reply being read (or the last one) and any error, keeping the memory, so that the
 * next byte fed starts a new reply. */
void tt__resp_parser_reset(tt_resp_parser_t *p);

/* Feeds len bytes. Consumes bytes up to the end of the first reply that completes within them,
 * or all of them; *used says how many. Returns 1 when a reply completed (read it in p->nodes, then
 * feed the rest of the bytes, which starts the next reply), 0 when every byte was consumed and the
 * reply is not complete yet, -EPROTO for bytes that are not RESP2 (RESP3 types included), -E2BIG
 * for a value past a limit, -ENOMEM. An error is sticky until tt__resp_parser_reset: the stream
 * cannot be resynchronised, the connection must go. */
int tt__resp_feed(tt_resp_parser_t *p, const void *buf, size_t len, size_t *used);

/* The bytes of node i (STATUS, ERROR, BULK), NUL-terminated; "" for other types. */
static inline const char *tt__resp_str(const tt_resp_parser_t *p, size_t i) {
  const tt_resp_node_t *n = &p->nodes[i];
  return n->type == TT_RESP_STATUS || n->type == TT_RESP_ERROR || n->type == TT_RESP_BULK
             ? p->data + n->off
             : "";
}

/* Appends one command, an array of argc bulk strings (lens[i] bytes at argv[i]; arguments may
 * hold any byte), to out. Returns the number of bytes appended, -EINVAL for argc 0, or -ENOMEM
 * (then out holds what it held before). */
long tt__resp_encode(tt_buf_t *out, size_t argc, const char *const *argv, const size_t *lens);

#endif
