/* Request splitting for the OTLP sink: see otlp_split.h.
 *
 * The input is turned into a stream of units, each the raw encoding of one field copied through
 * unchanged: a whole ResourceSpans (top-level field 1) when it fits in a request alone, else its
 * ScopeSpans one by one, else (for a ScopeSpans too big alone) its spans one by one. A packer
 * appends units to the current piece while the piece stays within the limit. Units below the
 * top level need their parents around them, so the packer keeps the ResourceSpans and ScopeSpans
 * it is filling open, and opens a fresh copy (header fields first) when a unit of another parent
 * or a new piece comes. The size of a piece with open parents is computed exactly, nested length
 * prefixes included, before a unit is added, so no piece goes over the limit unless it holds a
 * single unit that is itself too big. */
#include "otlp_split.h"

#include <errno.h>

#include "buf.h"
#include "wire.h"

/* Where a unit sits: rs == NULL for a top-level field; ss == NULL for a ScopeSpans field of a
 * ResourceSpans; both set for a span. The ids are the parents' addresses in the input, unique
 * within it; the headers are the parents' other fields, re-encoded in a copy of each parent. */
typedef struct {
  const uint8_t *rs, *ss;
  const tt_buf_t *rs_hdr, *ss_hdr;
  const uint8_t *p;
  size_t len;
  size_t nspans;
} unit_t;

typedef struct {
  size_t limit;
  tt_otlp_piece_fn fn;
  void *ctx;
  tt_otlp_split_stats_t *st;
  tt_buf_t out;                 /* the current piece's closed fields */
  tt_buf_t rs, ss;              /* payloads of the open ResourceSpans / ScopeSpans */
  const uint8_t *rs_id, *ss_id; /* the open parents; NULL when none */
  size_t nspans;                /* in the current piece */
} packer_t;

/* Encoded size of a length-delimited field 1 or 2 (one-byte tag) with `payload` bytes. */
static size_t framed(size_t payload) {
  return 1 + tt__varint_size(payload) + payload;
}

/* Size the open ScopeSpans adds to the open ResourceSpans' payload once closed. */
static size_t open_ss_size(const packer_t *k) {
  return k->ss_id != NULL ? framed(k->ss.len) : 0;
}

/* Size of the current piece if it were finished now. */
static size_t piece_size(const packer_t *k) {
  return k->out.len + (k->rs_id != NULL ? framed(k->rs.len + open_ss_size(k)) : 0);
}

/* Size of the current piece with u added. */
static size_t size_with(const packer_t *k, const unit_t *u) {
  if (u->rs == NULL)
    return piece_size(k) + u->len;
  if (u->ss == NULL) {
    if (k->rs_id == u->rs)
      return k->out.len + framed(k->rs.len + open_ss_size(k) + u->len);
    return piece_size(k) + framed(u->rs_hdr->len + u->len);
  }
  if (k->rs_id == u->rs && k->ss_id == u->ss)
    return k->out.len + framed(k->rs.len + framed(k->ss.len + u->len));
  if (k->rs_id == u->rs)
    return k->out.len + framed(k->rs.len + open_ss_size(k) + framed(u->ss_hdr->len + u->len));
  return piece_size(k) + framed(u->rs_hdr->len + framed(u->ss_hdr->len + u->len));
}

static int close_ss(packer_t *k) {
  int rc = 0;
  if (k->ss_id != NULL)
    rc = tt__buf_append_lenfield(&k->rs, 2, k->ss.data, k->ss.len);
  tt__buf_reset(&k->ss);
  k->ss_id = NULL;
  return rc;
}

static int close_rs(packer_t *k) {
  int rc = close_ss(k);
  if (k->rs_id != NULL && rc == 0)
    rc = tt__buf_append_lenfield(&k->out, 1, k->rs.data, k->rs.len);
  tt__buf_reset(&k->rs);
  k->rs_id = NULL;
  return rc;
}

static int flush_piece(packer_t *k) {
  int rc = close_rs(k);
  if (rc != 0 || k->out.len == 0)
    return rc;
  k->st->pieces++;
  k->st->spans += k->nspans;
  if (k->out.len > k->limit)
    k->st->oversized++;
  rc = k->fn(k->ctx, k->out.data, k->out.len, k->nspans);
  tt__buf_reset(&k->out);
  k->nspans = 0;
  return rc;
}

static int add_unit(packer_t *k, const unit_t *u) {
  int rc = 0;
  if (piece_size(k) > 0 && size_with(k, u) > k->limit) {
    rc = flush_piece(k);
    if (rc != 0)
      return rc;
  }
  if (u->rs == NULL) {
    rc = close_rs(k);
    if (rc == 0)
      rc = tt__buf_append(&k->out, u->p, u->len);
  } else {
    if (k->rs_id != u->rs) {
      rc = close_rs(k);
      if (rc == 0)
        rc = tt__buf_append(&k->rs, u->rs_hdr->data, u->rs_hdr->len);
      k->rs_id = u->rs;
    }
    if (rc == 0 && (u->ss == NULL || k->ss_id != u->ss))
      rc = close_ss(k);
    if (rc == 0 && u->ss == NULL) {
      rc = tt__buf_append(&k->rs, u->p, u->len);
    } else if (rc == 0) {
      if (k->ss_id == NULL) {
        rc = tt__buf_append(&k->ss, u->ss_hdr->data, u->ss_hdr->len);
        k->ss_id = u->ss;
      }
      if (rc == 0)
        rc = tt__buf_append(&k->ss, u->p, u->len);
    }
  }
  k->nspans += u->nspans;
  return rc;
}

/* Copies every field of a message but its field 2 (the repeated child) into hdr, in order, and
 * counts the children. Returns 0 or -EINVAL (a child that is not length-delimited too). */
