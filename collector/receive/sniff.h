/* Which protocol a connection speaks, told from its first bytes.
 *
 * Both receivers look at a new connection's first bytes before their own protocol runs, so a
 * client pointed at the wrong port gets an answer it can report (a 505 naming the right port, a
 * TLS alert) instead of frames it cannot read. The client speaks first in all three protocols
 * (an HTTP/1.1 request line, the HTTP/2 connection preface, a TLS ClientHello), so the first
 * bytes are always there to look at. */
#ifndef TT_COLLECTOR_SNIFF_H
#define TT_COLLECTOR_SNIFF_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  TT_SNIFF_MORE = 0, /* too few bytes to tell yet */
  TT_SNIFF_HTTP2,    /* the HTTP/2 connection preface ("PRI * HTTP/2.0...", RFC 9113 3.4) */
  TT_SNIFF_HTTP1,    /* an HTTP/1.x request line: a method token and a space */
  TT_SNIFF_TLS,      /* a TLS handshake record (a ClientHello) */
  TT_SNIFF_OTHER     /* none of these */
} tt_sniff_t;

/* The HTTP/2 connection preface, 24 bytes; its first four ("PRI ") tell it. */
extern const char tt__h2_preface[];
#define TT_H2_PREFACE_LEN 24

/* Classifies the first n bytes of a connection. Asking again with more bytes never changes an
 * answer other than TT_SNIFF_MORE. The preface is told from a method token by its first four
 * bytes, and TT_SNIFF_MORE is never answered for more than 20 bytes. */
tt_sniff_t tt__sniff(const uint8_t *b, size_t n);

#endif
