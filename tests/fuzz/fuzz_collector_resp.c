/* Fuzz target: the RESP2 reply parser of the decision bus (collector/decide/resp.c), which reads
 * whatever a Redis node, or anything listening where one was expected, sends. Arbitrary bytes
 * are fed three ways: whole, one byte at a time, and in pseudo-random chunk sizes drawn from a
 * hash of the input. The three must agree on every reply and on the final outcome (the parser is
 * incremental: chunking must not matter), every reply must be well formed (array counts match
 * the nodes that follow, strings lie inside the data and end with a NUL), and memory must stay
 * within the limits at every step, errors included. The input, cut into arguments, also drives
 * the encoder, whose output must parse back into the same arguments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const tt_resp_limits_t limits = {
    .max_bulk = 4096, .max_elements = 64, .max_depth = 4, .max_nodes = 256, .max_bytes = 8192};

static void check_bounds(const tt_resp_parser_t *p) {
  if (p->data_cap > limits.max_bytes || p->nodes_cap > limits.max_nodes ||
      p->data_len > p->data_cap || p->nnodes > p->nodes_cap || p->depth > limits.max_depth)
    abort();
}

/* Walks the value at *i (prefix order) and returns after it; aborts on any inconsistency. */
static void check_value(const tt_resp_parser_t *p, size_t *i, unsigned depth) {
  if (*i >= p->nnodes)
    abort();
  const tt_resp_node_t *n = &p->nodes[*i];
  if (n->depth != depth)
    abort();
  (*i)++;
  switch (n->type) {
    case TT_RESP_STATUS:
    case TT_RESP_ERROR:
    case TT_RESP_BULK:
      if (n->len > limits.max_bulk || n->off + n->len >= p->data_len ||
          p->data[n->off + n->len] != '\0')
        abort();
      if (n->type != TT_RESP_BULK && memchr(p->data + n->off, '\r', n->len) != NULL)
        abort();
      break;
    case TT_RESP_INTEGER:
    case TT_RESP_NIL:
      if (n->len != 0)
        abort();
      break;
    case TT_RESP_ARRAY:
      if (n->len > limits.max_elements || depth + 1 > limits.max_depth)
        abort();
      for (size_t k = 0; k < n->len; k++)
        check_value(p, i, depth + 1);
      break;
    default:
      abort();
  }
}

static void transcript_reply(const tt_resp_parser_t *p, tt_buf_t *t) {
  size_t i = 0;
  check_value(p, &i, 0);
  if (i != p->nnodes)
    abort();
  for (i = 0; i < p->nnodes; i++) {
    const tt_resp_node_t *n = &p->nodes[i];
    tt__buf_append(t, n, offsetof(tt_resp_node_t, off));
    if (n->type == TT_RESP_STATUS || n->type == TT_RESP_ERROR || n->type == TT_RESP_BULK)
      tt__buf_append(t, p->data + n->off, n->len);
  }
  tt__buf_append(t, "|", 1);
}

/* Parses data in chunks (chunk 0: whole; 1: bytes; else pseudo-random sizes from seed) into a
 * transcript of the replies and the final result. */
static void run(const uint8_t *data, size_t size, int mode, uint64_t seed, tt_buf_t *t) {
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, &limits);
  size_t at = 0;
  int rc = 0;
  while (at < size && rc >= 0) {
    size_t n = size - at;
    if (mode == 1) {
      n = 1;
    } else if (mode == 2) {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      size_t want = 1 + (size_t)(seed % 64);
      n = want < n ? want : n;
    }
    size_t off = 0;
    while (off < n) {
      size_t used = 0;
      rc = tt__resp_feed(&p, data + at + off, n - off, &used);
      if (used > n - off)
        abort();
      check_bounds(&p);
      off += used;
      if (rc < 0)
        break;
      if (rc == 1)
        transcript_reply(&p, t);
      else if (off != n)
        abort(); /* 0 means every byte was taken */
    }
    at += n;
  }
  int end = rc < 0 ? rc : (p.state == 0 && p.depth == 0 ? 0 : 1);
  tt__buf_append(t, &end, sizeof end);
  if (rc < 0) {
    /* Sticky until reset, and usable after it. */
    size_t used = 1;
    if (tt__resp_feed(&p, "+OK\r\n", 5, &used) != rc || used != 0)
      abort();
    tt__resp_parser_reset(&p);
    if (tt__resp_feed(&p, "+OK\r\n", 5, &used) != 1 || strcmp(tt__resp_str(&p, 0), "OK") != 0)
      abort();
  }
  tt__resp_parser_free(&p);
}

/* The input cut at 0xff bytes into at most 16 arguments, encoded, must parse back to them. */
static void encode_round_trip(const uint8_t *data, size_t size) {
  const char *argv[16];
  size_t lens[16], argc = 0, start = 0;
  for (size_t i = 0; i <= size && argc < 16; i++)
    if (i == size || data[i] == 0xff) {
      argv[argc] = (const char *)data + start;
      lens[argc++] = i - start;
      start = i + 1;
    }
  tt_buf_t b = TT_BUF_INIT;
  long n = tt__resp_encode(&b, argc, argv, lens);
  if (n < 0 || (size_t)n != b.len)
    abort();
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  size_t used = 0;
  if (tt__resp_feed(&p, b.data, b.len, &used) != 1 || used != b.len || p.nnodes != argc + 1 ||
      p.nodes[0].type != TT_RESP_ARRAY || p.nodes[0].len != argc)
    abort();
  for (size_t i = 0; i < argc; i++)
    if (p.nodes[1 + i].type != TT_RESP_BULK || p.nodes[1 + i].len != lens[i] ||
        memcmp(tt__resp_str(&p, 1 + i), argv[i], lens[i]) != 0)
      abort();
  tt__resp_parser_free(&p);
  tt__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t seed = 0xcbf29ce484222325ull; /* FNV-1a of the input: same input, same chunks */
  for (size_t i = 0; i < size; i++)
    seed = (seed ^ data[i]) * 0x100000001b3ull;
  if (seed == 0)
    seed = 1;
  tt_buf_t t[3] = {TT_BUF_INIT, TT_BUF_INIT, TT_BUF_INIT};
  for (int mode = 0; mode < 3; mode++)
    run(data, size, mode, seed, &t[mode]);
  for (int mode = 1; mode < 3; mode++)
    if (t[mode].len != t[0].len || (t[0].len > 0 && memcmp(t[mode].data, t[0].data, t[0].len) != 0))
      abort();
  for (int mode = 0; mode < 3; mode++)
    tt__buf_free(&t[mode]);
  if (size <= 4096)
    encode_round_trip(data, size);
  return 0;
}
