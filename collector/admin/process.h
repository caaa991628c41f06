/* The process_* families Prometheus client libraries export (resident memory, CPU time, open and
 * maximum descriptors, start time) and tailtrace_build_info, read from /proc and getrusage at
 * scrape time. Linux only: elsewhere the /proc figures are left out. */
#ifndef TT_COLLECTOR_PROCESS_H
#define TT_COLLECTOR_PROCESS_H

#include "buf.h"

/* Appends the families. Any thread; allocates nothing but out's growth. Returns 0 or -ENOMEM. */
int tt__process_render(tt_buf_t *out);

#endif
