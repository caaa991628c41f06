/* Span API: attributes, events, links, status, names, parents, current span, scope macro, ids,
 * limits and stats, observed through the in-memory exporter. */
#include "tt_test_util.h"

#include <stddef.h>

#include "internal.h"

static tt_memory_exporter_t *start(void) {
  return test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
}

static void flush(void) {
  assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
}

/* A remote parent as a server sees it: W3C's example traceparent, with tracestate rojo=1. */
static void extract_remote_parent(tt_remote_context_t *rc) {
  test_carrier_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  test_carrier_set(c, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  test_carrier_set(c, "tracestate", "rojo=1");
  assert_int_equal(tt_extract(test_carrier_get, c, rc), 0);
  free(c);
}

static void span_calls_should_be_noops_before_init(void **state) {
  (void)state;
  tt_span_t *s = tt_span_start(NULL, "x", NULL);
  assert_null(s);
  tt_span_set_int(s, "k", 1);
  tt_span_add_event(s, "e", NULL, 0);
  tt_span_end(s);
  assert_int_equal(tt_flush(test_deadline_ms(10)), TT_ENOTINIT);
  assert_int_equal(tt_shutdown(test_deadline_ms(10)), 0);
  TT_SPAN(sc, "scoped");
  assert_null(sc);
  assert_null(tt_current_span());
}

static void span_should_export_attributes_of_every_type(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "attrs", NULL);
  assert_non_null(s);
  assert_true(tt_span_is_recording(s));
  tt_span_set_str(s, "s", "hello");
  tt_span_set_strn(s, "sn", "hello world", 5);
  tt_span_set_int(s, "i", -42);
  tt_span_set_double(s, "d", 2.5);
  tt_span_set_bool(s, "b", 1);
  const char *strs[] = {"x", "yy"};
  int64_t ints[] = {1, 2, 3};
  double dbls[] = {0.5};
  uint8_t bools[] = {1, 0};
  tt_attribute_t arr[] = {
      {.key = "sa", .type = TT_ATTR_STRING_ARRAY, .value.array = {strs, 2}},
      {.key = "ia", .type = TT_ATTR_INT_ARRAY, .value.array = {ints, 3}},
      {.key = "da", .type = TT_ATTR_DOUBLE_ARRAY, .value.array = {dbls, 1}},
      {.key = "ba", .type = TT_ATTR_BOOL_ARRAY, .value.array = {bools, 2}},
  };
  tt_span_set_attributes(s, arr, 4);
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "attrs");
  assert_non_null(d);
  assert_int_equal(d->attribute_count, 9);
  assert_string_equal(tt_span_data_attribute(d, "s")->value.str.ptr, "hello");
  assert_int_equal(tt_span_data_attribute(d, "sn")->value.str.len, 5);
  assert_string_equal(tt_span_data_attribute(d, "sn")->value.str.ptr, "hello");
  assert_int_equal(tt_span_data_attribute(d, "i")->value.i, -42);
  assert_true(tt_span_data_attribute(d, "d")->value.d == 2.5);
  assert_int_equal(tt_span_data_attribute(d, "b")->value.b, 1);
  const tt_attribute_t *sa = tt_span_data_attribute(d, "sa");
  assert_int_equal(sa->type, TT_ATTR_STRING_ARRAY);
  assert_int_equal(sa->value.array.count, 2);
  assert_string_equal(((const char *const *)sa->value.array.items)[1], "yy");
  const tt_attribute_t *ia = tt_span_data_attribute(d, "ia");
  assert_int_equal(((const int64_t *)ia->value.array.items)[2], 3);
  assert_int_equal(((const uint8_t *)tt_span_data_attribute(d, "ba")->value.array.items)[0], 1);
  assert_int_equal(d->kind, TT_SPAN_KIND_INTERNAL);
  assert_true(d->end_time_unix_ns >= d->start_time_unix_ns);
  assert_non_null(d->resource);
  assert_string_equal(d->scope->name, "tailtrace");
  test_finish(m);
}

