/* process_* and tailtrace_build_info: see process.h. Names, units and types are those of the
 * Prometheus client libraries (process_cpu_seconds_total a counter in seconds, memory in bytes),
 * so dashboards built for other exporters read them unchanged. */
#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "version.h"

/* The 22nd field of /proc/self/stat, the start time in clock ticks after boot. The command name
 * (field 2) may hold spaces and parentheses, so fields are counted after its last ')'. */
static int start_ticks(unsigned long long *out) {
  char buf[1024];
  FILE *f = fopen("/proc/self/stat", "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  /* After ')': field 3 (state) is the first; field 22 is the 20th token. */
  int field = 2;
  char *save = NULL;
  for (char *tok = strtok_r(p + 1, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
    if (++field == 22) {
      *out = strtoull(tok, NULL, 10);
      return 0;
    }
  }
  return -1;
}

static int boot_time(unsigned long long *out) {
  char line[256];
  FILE *f = fopen("/proc/stat", "re");
  if (f == NULL)
    return -1;
  int rc = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "btime %llu", out) == 1) {
      rc = 0;
      break;
    }
  fclose(f);
  return rc;
}

static long open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* A label value with \, " and newline escaped as the text format requires. */
static int append_label(tt_buf_t *o, const char *v) {
  int rc = 0;
  for (; *v != '\0'; v++) {
    if (*v == '\\' || *v == '"')
      rc |= tt__buf_appendf(o, "\\%c", *v);
    else if (*v == '\n')
      rc |= tt__buf_append_str(o, "\\n");
    else
      rc |= tt__buf_append(o, v, 1);
  }
  return rc;
}

int tt__process_render(tt_buf_t *o) {
  int rc = 0;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    rc |= tt__buf_appendf(o,
                          "# HELP process_cpu_seconds_total Total user and system CPU time spent "
                          "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                          "process_cpu_seconds_total %.3f\n",
                          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
  unsigned long long vm_pages, rss_pages;
  FILE *f = fopen("/proc/self/statm", "re");
  if (f != NULL) {
    if (fscanf(f, "%llu %llu", &vm_pages, &rss_pages) == 2) {
      unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
      rc |= tt__buf_appendf(o,
                            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                            "# TYPE process_resident_memory_bytes gauge\n"
                            "process_resident_memory_bytes %llu\n"
                            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                            "# TYPE process_virtual_memory_bytes gauge\n"
                            "process_virtual_memory_bytes %llu\n",
                            rss_pages * page, vm_pages * page);
    }
    fclose(f);
  }
  long fds = open_fds();
  if (fds >= 0)
    rc |= tt__buf_appendf(o,
                          "# HELP process_open_fds Number of open file descriptors.\n"
                          "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                          fds);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    rc |= tt__buf_appendf(o,
                          "# HELP process_max_fds Maximum number of open file descriptors.\n"
                          "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                          rl.rlim_cur == RLIM_INFINITY ? 1048576ull
                                                       : (unsigned long long)rl.rlim_cur);
  unsigned long long ticks, btime;
  long hz = sysconf(_SC_CLK_TCK);
  if (start_ticks(&ticks) == 0 && boot_time(&btime) == 0 && hz > 0)
    rc |= tt__buf_appendf(o,
                          "# HELP process_start_time_seconds Start time of the process since unix "
                          "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                          "process_start_time_seconds %.2f\n",
                          (double)btime + (double)ticks / (double)hz);
  rc |= tt__buf_append_str(o, "# HELP tailtrace_build_info The collector's version and the "
                              "compiler that built it; always 1.\n"
                              "# TYPE tailtrace_build_info gauge\n"
                              "tailtrace_build_info{version=\"");
  rc |= append_label(o, tt__collector_version());
  rc |= tt__buf_append_str(o, "\",compiler=\"");
#if defined(__clang__)
  rc |= tt__buf_append_str(o, "clang ");
#elif defined(__GNUC__)
  rc |= tt__buf_append_str(o, "gcc ");
#endif
#ifdef __VERSION__
  rc |= append_label(o, __VERSION__);
#endif
  rc |= tt__buf_append_str(o, "\"} 1\n");
  return rc ? -ENOMEM : 0;
}
