/* CPU features the hot path uses, read once, by the first tt_init (before any span can run). */
#include "internal.h"

#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Read on every span start and end; written once, before the first provider is published. */
int tt__has_prefetchw;

static void detect(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  /* PREFETCHW: AMD's 3DNowPrefetch bit, which Intel CPUs since Broadwell set too. */
  if (__get_cpuid(0x80000001u, &a, &b, &c, &d))
    tt__has_prefetchw = (c & bit_PRFCHW) != 0;
#endif
}

void tt__cpu_detect(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, detect);
}