static void set_attribute_should_replace_existing_key(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "dup", NULL);
  tt_span_set_int(s, "k", 1);
  tt_span_set_str(s, "k", "two");
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "dup");
  assert_int_equal(d->attribute_count, 1);
  assert_int_equal(d->attributes[0].type, TT_ATTR_STRING);
  assert_string_equal(d->attributes[0].value.str.ptr, "two");
  test_finish(m);
}

/* The duplicate check skips its scan when a key's filter bit is clear; with 100 keys every bit
 * is set and many keys share a fingerprint, so this exercises both the skip and the scan. */
static void set_attribute_should_replace_every_key_among_many(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "many", NULL);
  char key[16];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 100; i++) {
      snprintf(key, sizeof key, "key.%d", i);
      tt_span_set_int(s, key, round * 1000 + i);
    }
  }
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "many");
  assert_int_equal(d->attribute_count, 100);
  assert_int_equal(d->dropped_attributes_count, 0);
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "key.%d", i);
    const tt_attribute_t *a = tt_span_data_attribute(d, key);
    assert_non_null(a);
    assert_int_equal(a->value.i, 1000 + i);
  }
  test_finish(m);
}

static void span_should_carry_events_links_status_and_new_name(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *other = tt_span_start(
      NULL, "other",
      &(tt_span_options_t){.size = sizeof(tt_span_options_t), .parent_mode = TT_PARENT_NONE});
  tt_span_context_t oc;
  tt_span_get_context(other, &oc);
  tt_attribute_t la[] = {TT_STR("link.kind", "follows")};
  tt_link_t link = {.context = oc, .tracestate = "a=b", .attributes = la, .attribute_count = 1};
  tt_span_options_t o = {.size = sizeof o,
                         .kind = TT_SPAN_KIND_SERVER,
                         .links = &link,
                         .link_count = 1,
                         .start_time_unix_ns = 1000};
  tt_span_t *s = tt_span_start(tt_tracer_get("my.lib", "1.2"), "before", &o);
  tt_attribute_t ea[] = {TT_INT("n", 7), TT_BOOL("ok", 0)};
  tt_span_add_event_at(s, "ev", 1500, ea, 2);
  tt_span_add_event(s, "ev2", NULL, 0);
  tt_span_update_name(s, "after");
  tt_span_set_status(s, TT_STATUS_ERROR, "boom");
  tt_span_end_at(s, 2000);
  tt_span_end(other);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "after");
  assert_non_null(d);
  assert_int_equal(d->kind, TT_SPAN_KIND_SERVER);
  assert_int_equal(d->start_time_unix_ns, 1000);
  assert_int_equal(d->end_time_unix_ns, 2000);
  assert_string_equal(d->scope->name, "my.lib");
  assert_string_equal(d->scope->version, "1.2");
  assert_int_equal(d->event_count, 2);
  assert_string_equal(d->events[0].name, "ev");
  assert_int_equal(d->events[0].time_unix_ns, 1500);
  assert_int_equal(d->events[0].attribute_count, 2);
  assert_int_equal(d->events[0].attributes[0].value.i, 7);
  assert_int_equal(d->link_count, 1);
  assert_memory_equal(d->links[0].context.span_id, oc.span_id, 8);
  assert_string_equal(d->links[0].tracestate, "a=b");
  assert_string_equal(d->links[0].attributes[0].value.str.ptr, "follows");
  assert_int_equal(d->status_code, TT_STATUS_ERROR);
  assert_string_equal(d->status_message, "boom");
  test_finish(m);
}

static void status_ok_should_be_final_and_drop_description(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "ok", NULL);
  tt_span_set_status(s, TT_STATUS_OK, "ignored");
  tt_span_set_status(s, TT_STATUS_ERROR, "too late");
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "ok");
  assert_int_equal(d->status_code, TT_STATUS_OK);
  assert_string_equal(d->status_message, "");
  test_finish(m);
}