static int split_header(const uint8_t *p, size_t len, tt_buf_t *hdr, size_t *nchildren) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  *nchildren = 0;
  tt__wire_reader_init(&r, p, len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field == 2) {
      if (f.wt != TT_WT_LEN)
        return -EINVAL;
      (*nchildren)++;
    } else if (hdr != NULL && tt__buf_append(hdr, f.start, (size_t)(f.end - f.start)) != 0) {
      return -ENOMEM;
    }
  }
  return rc;
}

/* Spans in one ResourceSpans payload; -EINVAL when malformed. */
static int count_rs(const uint8_t *p, size_t len, size_t *n) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  *n = 0;
  tt__wire_reader_init(&r, p, len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 2)
      continue;
    if (f.wt != TT_WT_LEN)
      return -EINVAL;
    size_t ns;
    rc = split_header(f.p, f.len, NULL, &ns);
    if (rc != 0)
      return rc;
    *n += ns;
  }
  return rc;
}

int tt__otlp_count_spans(const uint8_t *req, size_t len, size_t *n) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  *n = 0;
  tt__wire_reader_init(&r, req, len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 1)
      continue; /* unknown top-level fields are carried along, not counted */
    if (f.wt != TT_WT_LEN)
      return -EINVAL;
    size_t ns;
    rc = count_rs(f.p, f.len, &ns);
    if (rc != 0)
      return rc;
    *n += ns;
  }
  return rc;
}

/* Units of one ScopeSpans too big for a request alone: its spans. */
static int split_ss(packer_t *k, const uint8_t *rs_id, const tt_buf_t *rs_hdr,
                    const tt_wire_field_t *ssf, tt_buf_t *ss_hdr) {
  tt__buf_reset(ss_hdr);
  size_t nspans;
  int rc = split_header(ssf->p, ssf->len, ss_hdr, &nspans);
  if (rc != 0)
    return rc;
  if (nspans == 0) { /* nothing to cut between: it goes whole */
    unit_t u = {rs_id, NULL, rs_hdr, NULL, ssf->start, (size_t)(ssf->end - ssf->start), 0};
    return add_unit(k, &u);
  }
  tt_wire_reader_t r;
  tt_wire_field_t f;
  tt__wire_reader_init(&r, ssf->p, ssf->len);
  while (rc == 0 && tt__wire_next(&r, &f) == 1) {
    if (f.field != 2)
      continue;
    unit_t u = {rs_id, ssf->start, rs_hdr, ss_hdr, f.start, (size_t)(f.end - f.start), 1};
    rc = add_unit(k, &u);
  }
  return rc;
}

/* Units of one ResourceSpans too big for a request alone: its ScopeSpans, or their spans. */
static int split_rs(packer_t *k, const tt_wire_field_t *rsf, tt_buf_t *rs_hdr, tt_buf_t *ss_hdr) {
  tt__buf_reset(rs_hdr);
  size_t nscopes;
  int rc = split_header(rsf->p, rsf->len, rs_hdr, &nscopes);
  if (rc != 0)
    return rc;
  if (nscopes == 0) {
    unit_t u = {NULL, NULL, NULL, NULL, rsf->start, (size_t)(rsf->end - rsf->start), 0};
    return add_unit(k, &u);
  }
  tt_wire_reader_t r;
  tt_wire_field_t f;
  tt__wire_reader_init(&r, rsf->p, rsf->len);
  while (rc == 0 && tt__wire_next(&r, &f) == 1) {
    if (f.field != 2)
      continue;
    size_t enc = (size_t)(f.end - f.start);
    if (framed(rs_hdr->len + enc) > k->limit) {
      rc = split_ss(k, rsf->start, rs_hdr, &f, ss_hdr);
      continue;
    }
    size_t ns;
    rc = split_header(f.p, f.len, NULL, &ns);
    unit_t u = {rsf->start, NULL, rs_hdr, NULL, f.start, enc, ns};
    if (rc == 0)
      rc = add_unit(k, &u);
  }
  return rc;
}

int tt__otlp_split(const uint8_t *req, size_t len, size_t limit, tt_otlp_piece_fn fn, void *ctx,
                   tt_otlp_split_stats_t *st) {
  tt_otlp_split_stats_t dummy;
  if (st == NULL)
    st = &dummy;
  *st = (tt_otlp_split_stats_t){0, 0, 0};
  size_t total;
  int rc = tt__otlp_count_spans(req, len, &total);
  if (rc != 0)
    return rc;
  packer_t k = {.limit = limit, .fn = fn, .ctx = ctx, .st = st};
  k.out = k.rs = k.ss = (tt_buf_t)TT_BUF_INIT;
  tt_buf_t rs_hdr = TT_BUF_INIT, ss_hdr = TT_BUF_INIT;
  tt_wire_reader_t r;
  tt_wire_field_t f;
  tt__wire_reader_init(&r, req, len);
  /* The input was checked whole above, so the readers below cannot fail. */
  while (rc == 0 && tt__wire_next(&r, &f) == 1) {
    size_t enc = (size_t)(f.end - f.start);
    if (f.field == 1 && enc > limit) {
      rc = split_rs(&k, &f, &rs_hdr, &ss_hdr);
      continue;
    }
    size_t ns = 0;
    if (f.field == 1)
      rc = count_rs(f.p, f.len, &ns);
    unit_t u = {NULL, NULL, NULL, NULL, f.start, enc, ns};
    if (rc == 0)
      rc = add_unit(&k, &u);
  }
  if (rc == 0)
    rc = flush_piece(&k);
  tt__buf_free(&k.out);
  tt__buf_free(&k.rs);
  tt__buf_free(&k.ss);
  tt__buf_free(&rs_hdr);
  tt__buf_free(&ss_hdr);
  return rc;
}
