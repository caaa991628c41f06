/* header_use.c: compiled as C99, C11, C++11 and C++20 with -Wall -Wextra -Werror by
 * test_install.py, to show tailtrace.h is usable from each: the attribute macros, the inline
 * fast paths, the scope macro and the options structs, written the way the docs show them. Only
 * compiled, never linked: the header alone is under test. */
#include <string.h>
#include <tailtrace.h>

int header_use(const char *route);

int header_use(const char *route) {
  tt_attribute_t attrs[] = {TT_STR("http.route", route), TT_INT("http.status_code", 200),
                            TT_DOUBLE("load", 0.5), TT_BOOL("cache.hit", 1)};
  tt_span_options_t so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.kind = TT_SPAN_KIND_SERVER;
  so.attributes = attrs;
  so.attribute_count = sizeof attrs / sizeof attrs[0];
  tt_span_t *server = tt_span_start(tt_tracer_get("header-use", "1.0"), "GET /", &so);
  {
    TT_SPAN(child, "work");
    tt_span_set_int(child, "items", 3);
  }
  tt_span_set_status(server, TT_STATUS_OK, NULL);
  tt_span_end(server);
  tt_otlp_options_t oo;
  memset(&oo, 0, sizeof oo);
  oo.size = sizeof oo;
  oo.protocol = TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  return attrs[1].value.i == 200 && oo.protocol != 0 ? 0 : 1;
}