static void record_exception_should_add_event_and_set_error(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "exc", NULL);
  tt_span_record_exception(s, "IOError", "disk full", "main()\nwrite()");
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "exc");
  assert_int_equal(d->status_code, TT_STATUS_ERROR);
  assert_string_equal(d->status_message, "disk full");
  assert_int_equal(d->event_count, 1);
  assert_string_equal(d->events[0].name, "exception");
  assert_int_equal(d->events[0].attribute_count, 3);
  assert_string_equal(d->events[0].attributes[0].key, "exception.type");
  assert_string_equal(d->events[0].attributes[0].value.str.ptr, "IOError");
  assert_string_equal(d->events[0].attributes[2].key, "exception.stacktrace");
  test_finish(m);
}

static void child_should_follow_current_explicit_and_remote_parents(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *root = tt_span_start(NULL, "root", NULL);
  tt_span_t *prev = tt_make_current(root);
  assert_null(prev);
  assert_ptr_equal(tt_current_span(), root);
  tt_span_t *child = tt_span_start(NULL, "child", NULL);
  tt_restore_current(prev);
  tt_span_t *orphan = tt_span_start(NULL, "new-root", NULL);
  tt_span_t *explicit_child = tt_span_start(NULL, "explicit",
                                            &(tt_span_options_t){.size = sizeof(tt_span_options_t),
                                                                 .parent_mode = TT_PARENT_SPAN,
                                                                 .parent = child});
  static tt_remote_context_t rc;
  extract_remote_parent(&rc);
  tt_span_t *server = tt_span_start(NULL, "server",
                                    &(tt_span_options_t){.size = sizeof(tt_span_options_t),
                                                         .kind = TT_SPAN_KIND_SERVER,
                                                         .parent_mode = TT_PARENT_REMOTE,
                                                         .remote = &rc});
  tt_span_end(server);
  tt_span_end(explicit_child);
  tt_span_end(orphan);
  tt_span_end(child);
  tt_span_end(root);
  flush();
  const tt_span_data_t *r = tt_memory_exporter_find(m, "root");
  const tt_span_data_t *ch = tt_memory_exporter_find(m, "child");
  const tt_span_data_t *nr = tt_memory_exporter_find(m, "new-root");
  const tt_span_data_t *ex = tt_memory_exporter_find(m, "explicit");
  const tt_span_data_t *sv = tt_memory_exporter_find(m, "server");
  assert_false(r->has_parent);
  assert_true(ch->has_parent);
  assert_memory_equal(ch->trace_id, r->trace_id, 16);
  assert_memory_equal(ch->parent_span_id, r->span_id, 8);
  assert_false(nr->has_parent);
  assert_memory_not_equal(nr->trace_id, r->trace_id, 16);
  assert_memory_equal(ex->parent_span_id, ch->span_id, 8);
  assert_memory_equal(ex->trace_id, r->trace_id, 16);
  char hex[33];
  tt_span_context_t sc;
  memcpy(sc.trace_id, sv->trace_id, 16);
  tt_trace_id_hex(&sc, hex);
  assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(sv->tracestate, "rojo=1");
  assert_int_equal(sv->flags & 0x300,
                   TT_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | TT_SPAN_FLAGS_CONTEXT_IS_REMOTE);
  assert_int_equal(ch->flags & 0x300, TT_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE);
  test_finish(m);
}

static int scoped_work(int fail) {
  TT_SPAN(s, fail ? "scoped-fail" : "scoped-ok");
  assert_ptr_equal(tt_current_span(), s);
  {
    TT_SPAN(inner, "inner");
    assert_ptr_equal(tt_current_span(), inner);
    if (fail)
      return -1; /* both spans must end on this path */
  }
  assert_ptr_equal(tt_current_span(), s);
  return 0;
}

static void scope_macro_should_end_span_on_every_exit_path(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  assert_int_equal(scoped_work(1), -1);
  assert_null(tt_current_span());
  assert_int_equal(scoped_work(0), 0);
  assert_null(tt_current_span());
  flush();
  assert_int_equal(tt_memory_exporter_count(m), 4);
  const tt_span_data_t *f = tt_memory_exporter_find(m, "scoped-fail");
  assert_non_null(f);
  /* The first "inner" is the child of scoped-fail. */
  const tt_span_data_t *in = tt_memory_exporter_find(m, "inner");
  assert_memory_equal(in->parent_span_id, f->span_id, 8);
  test_finish(m);
}

