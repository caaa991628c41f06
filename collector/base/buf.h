/* A growable byte buffer used across the collector (codec output, HTTP responses, batches).
 * Owner: whoever holds the struct; not thread-safe. Functions return 0 or -ENOMEM. */
#ifndef TT_COLLECTOR_BUF_H
#define TT_COLLECTOR_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t *data;
  size_t len;
  size_t cap;
} tt_buf_t;

#define TT_BUF_INIT                                                                                \
  { NULL, 0, 0 }

/* Makes room for at least `extra` more bytes. */
int tt__buf_reserve(tt_buf_t *b, size_t extra);
int tt__buf_append(tt_buf_t *b, const void *data, size_t len);
int tt__buf_append_str(tt_buf_t *b, const char *s);
/* printf-style append; the result is not NUL-terminated unless the caller appends one. */
int tt__buf_appendf(tt_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Protobuf varint and tag helpers, for code that frames wire bytes by hand. */
int tt__buf_append_varint(tt_buf_t *b, uint64_t v);
int tt__buf_append_tag(tt_buf_t *b, uint32_t field, uint32_t wire_type);
/* A length-delimited field: tag, length, then the len bytes at p. */
int tt__buf_append_lenfield(tt_buf_t *b, uint32_t field, const void *p, size_t len);
/* A fixed-width field, little-endian: width 8 is fixed64/double (wire type 1), 4 is fixed32. */
int tt__buf_append_fixed(tt_buf_t *b, uint32_t field, uint64_t v, size_t width);
/* Bytes the varint encoding of v takes (1 to 10): for sizing nested lengths up front. */
size_t tt__varint_size(uint64_t v);
/* Empties the buffer but keeps its memory. */
void tt__buf_reset(tt_buf_t *b);
/* Gives back memory beyond max(len, keep) bytes of capacity. A failed shrink keeps the old block:
 * nothing is lost, the memory just stays. For long-lived buffers that one large message grew. */
void tt__buf_shrink(tt_buf_t *b, size_t keep);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void tt__buf_free(tt_buf_t *b);

#endif
