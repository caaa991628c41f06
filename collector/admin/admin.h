/* The admin port: GET /healthz (the process is up), /readyz (this collector can take spans:
 * receivers listening and held memory below the throttle line; sinks and exporters reported in
 * the body, and part of the answer with ?backends=1), /metrics (Prometheus text). Served by an
 * http_server.h thread of its own. */
#ifndef TT_COLLECTOR_ADMIN_H
#define TT_COLLECTOR_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "pipeline.h"
#include "recv_grpc.h"
#include "recv_http.h"

typedef struct tt_admin_s tt_admin_t;

typedef struct {
  const char *host; /* NULL: 127.0.0.1 */
  int port;         /* 0: ephemeral */
  tt_pipeline_t *pipeline;
  atomic_bool *ready;       /* set by main once receivers listen; cleared at shutdown */
  tt_http_receiver_t *http; /* for their connection metrics; either may be NULL */
  tt_grpc_receiver_t *grpc;
} tt_admin_opts_t;

/* Starts the admin server. Returns 0 or a negative errno. Main thread. */
int tt__admin_start(const tt_admin_opts_t *o, tt_admin_t **out);
int tt__admin_port(const tt_admin_t *a);
/* Stops and frees. NULL is a no-op. Main thread. */
/* Stops showing the receivers' figures; call before stopping the receivers, which the port may
 * otherwise read while they are freed. */
void tt__admin_forget_receivers(tt_admin_t *a);
void tt__admin_stop(tt_admin_t *a);

#endif