static void ids_should_be_random_and_carry_the_random_flag(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_context_t a, b;
  tt_span_t *s1 = tt_span_start(NULL, "a", NULL);
  tt_span_t *s2 = tt_span_start(
      NULL, "b",
      &(tt_span_options_t){.size = sizeof(tt_span_options_t), .parent_mode = TT_PARENT_NONE});
  tt_span_get_context(s1, &a);
  tt_span_get_context(s2, &b);
  assert_true(tt_span_context_is_valid(&a));
  assert_memory_not_equal(a.trace_id, b.trace_id, 16);
  assert_memory_not_equal(a.span_id, b.span_id, 8);
  assert_true(a.trace_flags & TT_TRACE_FLAG_RANDOM);
  assert_true(tt_span_context_is_sampled(&a));
  char h[33], sh[17];
  tt_trace_id_hex(&a, h);
  tt_span_id_hex(&a, sh);
  assert_int_equal(strlen(h), 32);
  assert_int_equal(strlen(sh), 16);
  for (int i = 0; i < 32; i++)
    assert_true((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'));
  tt_span_end(s1);
  tt_span_end(s2);
  test_finish(m);
}

static void limits_should_drop_and_count_over_the_environment_limits(void **state) {
  (void)state;
  setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2", 1);
  setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4", 1);
  setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "1", 1);
  setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "1", 1);
  setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "1", 1);
  tt_memory_exporter_t *m = start();
  unsetenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT");
  unsetenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
  unsetenv("OTEL_SPAN_EVENT_COUNT_LIMIT");
  unsetenv("OTEL_SPAN_LINK_COUNT_LIMIT");
  unsetenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT");
  tt_span_t *s = tt_span_start(NULL, "limited", NULL);
  tt_span_set_str(s, "a", "abcdefgh");
  tt_span_set_str(s, "u", "\xc3\xa9\xc3\xa9\xc3\xa9"); /* 3 two-byte characters */
  tt_span_set_int(s, "c", 3);                          /* third: dropped */
  tt_span_set_int(s, "a", 1);                          /* replacing is not adding */
  tt_attribute_t ea[] = {TT_INT("x", 1), TT_INT("y", 2)};
  tt_span_add_event(s, "e1", ea, 2);
  tt_span_add_event(s, "e2", NULL, 0);
  tt_span_context_t ctx;
  tt_span_get_context(s, &ctx);
  tt_link_t l = {.context = ctx};
  tt_span_add_link(s, &l);
  tt_span_add_link(s, &l);
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "limited");
  assert_int_equal(d->attribute_count, 2);
  assert_int_equal(d->dropped_attributes_count, 1);
  assert_int_equal(tt_span_data_attribute(d, "a")->value.i, 1);
  const tt_attribute_t *u = tt_span_data_attribute(d, "u");
  assert_int_equal(u->value.str.len, 4); /* cut on a character boundary */
  assert_int_equal(d->event_count, 1);
  assert_int_equal(d->dropped_events_count, 1);
  assert_int_equal(d->events[0].attribute_count, 1);
  assert_int_equal(d->events[0].dropped_attributes_count, 1);
  assert_int_equal(d->link_count, 1);
  assert_int_equal(d->dropped_links_count, 1);
  tt_stats_t st = {.size = sizeof st};
  assert_int_equal(tt_stats_get(&st), 0);
  assert_true(st.dropped_attributes >= 4);
  test_finish(m);
}

/* The length limit counts bytes and never leaves half a character: 5 bytes of "ééé" (2-byte
 * characters) keep 4, 5 bytes of "€€" (3-byte characters) keep 3. A limit that falls on a
 * boundary would pass even without the back-up, so neither does. */
