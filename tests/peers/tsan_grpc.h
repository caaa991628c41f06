/* tsan_grpc.h: ThreadSanitizer suppressions for tests that drive gRPC's C core. Debian's libgrpc,
 * libgpr and abseil are not built with -fsanitize=thread, and their synchronisation (absl::Mutex
 * on futexes, lock-free closures) is invisible to TSan, so every access they make through an
 * intercepted call (memcpy, operator delete, epoll) looks like a race. The suppressions name only
 * those libraries (and OpenSSL, which gRPC drives from its own threads): a race whose both stacks
 * are in our code is still reported. Include from exactly one file of a test executable. */
#ifndef TT_TEST_TSAN_GRPC_H
#define TT_TEST_TSAN_GRPC_H

const char *__tsan_default_suppressions(void);
__attribute__((used, visibility("default"))) const char *__tsan_default_suppressions(void) {
  return "race:libgrpc.so\n"
         "race:libgpr.so\n"
         "race:libupb.so\n"
         "race:libabsl_\n"
         "race:libssl.so\n"
         "race:libcrypto.so\n"
         "called_from_lib:libgrpc.so\n"
         "called_from_lib:libgpr.so\n";
}

#endif /* TT_TEST_TSAN_GRPC_H */
