/* What the daemon does with a configuration after start: SIGHUP's reload, and configuration
 * lines (errors, warnings) logged as JSON through log.c. Main thread only. */
#ifndef TT_COLLECTOR_CONFIG_RELOAD_H
#define TT_COLLECTOR_CONFIG_RELOAD_H

#include "buf.h"
#include "config.h"
#include "log.h"
#include "pipeline.h"

/* Logs each "FILE:LINE: KEY: message\n" line of text as one JSON line at level l (the line is
 * the msg, with "component":"config"). text is consumed: its lines are cut in place. */
void tt__config_log_lines(tt_log_level_t l, tt_buf_t *text);

/* SIGHUP: re-reads path. A valid file swaps its policies into pipe and its log.level into the
 * logger (and into running->log_level), and logs its warnings; every other key whose value
 * differs from running's is named in one JSON warning line, as it needs a restart. A refused
 * file changes nothing: its errors are logged, one JSON error line each. running is the
 * configuration as loaded at start (before any adjustment the daemon made to it). */
void tt__config_reload(const char *path, tt_config_t *running, tt_pipeline_t *pipe);

#endif