static void length_limit_should_not_split_a_utf8_character(void **state) {
  (void)state;
  setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5", 1); /* the general limit, as the default */
  tt_memory_exporter_t *m = start();
  unsetenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT");
  tt_span_t *s = tt_span_start(NULL, "utf8", NULL);
  tt_span_set_str(s, "two", "\xc3\xa9\xc3\xa9\xc3\xa9");
  tt_span_set_str(s, "three", "\xe2\x82\xac\xe2\x82\xac");
  tt_span_set_str(s, "ascii", "abcdefgh");
  tt_span_set_strn(s, "null", NULL, 5); /* NULL is empty, whatever the length */
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "utf8");
  assert_non_null(d);
  assert_int_equal(tt_span_data_attribute(d, "two")->value.str.len, 4);
  assert_int_equal(tt_span_data_attribute(d, "three")->value.str.len, 3);
  assert_int_equal(tt_span_data_attribute(d, "ascii")->value.str.len, 5);
  assert_int_equal(tt_span_data_attribute(d, "null")->value.str.len, 0);
  test_finish(m);
}

/* The API specification records a link to an invalid context when it has attributes or a
 * tracestate; a bare invalid link is ignored and not counted as dropped. */
static void
link_to_an_invalid_context_should_be_kept_only_with_attributes_or_tracestate(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "zero-links", NULL);
  tt_attribute_t la[] = {TT_STR("why", "upstream dropped the context")};
  tt_link_t bare = {0}, with_attr = {.attributes = la, .attribute_count = 1},
            with_ts = {.tracestate = "k=v"};
  tt_span_add_link(s, &bare);
  tt_span_add_link(s, &with_attr);
  tt_span_add_link(s, &with_ts);
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "zero-links");
  assert_non_null(d);
  assert_int_equal(d->link_count, 2);
  assert_int_equal(d->dropped_links_count, 0);
  static const uint8_t zero[16];
  assert_memory_equal(d->links[0].context.trace_id, zero, 16);
  assert_int_equal(d->links[0].attribute_count, 1);
  assert_string_equal(d->links[1].tracestate, "k=v");
  test_finish(m);
}

/* A kind outside the enum would be exported as a number OTLP gives no meaning. */
static void unknown_span_kind_should_become_internal(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_options_t o = {.size = sizeof o, .kind = (tt_span_kind_t)42};
  tt_span_end(tt_span_start(NULL, "odd-kind", &o));
  o.kind = TT_SPAN_KIND_CONSUMER;
  tt_span_end(tt_span_start(NULL, "consumer", &o));
  flush();
  assert_int_equal(tt_memory_exporter_find(m, "odd-kind")->kind, TT_SPAN_KIND_INTERNAL);
  assert_int_equal(tt_memory_exporter_find(m, "consumer")->kind, TT_SPAN_KIND_CONSUMER);
  test_finish(m);
}

static void record_storage_overflow_should_drop_not_crash(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "big", NULL);
  char val[1000];
  memset(val, 'v', sizeof val - 1);
  val[sizeof val - 1] = '\0';
  for (int i = 0; i < 100; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    tt_span_set_str(s, key, val);
  }
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "big");
  assert_true(d->attribute_count > 0);
  assert_int_equal(d->attribute_count + d->dropped_attributes_count, 100);
  test_finish(m);
}

/* Values that fill the record and several extension records; every byte must come back. The
 * extension list lives in the record's last 64 bytes, so an arena that ran into it would corrupt
 * either the values or the list (and the records handed back after export). Value lengths step
 * through 180..339 bytes, one span per length, so in some span a value ends in every part of a
 * record; later spans reuse the records earlier ones gave back. */
static void values_spilling_into_extension_records_should_round_trip(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  static char vals[40][341];
  for (int len = 180; len < 340; len++) {
    char name[16];
    snprintf(name, sizeof name, "spill%d", len);
    tt_span_t *s = tt_span_start(NULL, name, NULL);
    for (int i = 0; i < 40; i++) {
      for (int k = 0; k < len; k++)
        vals[i][k] = (char)('a' + (i * 31 + k * 7 + len) % 26);
      vals[i][len] = '\0';
      char key[16];
      snprintf(key, sizeof key, "v%d", i);
      tt_span_set_str(s, key, vals[i]);
    }
    tt_span_end(s);
    flush();
    const tt_span_data_t *d = tt_memory_exporter_find(m, name);
    assert_non_null(d);
    assert_int_equal(d->attribute_count + d->dropped_attributes_count, 40);
    assert_true(d->attribute_count >= 20); /* 8 records of 4 KB hold at least this many */
    for (int i = 0; i < (int)d->attribute_count; i++) {
      char key[16];
      snprintf(key, sizeof key, "v%d", i);
      const tt_attribute_t *a = tt_span_data_attribute(d, key);
      assert_non_null(a);
      assert_string_equal(a->value.str.ptr, vals[i]);
    }
  }
  test_finish(m);
}

