/* RESP2 encoder and incremental reply parser: see resp.h.
 *
 * The parser is a byte-at-a-time state machine (bulk payloads are copied in runs) so that a reply
 * split at any byte boundary parses the same as one fed whole, without ever re-reading bytes or
 * buffering a partial line outside its own node. Open arrays are a fixed stack of "elements still
 * to come" counters; a value completing decrements the innermost one and closes every array it
 * completes, so a reply ends exactly when its last value does. */
#include "resp.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { S_TYPE, S_LINE, S_LF, S_BULK, S_BULK_CR, S_BULK_LF };

#define DEF_MAX_BULK (1u << 20)
#define DEF_MAX_ELEMENTS 65536u
#define DEF_MAX_DEPTH 4u
#define DEF_MAX_NODES 65537u
#define DEF_MAX_BYTES (4u << 20)
/* 9223372036854775807 has 19 digits; a 20th could only overflow. */
#define MAX_DIGITS 19

void tt__resp_parser_init(tt_resp_parser_t *p, const tt_resp_limits_t *lim) {
  memset(p, 0, sizeof *p);
  if (lim != NULL)
    p->lim = *lim;
  if (p->lim.max_bulk == 0)
    p->lim.max_bulk = DEF_MAX_BULK;
  if (p->lim.max_elements == 0)
    p->lim.max_elements = DEF_MAX_ELEMENTS;
  if (p->lim.max_depth == 0)
    p->lim.max_depth = DEF_MAX_DEPTH;
  if (p->lim.max_depth > TT_RESP_DEPTH_MAX)
    p->lim.max_depth = TT_RESP_DEPTH_MAX;
  if (p->lim.max_nodes == 0)
    p->lim.max_nodes = DEF_MAX_NODES;
  if (p->lim.max_bytes == 0)
    p->lim.max_bytes = DEF_MAX_BYTES;
}

void tt__resp_parser_free(tt_resp_parser_t *p) {
  free(p->nodes);
  free(p->data);
  p->nodes = NULL;
  p->data = NULL;
  p->nodes_cap = p->data_cap = 0;
  tt__resp_parser_reset(p);
}

void tt__resp_parser_reset(tt_resp_parser_t *p) {
  p->nnodes = 0;
  p->data_len = 0;
  p->state = S_TYPE;
  p->depth = 0;
  p->error = 0;
}

/* Growth doubles but stops at the limit, so capacity never exceeds what the limits allow however
 * the bytes arrive. */
static int reserve_data(tt_resp_parser_t *p, size_t extra) {
  size_t need = p->data_len + extra;
  if (need > p->lim.max_bytes)
    return -E2BIG;
  if (need <= p->data_cap)
    return 0;
  size_t cap = p->data_cap < 256 ? 256 : p->data_cap;
  while (cap < need)
    cap = cap > p->lim.max_bytes / 2 ? p->lim.max_bytes : cap * 2;
  char *d = realloc(p->data, cap);
  if (d == NULL)
    return -ENOMEM;
  p->data = d;
  p->data_cap = cap;
  return 0;
}

