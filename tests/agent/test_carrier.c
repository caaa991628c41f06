/* Header carriers (tt_headers_t): inject/extract round trips through a caller's array, HTTP's
 * case-insensitive names, repeated headers, and the bounds of the caller's storage. */
#include "tt_test_util.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void headers_should_round_trip_traceparent_tracestate_and_baggage(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
  /* What a server parsed off the wire, referenced in place, with names in mixed case. */
  static const char raw_tp[] = TP, raw_ts[] = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE",
                    raw_bg[] = "user.id=42,tier=gold%20plus";
  tt_header_t in_items[8];
  char in_store[1024];
  tt_headers_t in;
  tt_headers_init(&in, in_items, 8, in_store, sizeof in_store);
  assert_int_equal(tt_headers_add(&in, "Host", 4, "example", 7), 0);
  assert_int_equal(tt_headers_add(&in, "TraceParent", 11, raw_tp, sizeof raw_tp - 1), 0);
  assert_int_equal(tt_headers_add(&in, "TRACESTATE", 10, raw_ts, sizeof raw_ts - 1), 0);
  assert_int_equal(tt_headers_add(&in, "Baggage", 7, raw_bg, sizeof raw_bg - 1), 0);

  static tt_remote_context_t remote, back;
  static tt_baggage_t baggage;
  assert_int_equal(tt_extract(tt_headers_carrier_get, &in, &remote), 0);
  assert_int_equal(tt_extract_baggage(tt_headers_carrier_get, &in, &baggage), 0);
  assert_int_equal(in.error, 0);
  char hex[33];
  tt_trace_id_hex(&remote.span_context, hex);
  assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(remote.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  size_t len;
  const char *tier = tt_baggage_get(&baggage, "tier", &len);
  assert_non_null(tier);
  assert_int_equal(len, 9);
  assert_memory_equal(tier, "gold plus", 9);

  /* A client continues the trace and injects into its own outgoing headers (copied). */
  tt_span_options_t o = {.size = sizeof o,
                         .kind = TT_SPAN_KIND_CLIENT,
                         .parent_mode = TT_PARENT_REMOTE,
                         .remote = &remote};
  tt_span_t *s = tt_span_start(NULL, "GET /inventory", &o);
  tt_header_t out_items[8];
  char out_store[2048];
  tt_headers_t out;
  tt_headers_init(&out, out_items, 8, out_store, sizeof out_store);
  assert_int_equal(tt_headers_set(&out, "Accept", "*/*"), 0);
  assert_int_equal(tt_inject(s, &baggage, tt_headers_carrier_set, &out), 0);
  assert_int_equal(out.error, 0);
  assert_int_equal(out.count, 4);
  assert_int_equal(tt_extract(tt_headers_carrier_get, &out, &back), 0);
  tt_span_context_t sc;
  tt_span_get_context(s, &sc);
  assert_memory_equal(back.span_context.trace_id, sc.trace_id, 16);
  assert_memory_equal(back.span_context.span_id, sc.span_id, 8);
  assert_string_equal(back.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  assert_string_equal(tt_headers_get(&out, "baggage"), "user.id=42,tier=gold%20plus");

  /* Written out, the carrier is a block of request header lines. */
  char wire[1024];
  int n = tt_headers_format(&out, wire, sizeof wire);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(wire));
  assert_non_null(strstr(wire, "Accept: */*\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  assert_non_null(strstr(wire, "\r\nbaggage: user.id=42,tier=gold%20plus\r\n"));
  tt_span_end(s);
  test_finish(m);
}

static void get_should_match_names_case_insensitively(void **state) {
  (void)state;
  tt_header_t items[4];
  char store[256];
  tt_headers_t h;
  tt_headers_init(&h, items, 4, store, sizeof store);
  assert_int_equal(tt_headers_set(&h, "X-Request-Id", "abc"), 0);
  assert_string_equal(tt_headers_get(&h, "x-request-id"), "abc");
  assert_string_equal(tt_headers_get(&h, "X-REQUEST-ID"), "abc");
  assert_null(tt_headers_get(&h, "x-request"));
  assert_null(tt_headers_get(&h, "x-request-idx"));
  /* set replaces whatever case the existing name had, keeping one header in its place. */
  assert_int_equal(tt_headers_set(&h, "Other", "1"), 0);
  assert_int_equal(tt_headers_set(&h, "x-request-ID", "def"), 0);
  assert_int_equal(h.count, 2);
  assert_string_equal(tt_headers_get(&h, "X-Request-Id"), "def");
  assert_memory_equal(h.items[0].name, "x-request-ID", 12);
  assert_int_equal(h.error, 0);
}

static void repeated_headers_should_be_joined_and_replaced_together(void **state) {
  (void)state;
  tt_header_t items[6];
  char store[256];
  tt_headers_t h;
  tt_headers_init(&h, items, 6, store, sizeof store);
  assert_int_equal(tt_headers_add(&h, "baggage", 7, "a=1", 3), 0);
  assert_int_equal(tt_headers_add(&h, "Accept", 6, "*/*", 3), 0);
  assert_int_equal(tt_headers_add(&h, "Baggage", 7, "b=2", 3), 0);
  assert_string_equal(tt_headers_get(&h, "baggage"), "a=1,b=2");
  tt_remote_context_t rc;
  assert_int_equal(tt_extract(tt_headers_carrier_get, &h, &rc), TT_ENOTFOUND);
  static tt_baggage_t bg;
  assert_int_equal(tt_extract_baggage(tt_headers_carrier_get, &h, &bg), 0);
  assert_non_null(tt_baggage_get(&bg, "a", NULL));
  assert_non_null(tt_baggage_get(&bg, "b", NULL));
  /* append copies: the caller's buffer may change right after the call. */
  char piece[8] = "d=4";
  assert_int_equal(tt_headers_append(&h, "BAGGAGE", 7, piece, 3), 0);
  memcpy(piece, "XXX", 3);
  assert_string_equal(tt_headers_get(&h, "baggage"), "a=1,b=2,d=4");
  assert_int_equal(h.count, 4);
  /* Replacing keeps the first occurrence's slot and removes the later ones. */
  assert_int_equal(tt_headers_set(&h, "BAGGAGE", "c=3"), 0);
  assert_int_equal(h.count, 2);
  assert_string_equal(tt_headers_get(&h, "baggage"), "c=3");
  assert_memory_equal(h.items[1].name, "Accept", 6);
}

static void
set_should_fail_with_enospc_and_leave_headers_unchanged_when_storage_is_full(void **state) {
  (void)state;
  tt_header_t items[2];
  char store[32];
  tt_headers_t h;
  tt_headers_init(&h, items, 2, store, sizeof store);
  assert_int_equal(tt_headers_set(&h, "a", "1234567890"), 0); /* 1+1 + 10+1 = 13 bytes */
  /* 14 + 2 more bytes than the 19 left. */
  assert_int_equal(tt_headers_set(&h, "b", "12345678901234567"), TT_ENOSPC);
  assert_int_equal(tt_headers_append(&h, "b", 1, "12345678901234567", 17), TT_ENOSPC);
  assert_int_equal(h.count, 1);
  assert_int_equal(h.used, 13);
  assert_int_equal(tt_headers_set(&h, "b", "1"), 0);
  /* No slot left for a third name, even though bytes remain. */
  assert_int_equal(tt_headers_set(&h, "c", "1"), TT_ENOSPC);
  assert_int_equal(tt_headers_add(&h, "c", 1, "1", 1), TT_ENOSPC);
  assert_int_equal(tt_headers_append(&h, "c", 1, "1", 1), TT_ENOSPC);
  assert_int_equal(h.used, 13 + 4);
  assert_int_equal(h.count, 2);
  assert_string_equal(tt_headers_get(&h, "a"), "1234567890");
}

static void inject_should_report_enospc_in_error_when_the_store_is_too_small(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
  tt_span_t *s = tt_span_start(NULL, "client", NULL);
  tt_header_t items[4];
  char store[40]; /* "traceparent" + a 55-character value does not fit */
  tt_headers_t h;
  tt_headers_init(&h, items, 4, store, sizeof store);
  assert_int_equal(tt_inject(s, NULL, tt_headers_carrier_set, &h), 0);
  assert_int_equal(h.error, TT_ENOSPC);
  assert_int_equal(h.count, 0);
  tt_span_end(s);
  test_finish(m);
}

static void get_should_return_null_and_set_error_when_the_joined_value_does_not_fit(void **state) {
  (void)state;
  tt_header_t items[2];
  char store[TT_TRACEPARENT_LEN]; /* the value fits, its NUL does not */
  tt_headers_t h;
  tt_headers_init(&h, items, 2, store, sizeof store);
  assert_int_equal(tt_headers_add(&h, "traceparent", 11, TP, TT_TRACEPARENT_LEN), 0);
  static tt_remote_context_t rc;
  assert_int_equal(tt_extract(tt_headers_carrier_get, &h, &rc), TT_ENOTFOUND);
  assert_int_equal(h.error, TT_ENOSPC);
  /* A reference-only carrier (no store) can hold headers but never read them back. */
  tt_headers_init(&h, items, 2, NULL, 0);
  assert_int_equal(tt_headers_add(&h, "traceparent", 11, TP, TT_TRACEPARENT_LEN), 0);
  assert_null(tt_headers_get(&h, "traceparent"));
  assert_int_equal(h.error, TT_ENOSPC);
}

static void bad_names_and_values_should_be_refused_with_einval(void **state) {
  (void)state;
  tt_header_t items[4];
  char store[128];
  tt_headers_t h;
  tt_headers_init(&h, items, 4, store, sizeof store);
  assert_int_equal(tt_headers_set(&h, "", "v"), TT_EINVAL);
  assert_int_equal(tt_headers_set(&h, "bad name", "v"), TT_EINVAL);
  assert_int_equal(tt_headers_set(&h, "x:y", "v"), TT_EINVAL);
  assert_int_equal(tt_headers_set(&h, "x", "a\r\nInjected: 1"), TT_EINVAL);
  assert_int_equal(tt_headers_add(&h, "x", 1, "a\0b", 3), TT_EINVAL);
  assert_int_equal(tt_headers_add(&h, "x", 1, NULL, 1), TT_EINVAL);
  assert_int_equal(tt_headers_set(NULL, "x", "v"), TT_EINVAL);
  assert_int_equal(tt_headers_append(&h, "x y", 3, "v", 1), TT_EINVAL);
  assert_int_equal(tt_headers_append(&h, "x", 1, "v\n", 2), TT_EINVAL);
  assert_int_equal(h.count, 0);
  assert_int_equal(h.used, 0);
  /* An empty value is a header like any other. */
  assert_int_equal(tt_headers_add(&h, "x", 1, NULL, 0), 0);
  assert_string_equal(tt_headers_get(&h, "X"), "");
}

static void format_should_refuse_an_output_buffer_too_small(void **state) {
  (void)state;
  tt_header_t items[2];
  char store[64], out[16];
  tt_headers_t h;
  tt_headers_init(&h, items, 2, store, sizeof store);
  assert_int_equal(tt_headers_set(&h, "a", "1"), 0);
  assert_int_equal(tt_headers_format(&h, out, sizeof out), 6);
  assert_string_equal(out, "a: 1\r\n");
  assert_int_equal(tt_headers_set(&h, "bbbb", "22222"), 0);
  assert_int_equal(tt_headers_format(&h, out, sizeof out), TT_ENOSPC);
  assert_string_equal(out, "");
}

/* A plain model of the carrier: what it must hold after each call. */
typedef struct model_s {
  int n;
  char name[8][16];
  char value[8][32];
  size_t used;
} model_t;

static void random_string(unsigned *seed, const char *alphabet, size_t max, char *out) {
  size_t len = (size_t)rand_r(seed) % (max + 1), k = strlen(alphabet);
  for (size_t i = 0; i < len; i++)
    out[i] = alphabet[(size_t)rand_r(seed) % k];
  out[len] = '\0';
}

/* Random appends, sets and gets (fixed seed, bounded count) against the model: the same headers
 * in the same order, the same joins, ENOSPC exactly when the slots or bytes run out. */
static void random_calls_should_match_a_plain_model(void **state) {
  (void)state;
  static const char *names[] = {"a", "A", "traceparent", "TraceParent", "baggage", "x-y"};
  unsigned seed = 19;
  tt_header_t items[8];
  char store[256];
  tt_headers_t h;
  model_t m;
  for (int round = 0; round < 200; round++) {
    tt_headers_init(&h, items, 8, store, sizeof store);
    memset(&m, 0, sizeof m);
    for (int op = 0; op < 40; op++) {
      const char *name = names[(size_t)rand_r(&seed) % 6];
      char value[32];
      random_string(&seed, "abc019=,; ", 20, value);
      size_t nl = strlen(name), vl = strlen(value);
      int kind = rand_r(&seed) % 3;
      if (kind == 0) {
        int want = m.n == 8 || sizeof store - m.used < nl + vl + 2 ? TT_ENOSPC : 0;
        assert_int_equal(tt_headers_append(&h, name, nl, value, vl), want);
        if (want == 0) {
          strcpy(m.name[m.n], name);
          strcpy(m.value[m.n++], value);
          m.used += nl + vl + 2;
        }
      } else if (kind == 1) {
        int first = -1;
        for (int i = 0; i < m.n && first < 0; i++)
          if (strcasecmp(m.name[i], name) == 0)
            first = i;
        int want = (first < 0 && m.n == 8) || sizeof store - m.used < nl + vl + 2 ? TT_ENOSPC : 0;
        assert_int_equal(tt_headers_set(&h, name, value), want);
        if (want == 0) {
          m.used += nl + vl + 2;
          if (first < 0)
            first = m.n++;
          strcpy(m.name[first], name);
          strcpy(m.value[first], value);
          int o = first + 1;
          for (int i = first + 1; i < m.n; i++) {
            if (strcasecmp(m.name[i], name) == 0)
              continue;
            memmove(m.name[o], m.name[i], sizeof m.name[o]);
            memmove(m.value[o], m.value[i], sizeof m.value[o]);
            o++;
          }
          m.n = o;
        }
      } else {
        char joined[512] = "";
        int found = 0;
        for (int i = 0; i < m.n; i++)
          if (strcasecmp(m.name[i], name) == 0) {
            if (found++)
              strcat(joined, ",");
            strcat(joined, m.value[i]);
          }
        h.error = 0;
        const char *got = tt_headers_get(&h, name);
        if (!found) {
          assert_null(got);
          assert_int_equal(h.error, 0);
        } else if (strlen(joined) + 1 > sizeof store - m.used) {
          assert_null(got);
          assert_int_equal(h.error, TT_ENOSPC);
        } else {
          assert_non_null(got);
          assert_string_equal(got, joined);
        }
      }
      assert_int_equal(h.count, (size_t)m.n);
      assert_int_equal(h.used, m.used);
      for (int i = 0; i < m.n; i++) {
        assert_int_equal(h.items[i].name_len, strlen(m.name[i]));
        assert_memory_equal(h.items[i].name, m.name[i], h.items[i].name_len);
        assert_int_equal(h.items[i].value_len, strlen(m.value[i]));
        assert_memory_equal(h.items[i].value, m.value[i], h.items[i].value_len);
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(headers_should_round_trip_traceparent_tracestate_and_baggage),
      cmocka_unit_test(get_should_match_names_case_insensitively),
      cmocka_unit_test(repeated_headers_should_be_joined_and_replaced_together),
      cmocka_unit_test(
          set_should_fail_with_enospc_and_leave_headers_unchanged_when_storage_is_full),
      cmocka_unit_test(inject_should_report_enospc_in_error_when_the_store_is_too_small),
      cmocka_unit_test(get_should_return_null_and_set_error_when_the_joined_value_does_not_fit),
      cmocka_unit_test(bad_names_and_values_should_be_refused_with_einval),
      cmocka_unit_test(format_should_refuse_an_output_buffer_too_small),
      cmocka_unit_test(random_calls_should_match_a_plain_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