static void keys_and_values_of_every_short_length_should_round_trip(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "lengths", NULL);
  char keys[40][41], vals[40][41];
  for (int n = 1; n <= 40; n++) {
    for (int i = 0; i < n; i++) {
      keys[n - 1][i] = (char)('a' + (i + n) % 26);
      vals[n - 1][i] = (char)('A' + (i * 7 + n) % 26);
    }
    keys[n - 1][n] = vals[n - 1][n] = '\0';
    tt_span_set_str(s, keys[n - 1], vals[n - 1]);
  }
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "lengths");
  assert_int_equal(d->attribute_count, 40);
  for (int n = 1; n <= 40; n++) {
    const tt_attribute_t *a = tt_span_data_attribute(d, keys[n - 1]);
    assert_non_null(a);
    assert_int_equal(a->value.str.len, n);
    assert_string_equal(a->value.str.ptr, vals[n - 1]);
  }
  test_finish(m);
}

/* A plain span writes only its record's first two cache lines and trusts the rest to hold their
 * defaults (internal.h). So a record that last carried every extra (attributes, events, links,
 * error status, tracestate, a long name, extension records), or that served as an extension
 * record and holds raw arena bytes, must still come out as a plain span with nothing left over.
 * The records are recognised by address so the test knows the reuse it checks took place. */
static void plain_spans_on_reused_records_should_carry_nothing_of_earlier_spans(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  enum { RICH = 14, PLAIN = 120 };
  static tt_remote_context_t rc;
  extract_remote_parent(&rc);
  static char big[700];
  memset(big, 'q', sizeof big - 1); /* raw letters land on an extension record's header bytes */
  static char long_name[TT__RECORD_SIZE]; /* longer than a record's arena: needs an extension */
  memset(long_name, 'n', sizeof long_name - 1);
  const void *heads[RICH], *exts[RICH * TT__MAX_EXT];
  size_t nexts = 0;
  for (int round = 0; round < 3; round++) {
    tt_memory_exporter_reset(m);
    /* One extra per span, so each is checked on its own; the last kind has them all. */
    for (int i = 0; i < RICH; i++) {
      int kind = i % 7;
      tt_span_t *other = tt_span_start(NULL, "other", NULL);
      tt_span_context_t oc;
      tt_span_get_context(other, &oc);
      tt_link_t link = {.context = oc, .tracestate = "a=b"};
      tt_span_options_t o = {.size = sizeof o};
      if (kind == 0 || kind == 6) {
        o.parent_mode = TT_PARENT_REMOTE;
        o.remote = &rc;
      }
      if (kind == 3 || kind == 6) {
        o.links = &link;
        o.link_count = 1;
      }
      tt_span_t *s = tt_span_start(NULL, kind == 5 ? long_name : "rich", &o);
      if (kind == 1 || kind == 6)
        for (int k = 0; k < 12; k++) {
          char key[16];
          snprintf(key, sizeof key, "big%d", k);
          tt_span_set_str(s, key, big);
        }
      if (kind == 2 || kind == 6)
        tt_span_add_event(s, "ev", NULL, 0);
      if (kind == 4 || kind == 6)
        tt_span_set_status(s, TT_STATUS_ERROR, "boom");
      if (kind == 1 || kind == 5 || kind == 6)
        assert_true(s->n_ext > 0);
      heads[i] = s;
      for (uint32_t x = 0; x < s->n_ext; x++)
        exts[nexts++ % (RICH * TT__MAX_EXT)] = TT__EXTS(s)[x];
      tt_span_end(s);
      tt_span_end(other);
    }
    flush();
    assert_non_null(tt_memory_exporter_find(m, long_name));
    tt_memory_exporter_reset(m);
    int reused_head = 0, reused_ext = 0;
    /* All open at once: an ended plain span's record is reused by the next start at once, so
     * only spans open together reach past the thread's free records to the exported ones. */
    tt_span_t *open[PLAIN];
    for (int i = 0; i < PLAIN; i++) {
      tt_span_t *s = open[i] = tt_span_start(NULL, "plain", NULL);
      for (int k = 0; k < RICH; k++)
        reused_head += (const void *)s == heads[k];
      for (size_t k = 0; k < nexts && k < RICH * TT__MAX_EXT; k++)
        reused_ext += (const void *)s == exts[k];
    }
    for (int i = 0; i < PLAIN; i++)
      tt_span_end(open[i]);
    flush();
    assert_true(reused_head > 0);
    assert_true(reused_ext > 0);
    size_t plain = 0;
    for (size_t i = 0; i < tt_memory_exporter_count(m); i++) {
      const tt_span_data_t *d = tt_memory_exporter_get(m, i);
      if (strcmp(d->name, "plain") != 0)
        continue;
      plain++;
      test_assert_plain_span(d);
    }
    assert_int_equal(plain, PLAIN);
  }
  test_finish(m);
}