static int new_node(tt_resp_parser_t *p, uint8_t type) {
  if (p->nnodes >= p->lim.max_nodes)
    return -E2BIG;
  if (p->nnodes == p->nodes_cap) {
    size_t cap = p->nodes_cap < 16 ? 16 : p->nodes_cap * 2;
    if (cap > p->lim.max_nodes)
      cap = p->lim.max_nodes;
    tt_resp_node_t *v = realloc(p->nodes, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    p->nodes = v;
    p->nodes_cap = cap;
  }
  tt_resp_node_t *n = &p->nodes[p->nnodes];
  memset(n, 0, sizeof *n);
  n->type = type;
  n->depth = (uint8_t)p->depth;
  n->off = p->data_len;
  p->cur = p->nnodes++;
  return 0;
}

/* A value is complete: it counts against the innermost open array, closing every array it
 * completes. 1 when that completes the reply. */
static int value_done(tt_resp_parser_t *p) {
  p->state = S_TYPE;
  while (p->depth > 0) {
    if (--p->left[p->depth - 1] > 0)
      return 0;
    p->depth--;
  }
  return 1;
}

/* The number line of ':', '$' or '*' ended: turn it into a value or open an array. */
static int number_done(tt_resp_parser_t *p) {
  if (p->ndigits == 0)
    return -EPROTO;
  if (p->type == ':') {
    if (p->num > (uint64_t)INT64_MAX + p->neg)
      return -EPROTO;
    int rc = new_node(p, TT_RESP_INTEGER);
    if (rc < 0)
      return rc;
    /* Two's complement negation of the magnitude: exact for INT64_MIN too. */
    p->nodes[p->cur].integer = p->neg ? (int64_t)(0 - p->num) : (int64_t)p->num;
    return value_done(p);
  }
  if (p->neg) {
    if (p->num != 1)
      return -EPROTO;
    int rc = new_node(p, TT_RESP_NIL);
    return rc < 0 ? rc : value_done(p);
  }
  if (p->type == '$') {
    /* Checked before a byte of it arrives: the announced size is refused, not allocated. */
    if (p->num > p->lim.max_bulk || p->num + 1 > p->lim.max_bytes - p->data_len)
      return -E2BIG;
    int rc = new_node(p, TT_RESP_BULK);
    if (rc < 0)
      return rc;
    p->nodes[p->cur].len = (size_t)p->num;
    p->remaining = (size_t)p->num;
    p->state = p->remaining > 0 ? S_BULK : S_BULK_CR;
    return 0;
  }
  /* '*': every element needs a node of its own, so an array that could not fit is refused
   * now. */
  if (p->num > p->lim.max_elements || p->depth + 1 > p->lim.max_depth ||
      p->num > p->lim.max_nodes - p->nnodes - 1)
    return -E2BIG;
  int rc = new_node(p, TT_RESP_ARRAY);
  if (rc < 0)
    return rc;
  p->nodes[p->cur].len = (size_t)p->num;
  if (p->num == 0)
    return value_done(p);
  p->left[p->depth++] = (size_t)p->num;
  p->state = S_TYPE;
  return 0;
}

static int line_done(tt_resp_parser_t *p) {
  if (p->type == '+' || p->type == '-') {
    int rc = reserve_data(p, 1);
    if (rc < 0)
      return rc;
    p->data[p->data_len++] = '\0';
    return value_done(p);
  }
  return number_done(p);
}

static int start_value(tt_resp_parser_t *p, uint8_t c) {
  p->type = c;
  p->neg = 0;
  p->ndigits = 0;
  p->num = 0;
  p->state = S_LINE;
  switch (c) {
    case '+':
      return new_node(p, TT_RESP_STATUS);
    case '-':
      return new_node(p, TT_RESP_ERROR);
    case ':':
    case '$':
    case '*':
      return 0;
    default:
      /* RESP3 types ('_', ',', '#', '%', '~', '>', ...) and inline garbage alike: this client
       * never asks for RESP3. */
      return -EPROTO;
  }
}

static int line_byte(tt_resp_parser_t *p, uint8_t c) {
  if (c == '\r') {
    p->state = S_LF;
    return 0;
  }
  if (c == '\n')
    return -EPROTO;
  if (p->type == '+' || p->type == '-') {
    tt_resp_node_t *n = &p->nodes[p->cur];
    if (n->len >= p->lim.max_bulk)
      return -E2BIG;
    /* One more for the NUL that ends the line. */
    int rc = reserve_data(p, 2);
    if (rc < 0)
      return rc;
    p->data[p->data_len++] = (char)c;
    n->len++;
    return 0;
  }
  if (c == '-' && p->ndigits == 0 && !p->neg) {
    p->neg = 1;
    return 0;
  }
  if (c < '0' || c > '9' || p->ndigits == MAX_DIGITS)
    return -EPROTO;
  p->num = p->num * 10 + (uint64_t)(c - '0');
  p->ndigits++;
  return 0;
}

int tt__resp_feed(tt_resp_parser_t *p, const void *buf, size_t len, size_t *used) {
  const uint8_t *b = buf;
  size_t i = 0;
  int rc = p->error;
  if (rc != 0) {
    *used = 0;
    return rc;
  }
  /* A reply completed by the previous feed is forgotten as the next one starts. */
  if (p->state == S_TYPE && p->depth == 0 && len > 0) {
    p->nnodes = 0;
    p->data_len = 0;
  }
  while (i < len && rc == 0) {
    switch (p->state) {
      case S_TYPE:
        rc = start_value(p, b[i++]);
        break;
      case S_LINE:
        rc = line_byte(p, b[i++]);
        break;
      case S_LF:
        rc = b[i++] == '\n' ? line_done(p) : -EPROTO;
        break;
      case S_BULK: {
        size_t take = len - i < p->remaining ? len - i : p->remaining;
        /* Room for the whole announced bulk and its NUL was checked against the limits when its
         * length was read; memory follows the bytes that actually came. */
        rc = reserve_data(p, take + 1);
        if (rc < 0)
          break;
        memcpy(p->data + p->data_len, b + i, take);
        p->data_len += take;
        p->remaining -= take;
        i += take;
        if (p->remaining == 0)
          p->state = S_BULK_CR;
        break;
      }
      case S_BULK_CR:
        rc = b[i++] == '\r' ? 0 : -EPROTO;
        p->state = S_BULK_LF;
        break;
      default: /* S_BULK_LF */
        if (b[i++] != '\n') {
          rc = -EPROTO;
          break;
        }
        rc = reserve_data(p, 1);
        if (rc == 0) {
          p->data[p->data_len++] = '\0';
          rc = value_done(p);
        }
        break;
    }
  }
  *used = i;
  if (rc < 0)
    p->error = rc;
  return rc;
}

static size_t dec_len(size_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

static size_t put_header(char *out, char type, size_t v) {
  size_t n = dec_len(v);
  out[0] = type;
  for (size_t k = n; k > 0; k--) {
    out[k] = (char)('0' + v % 10);
    v /= 10;
  }
  out[n + 1] = '\r';
  out[n + 2] = '\n';
  return n + 3;
}

long tt__resp_encode(tt_buf_t *out, size_t argc, const char *const *argv, const size_t *lens) {
  if (argc == 0)
    return -EINVAL;
  size_t total = 1 + dec_len(argc) + 2;
  for (size_t i = 0; i < argc; i++)
    total += 1 + dec_len(lens[i]) + 2 + lens[i] + 2;
  if (total > (size_t)LONG_MAX || tt__buf_reserve(out, total) != 0)
    return -ENOMEM;
  char *w = (char *)out->data + out->len;
  w += put_header(w, '*', argc);
  for (size_t i = 0; i < argc; i++) {
    w += put_header(w, '$', lens[i]);
    if (lens[i] > 0)
      memcpy(w, argv[i], lens[i]);
    w += lens[i];
    *w++ = '\r';
    *w++ = '\n';
  }
  out->len += total;
  return (long)total;
}
