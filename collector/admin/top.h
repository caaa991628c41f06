/* `tailtrace-collector top`: a terminal view of a running collector, polled from its admin
 * port's /metrics (top.c). */
#ifndef TT_COLLECTOR_TOP_H
#define TT_COLLECTOR_TOP_H

/* Runs the subcommand; argv[0] is "top". Returns the process's exit status: 0, 1 when the admin
 * port cannot be scraped, 2 for a bad command line. Main thread; installs SIGINT/SIGTERM
 * handlers and puts a terminal on stdin in raw mode until it returns. */
int tt__top_main(int argc, char **argv);

#endif
