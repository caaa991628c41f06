/* What one wake-up of a sleeping thread costs a machine whose cores are all busy. Not a test and
 * not libtailtrace: it measures the host, to explain the agent's exporter design and its 2-thread
 * figure (docs/benchmarks-agent.md). One busy thread per core runs a register-only loop (no
 * memory, so no cache effect); a third thread sleeps on an absolute timer every period and does
 * nothing when it wakes. Windows with and without the sleeper alternate; the throughput the busy
 * threads lose, divided by the sleeper's wake-ups, is the cost of one wake-up in core-time.
 * Usage: bench_machine_wake [period_us (default 400)] [windows (default 6)]
 * Prints one JSON object per figure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MS 500
#define MAX_BUSY 64

static _Atomic int g_run;
static _Atomic long g_wakes;
static long g_period_us;

typedef struct {
  _Alignas(64) uint64_t loops;
} busy_t;

static busy_t g_busy[MAX_BUSY];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *busy(void *arg) {
  busy_t *b = arg;
  uint64_t x = (uint64_t)(uintptr_t)arg | 1, n = 0;
  while (atomic_load_explicit(&g_run, memory_order_relaxed) == 0) {
  }
  while (atomic_load_explicit(&g_run, memory_order_relaxed) == 1) {
    for (int k = 0; k < 1000; k++) { /* xorshift: registers only */
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    n++;
  }
  b->loops = n + (x == 0); /* x is never 0: keeps the loop from being optimised away */
  return NULL;
}

static void *sleeper(void *arg) {
  (void)arg;
  prctl(PR_SET_TIMERSLACK, 10000ul, 0ul, 0ul, 0ul); /* as libtailtrace's exporter thread */
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  while (atomic_load(&g_run) == 0) {
  }
  while (atomic_load(&g_run) == 1) {
    t.tv_nsec += g_period_us * 1000;
    while (t.tv_nsec >= 1000000000) {
      t.tv_nsec -= 1000000000;
      t.tv_sec++;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    atomic_fetch_add(&g_wakes, 1);
  }
  return NULL;
}

/* Loops per second of nbusy busy threads over one window, with or without the sleeper. */
static double window(int nbusy, int with_sleeper, double *wakes_per_s) {
  pthread_t th[MAX_BUSY], sl;
  atomic_store(&g_run, 0);
  atomic_store(&g_wakes, 0);
  for (int i = 0; i < nbusy; i++)
    pthread_create(&th[i], NULL, busy, &g_busy[i]);
  if (with_sleeper)
    pthread_create(&sl, NULL, sleeper, NULL);
  uint64_t t0 = now_ns();
  atomic_store(&g_run, 1);
  struct timespec w = {0, WINDOW_MS * 1000000L};
  nanosleep(&w, NULL);
  atomic_store(&g_run, 2);
  double secs = (double)(now_ns() - t0) / 1e9;
  uint64_t loops = 0;
  for (int i = 0; i < nbusy; i++) {
    pthread_join(th[i], NULL);
    loops += g_busy[i].loops;
  }
  if (with_sleeper)
    pthread_join(sl, NULL);
  *wakes_per_s = (double)atomic_load(&g_wakes) / secs;
  return (double)loops / secs;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void emit(const char *name, double value, const char *unit) {
  printf("{\"name\": \"%s\", \"value\": %.2f, \"unit\": \"%s\"}\n", name, value, unit);
}

int main(int argc, char **argv) {
  g_period_us = argc > 1 ? atol(argv[1]) : 400;
  int windows = argc > 2 ? atoi(argv[2]) : 6;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nbusy = ncpu < 1 ? 1 : ncpu > MAX_BUSY ? MAX_BUSY : (int)ncpu;
  if (g_period_us < 10 || windows < 1 || windows > 100) {
    fprintf(stderr, "usage: %s [period_us >= 10] [windows 1-100]\n", argv[0]);
    return 2;
  }
  double cost[100], loss[100], rate = 0;
  for (int w = 0; w < windows; w++) {
    double none, wakes;
    double base = window(nbusy, 0, &none);
    double with = window(nbusy, 1, &wakes);
    loss[w] = 100.0 * (base - with) / base;
    /* core-microseconds lost per wake-up: the lost share of nbusy cores over the wake rate */
    cost[w] = (base - with) / base * nbusy * 1e6 / wakes;
    rate = wakes;
  }
  qsort(cost, (size_t)windows, sizeof *cost, cmp);
  qsort(loss, (size_t)windows, sizeof *loss, cmp);
  emit("busy_threads", nbusy, "threads");
  emit("sleeper_wakeups", rate, "per s");
  emit("busy_throughput_lost", loss[windows / 2], "%");
  emit("cost_per_wakeup_on_busy_cores", cost[windows / 2], "core-us");
  return 0;
}
