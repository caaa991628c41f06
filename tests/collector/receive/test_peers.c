/* The per-address connection counts behind the receivers' per-address cap
 * (collector/receive/peers.c), checked against a plain array model under churn. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peers.h"

static tt_peer_addr_t v4(uint32_t host) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(host);
  tt_peer_addr_t a;
  assert_int_equal(tt__peer_addr_from_sockaddr((struct sockaddr *)&sa, &a), 0);
  return a;
}

static void an_ipv4_address_should_equal_its_mapped_ipv6_form(void **state) {
  (void)state;
  tt_peer_addr_t a = v4(0x7f000001);
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
  tt_peer_addr_t b;
  assert_int_equal(tt__peer_addr_from_sockaddr((struct sockaddr *)&s6, &b), 0);
  assert_memory_equal(a.b, b.b, 16);
  char buf[64];
  tt__peer_addr_format(&a, buf, sizeof buf);
  assert_string_equal(buf, "127.0.0.1");
  inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
  tt__peer_addr_from_sockaddr((struct sockaddr *)&s6, &b);
  tt__peer_addr_format(&b, buf, sizeof buf);
  assert_string_equal(buf, "2001:db8::1");
  struct sockaddr un = {.sa_family = AF_UNIX};
  assert_int_equal(tt__peer_addr_from_sockaddr(&un, &b), -EAFNOSUPPORT);
}

static void counts_should_match_a_model_under_random_churn(void **state) {
  (void)state;
  enum { ADDRS = 300, MAX = 200, STEPS = 200000 };
  tt_peer_table_t *t = tt__peer_table_new(MAX);
  assert_non_null(t);
  uint32_t model[ADDRS] = {0};
  uint32_t distinct = 0;
  srand(7);
  for (int step = 0; step < STEPS; step++) {
    uint32_t i = (uint32_t)rand() % ADDRS;
    tt_peer_addr_t a = v4(0x0a000000u + i);
    if (rand() % 2 == 0) {
      uint32_t n = tt__peer_table_add(t, &a);
      if (model[i] == 0 && distinct == MAX) {
        assert_int_equal(n, 0); /* full: a new address is refused */
        continue;
      }
      if (model[i]++ == 0)
        distinct++;
      assert_int_equal(n, model[i]);
    } else if (model[i] > 0) {
      tt__peer_table_remove(t, &a);
      if (--model[i] == 0)
        distinct--;
    }
    if (step % 997 == 0) { /* every count, including the ones moved by backward shifts */
      for (uint32_t k = 0; k < ADDRS; k++) {
        tt_peer_addr_t b = v4(0x0a000000u + k);
        assert_int_equal(tt__peer_table_count(t, &b), model[k]);
      }
      assert_int_equal(tt__peer_table_size(t), distinct);
    }
  }
  tt__peer_table_free(t);
}

static void grpc_peer_strings_should_parse_to_the_address(void **state) {
  (void)state;
  tt_peer_addr_t a, want = v4(0xc0000201);
  assert_int_equal(tt__peer_addr_from_grpc("ipv4:192.0.2.1:4317", &a), 0);
  assert_memory_equal(a.b, want.b, 16);
  char buf[64];
  assert_int_equal(tt__peer_addr_from_grpc("ipv6:[2001:db8::1]:4317", &a), 0);
  tt__peer_addr_format(&a, buf, sizeof buf);
  assert_string_equal(buf, "2001:db8::1");
  assert_int_equal(tt__peer_addr_from_grpc("ipv6:%5B::1%5D:50051", &a), 0);
  tt__peer_addr_format(&a, buf, sizeof buf);
  assert_string_equal(buf, "::1");
  assert_int_equal(tt__peer_addr_from_grpc("unix:/tmp/sock", &a), -EINVAL);
  assert_int_equal(tt__peer_addr_from_grpc("ipv4:nonsense:1", &a), -EINVAL);
  assert_int_equal(tt__peer_addr_from_grpc("ipv4:", &a), -EINVAL);
  /* Same address, same identity; another address, another. */
  tt_peer_addr_t b = v4(0xc0000201), c = v4(0xc0000202);
  assert_true(tt__peer_addr_hash(&b) == tt__peer_addr_hash(&want));
  assert_true(tt__peer_addr_hash(&b) != tt__peer_addr_hash(&c));
  assert_true(tt__peer_addr_hash(&b) != 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(an_ipv4_address_should_equal_its_mapped_ipv6_form),
      cmocka_unit_test(counts_should_match_a_model_under_random_churn),
      cmocka_unit_test(grpc_peer_strings_should_parse_to_the_address),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