/* Names under 24 bytes live in the record's header, longer ones in its arena; every length on
 * both sides of that line, at start and through update_name, must come back whole. */
static void names_of_every_length_around_the_inline_limit_should_round_trip(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  char names[48][49], renamed[48][50];
  tt_span_context_t ctx[48];
  for (int n = 0; n < 48; n++) {
    for (int i = 0; i < n; i++)
      names[n][i] = (char)('a' + (i * 5 + n) % 26);
    names[n][n] = '\0';
    renamed[n][0] = 'R';
    memcpy(renamed[n] + 1, names[n], (size_t)n + 1);
    tt_span_t *s = tt_span_start(NULL, names[n], NULL);
    tt_span_set_int(s, "n", n);
    tt_span_end(s);
    /* Renamed to one byte longer, from every length to the next: crosses the limit once. */
    tt_span_t *r = tt_span_start(NULL, names[n], NULL);
    tt_span_get_context(r, &ctx[n]);
    tt_span_update_name(r, renamed[n]);
    tt_span_set_int(r, "renamed", n);
    tt_span_end(r);
  }
  flush();
  int seen = 0, seen_renamed = 0;
  for (size_t i = 0; i < tt_memory_exporter_count(m); i++) {
    const tt_span_data_t *d = tt_memory_exporter_get(m, i);
    const tt_attribute_t *a = tt_span_data_attribute(d, "n");
    const tt_attribute_t *b = tt_span_data_attribute(d, "renamed");
    if (a != NULL) {
      assert_string_equal(d->name, names[a->value.i]);
      seen++;
    } else {
      assert_non_null(b);
      assert_string_equal(d->name, renamed[b->value.i]);
      /* the header's bytes next to the name are the trace id: a name one byte too long for the
       * inline buffer would overwrite it */
      assert_memory_equal(d->trace_id, ctx[b->value.i].trace_id, 16);
      seen_renamed++;
    }
  }
  assert_int_equal(seen, 48);
  assert_int_equal(seen_renamed, 48);
  test_finish(m);
}

static void default_limit_of_128_attributes_should_fit_and_the_129th_drop(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "many-attrs", NULL);
  for (int i = 0; i < 129; i++) {
    char key[32];
    snprintf(key, sizeof key, "app.attribute.%d", i);
    tt_span_set_int(s, key, i);
  }
  tt_span_end(s);
  flush();
  const tt_span_data_t *d = tt_memory_exporter_find(m, "many-attrs");
  assert_int_equal(d->attribute_count, 128);
  assert_int_equal(d->dropped_attributes_count, 1);
  assert_int_equal(tt_span_data_attribute(d, "app.attribute.127")->value.i, 127);
  assert_null(tt_span_data_attribute(d, "app.attribute.128"));
  test_finish(m);
}

