/* SIGHUP's reload and the logging of configuration lines (see config_reload.h). */
#include "config_reload.h"

#include <stdio.h>
#include <string.h>

void tt__config_log_lines(tt_log_level_t l, tt_buf_t *text) {
  if (tt__buf_append(text, "", 1) != 0)
    return;
  for (char *line = (char *)text->data, *nl; line != NULL && *line != '\0'; line = nl) {
    nl = strchr(line, '\n');
    if (nl != NULL)
      *nl++ = '\0';
    TT_LOG(l, line, "\"component\":\"config\"");
  }
}

void tt__config_reload(const char *path, tt_config_t *running, tt_pipeline_t *pipe) {
  tt_config_t fresh;
  tt_buf_t e = TT_BUF_INIT;
  if (tt__config_load_file(path, &fresh, &e) != 0) {
    tt__config_log_lines(TT_LOG_ERROR, &e);
    TT_LOG(TT_LOG_ERROR, "SIGHUP: configuration refused; nothing changed",
           "\"component\":\"config\"");
    tt__buf_free(&e);
    tt__config_free(&fresh);
    return;
  }
  /* The level first, so the lines below already follow it: a file that turns warnings off is
   * not answered with warnings. */
  tt__log_set_level((tt_log_level_t)tt__log_level_parse(fresh.log_level));
  snprintf(running->log_level, sizeof running->log_level, "%s", fresh.log_level);
  tt__pipeline_set_policies(pipe, fresh.policies);
  tt__config_warnings(&fresh, &e);
  tt__config_log_lines(TT_LOG_WARN, &e);
  /* The receivers, shards, sinks and bus are built once, at start: a change to their keys
   * would need them rebuilt under traffic. It is said, never half applied. */
  tt_buf_t keys = TT_BUF_INIT;
  if (tt__config_restart_keys(running, &fresh, &keys) > 0 && tt__buf_append(&keys, "", 1) == 0)
    TT_LOG(TT_LOG_WARN,
           "SIGHUP: these keys changed and need a restart; they keep their running "
           "values",
           "\"component\":\"config\",\"keys\":[%s]", (const char *)keys.data);
  tt__buf_free(&keys);
  TT_LOG(TT_LOG_INFO, "SIGHUP: policies reloaded", "\"policies\":%zu,\"log_level\":\"%s\"",
         fresh.policies->n, fresh.log_level);
  tt__buf_free(&e);
  tt__config_free(&fresh);
}
