/* Tracers name instrumentation scopes. They live in a fixed table that is never freed, so a
 * tracer handle obtained before tt_init (or kept across a re-init) stays valid forever. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define TT__MAX_TRACERS 64

static struct tt_tracer_s g_tracers[TT__MAX_TRACERS];
static int g_ntracers;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void fill(struct tt_tracer_s *t, const char *name, const char *version) {
  snprintf(t->name, sizeof t->name, "%s", name);
  snprintf(t->version, sizeof t->version, "%s", version);
  t->scope.name = t->name;
  t->scope.version = t->version;
  t->scope.schema_url = "";
}

/* Slot 0 is the default tracer, filled once, so the span hot path reads it without a lock. */
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
static void init_default(void) {
  fill(&g_tracers[0], "tailtrace", tt_version_string());
  g_ntracers = 1;
}

tt_tracer_t *tt__default_tracer(void) {
  pthread_once(&g_default_once, init_default);
  return &g_tracers[0];
}

tt_tracer_t *tt_tracer_get(const char *name, const char *version) {
  if (name == NULL || *name == '\0') {
    name = "tailtrace";
    version = tt_version_string();
  }
  if (version == NULL)
    version = "";
  tt_tracer_t *def = tt__default_tracer();
  pthread_mutex_lock(&g_mu);
  tt_tracer_t *found = NULL;
  for (int i = 0; i < g_ntracers; i++) {
    if (strncmp(g_tracers[i].name, name, sizeof g_tracers[i].name - 1) == 0 &&
        strncmp(g_tracers[i].version, version, sizeof g_tracers[i].version - 1) == 0) {
      found = &g_tracers[i];
      break;
    }
  }
  if (found == NULL && g_ntracers < TT__MAX_TRACERS) {
    found = &g_tracers[g_ntracers];
    fill(found, name, version);
    g_ntracers++;
  }
  pthread_mutex_unlock(&g_mu);
  return found != NULL ? found : def;
}