static void stats_should_count_started_ended_and_exported(void **state) {
  (void)state;
  tt_stats_t before = {.size = sizeof before}, after = {.size = sizeof after};
  tt_stats_get(&before);
  tt_memory_exporter_t *m = start();
  for (int i = 0; i < 10; i++)
    tt_span_end(tt_span_start(NULL, "n", NULL));
  flush();
  tt_stats_get(&after);
  assert_int_equal(after.spans_started - before.spans_started, 10);
  assert_int_equal(after.spans_ended - before.spans_ended, 10);
  assert_int_equal(after.spans_exported - before.spans_exported, 10);
  assert_int_equal(tt_memory_exporter_count(m), 10);
  tt_stats_t bad = {.size = 3};
  assert_int_equal(tt_stats_get(&bad), TT_EINVAL);
  /* An older caller's struct ends after spans_ended: it gets those, and nothing past its size is
   * written (the 0xff bytes stand for whatever the caller keeps there). */
  union {
    tt_stats_t st;
    unsigned char bytes[sizeof(tt_stats_t)];
  } old;
  size_t old_size = offsetof(tt_stats_t, spans_exported);
  memset(old.bytes, 0xff, sizeof old.bytes);
  old.st.size = old_size;
  assert_int_equal(tt_stats_get(&old.st), 0);
  assert_int_equal(old.st.size, old_size);
  assert_int_equal(old.st.spans_ended, after.spans_ended);
  for (size_t i = old_size; i < sizeof old.bytes; i++)
    assert_int_equal(old.bytes[i], 0xff);
  test_finish(m);
}

static void span_ended_after_shutdown_should_be_dropped_and_counted(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_span_t *s = tt_span_start(NULL, "late", NULL);
  assert_int_equal(tt_shutdown(test_deadline_ms(5000)), 0);
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  tt_span_set_int(s, "k", 1);
  tt_span_end(s);
  tt_stats_get(&b);
  assert_int_equal(b.dropped_shutdown - a.dropped_shutdown, 1);
  assert_null(tt_memory_exporter_find(m, "late"));
  assert_null(tt_span_start(NULL, "after", NULL));
  tt_memory_exporter_free(m);
}

static void init_should_refuse_a_second_provider(void **state) {
  (void)state;
  tt_memory_exporter_t *m = start();
  tt_options_t o = {.size = sizeof o};
  assert_int_equal(tt_init(&o), TT_EBUSY);
  assert_string_equal(tt_strerror(TT_EBUSY), "already initialised or in use");
  assert_string_equal(tt_strerror(12345), "unknown error");
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(span_calls_should_be_noops_before_init),
      cmocka_unit_test(span_should_export_attributes_of_every_type),
      cmocka_unit_test(set_attribute_should_replace_existing_key),
      cmocka_unit_test(set_attribute_should_replace_every_key_among_many),
      cmocka_unit_test(span_should_carry_events_links_status_and_new_name),
      cmocka_unit_test(status_ok_should_be_final_and_drop_description),
      cmocka_unit_test(record_exception_should_add_event_and_set_error),
      cmocka_unit_test(child_should_follow_current_explicit_and_remote_parents),
      cmocka_unit_test(scope_macro_should_end_span_on_every_exit_path),
      cmocka_unit_test(ids_should_be_random_and_carry_the_random_flag),
      cmocka_unit_test(limits_should_drop_and_count_over_the_environment_limits),
      cmocka_unit_test(length_limit_should_not_split_a_utf8_character),
      cmocka_unit_test(unknown_span_kind_should_become_internal),
      cmocka_unit_test(
          link_to_an_invalid_context_should_be_kept_only_with_attributes_or_tracestate),
      cmocka_unit_test(record_storage_overflow_should_drop_not_crash),
      cmocka_unit_test(keys_and_values_of_every_short_length_should_round_trip),
      cmocka_unit_test(values_spilling_into_extension_records_should_round_trip),
      cmocka_unit_test(plain_spans_on_reused_records_should_carry_nothing_of_earlier_spans),
      cmocka_unit_test(names_of_every_length_around_the_inline_limit_should_round_trip),
      cmocka_unit_test(default_limit_of_128_attributes_should_fit_and_the_129th_drop),
      cmocka_unit_test(stats_should_count_started_ended_and_exported),
      cmocka_unit_test(span_ended_after_shutdown_should_be_dropped_and_counted),
      cmocka_unit_test(init_should_refuse_a_second_provider),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
