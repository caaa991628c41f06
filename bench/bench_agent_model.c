/* A model of libtailtrace's record path with nothing else: producer threads write 36 words
 * (touching five cache lines) or the given number of whole lines, and read the realtime clock
 * twice per "span", into 4 KB + 128 records from a 2 MB-page slab, push each into their own SPSC
 * ring; one consumer thread wakes every 300 us, drains the rings and hands each record back
 * through the producer's return ring; producers refill 32 at a time. Prints the throughput of 1
 * and 2 producers and their ratio (2 s each), with mode "ring" (the model) and "local" (records
 * reused at once, no consumer thread).
 * Usage: bench_agent_model [lines 1-8]. What libtailtrace's own figure should approach on the
 * same machine (docs/benchmarks-agent.md). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#define Q 16384
#define STRIDE 4224
static uint64_t ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}
typedef struct {
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) _Atomic uint64_t rhead;
  _Alignas(64) _Atomic uint64_t rtail;
  char **ring;
  char **ret;
  char *free_[128];
  int nfree;
  uint64_t count;
} prod_t;
static prod_t P[2];
static _Atomic int run;
static int NP;
static int MODE;
/* 64-bit words written per span. 36 (4.5 lines) is what libtailtrace's record header and name
 * took before session 5; a plain span now writes 2 lines. */
static int WORDS = 36;
static char *slab;
static _Atomic size_t slab_next;
static char *newrec(void) {
  return slab + atomic_fetch_add(&slab_next, 1) * STRIDE;
}
static void *producer(void *a) {
  prod_t *p = a;
  uint64_t n = 0;
  while (atomic_load_explicit(&run, memory_order_relaxed)) {
    for (int k = 0; k < 256; k++) {
      char *r;
      if (p->nfree)
        r = p->free_[--p->nfree];
      else {
        uint64_t tl = atomic_load_explicit(&p->rtail, memory_order_relaxed),
                 h = atomic_load_explicit(&p->rhead, memory_order_acquire);
        int m = 0;
        while (tl != h && m < 32) {
          p->free_[p->nfree++] = p->ret[tl & (Q - 1)];
          tl++;
          m++;
        }
        atomic_store_explicit(&p->rtail, tl, memory_order_release);
        if (p->nfree)
          r = p->free_[--p->nfree];
        else
          r = newrec();
      }
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      volatile uint64_t *w = (volatile uint64_t *)r;
      for (int i = 0; i < WORDS; i++)
        w[i] = ts.tv_nsec + i;
      clock_gettime(CLOCK_REALTIME, &ts);
      w[5] = ts.tv_nsec;
      if (MODE == 0) {
        uint64_t h = atomic_load_explicit(&p->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&p->tail, memory_order_acquire) >= Q)
          ;
        p->ring[h & (Q - 1)] = r;
        atomic_store_explicit(&p->head, h + 1, memory_order_release);
      } else
        p->free_[p->nfree++] = r; /* no exporter: reuse at once */
    }
    n += 256;
  }
  p->count = n;
  return NULL;
}
static void *consumer(void *a) {
  (void)a;
  while (atomic_load(&run)) {
    struct timespec s = {0, 300000};
    nanosleep(&s, 0);
    for (int i = 0; i < NP; i++) {
      prod_t *p = &P[i];
      uint64_t h = atomic_load_explicit(&p->head, memory_order_acquire),
               tl = atomic_load_explicit(&p->tail, memory_order_relaxed);
      uint64_t rh = atomic_load_explicit(&p->rhead, memory_order_relaxed);
      for (; tl != h; tl++) {
        p->ret[rh & (Q - 1)] = p->ring[tl & (Q - 1)];
        rh++;
      }
      atomic_store_explicit(&p->tail, tl, memory_order_release);
      atomic_store_explicit(&p->rhead, rh, memory_order_release);
    }
  }
  return NULL;
}
static void run_mode(void);
int main(int argc, char **argv) {
  if (argc > 1) {
    int lines = atoi(argv[1]);
    if (lines < 1 || lines > 8) {
      fprintf(stderr, "usage: %s [lines 1-8]\n", argv[0]);
      return 2;
    }
    WORDS = lines * 8;
  }
  for (MODE = 1; MODE >= 0; MODE--)
    run_mode();
  return 0;
}
static void run_mode(void) {
  /* aligned_alloc wants a size that is a multiple of the alignment (ASan enforces it). */
  size_t bytes = ((size_t)80000 * STRIDE + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  slab = aligned_alloc(2 << 20, bytes);
  if (!slab)
    return;
  madvise(slab, bytes, MADV_HUGEPAGE);
  double one = 0;
  for (NP = 1; NP <= 2; NP++) {
    memset(P, 0, sizeof P);
    for (int i = 0; i < NP; i++) {
      P[i].ring = calloc(Q, 8);
      P[i].ret = calloc(Q, 8);
    }
    atomic_store(&run, 1);
    pthread_t th[3];
    /* Mode local has no consumer at all: a thread waking every 300 us costs the busy cores
     * ~55 us an interrupt here (bench_machine_wake), which is not the record path's cost. */
    if (MODE == 0)
      pthread_create(&th[2], 0, consumer, 0);
    for (int i = 0; i < NP; i++)
      pthread_create(&th[i], 0, producer, &P[i]);
    struct timespec s = {2, 0};
    uint64_t t0 = ns();
    nanosleep(&s, 0);
    atomic_store(&run, 0);
    for (int i = 0; i < NP; i++)
      pthread_join(th[i], 0);
    if (MODE == 0)
      pthread_join(th[2], 0);
    double rate = 0;
    for (int i = 0; i < NP; i++)
      rate += P[i].count / ((ns() - t0) / 1e9);
    if (NP == 1)
      one = rate;
    printf("{\"name\": \"model_%s_%d_producer%s\", \"value\": %.2f, \"unit\": \"Mspans/s\"}\n",
           MODE ? "local" : "ring", NP, NP > 1 ? "s" : "", rate / 1e6);
    if (NP == 2)
      printf("{\"name\": \"model_%s_2_over_1\", \"value\": %.2f, \"unit\": \"x\"}\n",
             MODE ? "local" : "ring", rate / one);
    fflush(stdout);
    atomic_store(&slab_next, 0);
    for (int i = 0; i < NP; i++) {
      free(P[i].ring);
      free(P[i].ret);
    }
  }
  free(slab);
}
