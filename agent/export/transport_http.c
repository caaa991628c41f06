/* transport_http.c: OTLP/HTTP over libcurl, protobuf (http/protobuf) or JSON (http/json) bodies.
 *
 * One easy handle inside one multi handle, both reused for every export so the connection is
 * kept alive between batches. The multi interface (rather than curl_easy_perform) is what makes
 * shutdown prompt: tt__transport_abort sets a flag and calls curl_multi_wakeup, which interrupts
 * curl_multi_poll at once even while the server hangs mid-response; the xferinfo callback checks
 * the same flag as a second line. CURLOPT_TIMEOUT_MS bounds each attempt by the export deadline.
 * Owned by the exporter thread, except `aborted` and the wakeup (any thread). */
#include "otlp_transport.h"

#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "tailtrace.h"

#define MAX_RESPONSE_BODY (64 * 1024) /* we only need partial_success or a Status message */

typedef struct {
  tt__transport_t base;
  const tt__otlp_config_t *cfg;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers_plain, *headers_gzip;
  atomic_int aborted;
  pid_t pid; /* the process the handles belong to (fork check) */
  /* Per-attempt scratch, reset by each send. */
  uint8_t *resp;
  size_t resp_len;
  int64_t retry_after_ms;
  int resp_is_protobuf;
  int resp_is_json;
  uint8_t *zbuf; /* gzip output, grown as needed and kept */
  size_t zcap;
} http_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe with respect to other libcurl users starting at the same
 * time; running it once from our exporter is the best a library can do. */
static void curl_global_once(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  http_t *h = ud;
  size_t n = size * nmemb;
  size_t room = MAX_RESPONSE_BODY - h->resp_len;
  size_t take = n < room ? n : room; /* the rest is read and discarded */
  if (take > 0) {
    memcpy(h->resp + h->resp_len, data, take);
    h->resp_len += take;
  }
  return n;
}

/* Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static int64_t parse_retry_after(const char *v) {
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v >= '0' && *v <= '9') {
    char *end;
    long long s = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
      end++;
    if (*end != '\0' || s < 0 || s > 86400LL * 365)
      return -1;
    return s * 1000;
  }
  time_t when = curl_getdate(v, NULL);
  if (when == (time_t)-1)
    return -1;
  time_t now = time(NULL);
  return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  http_t *h = ud;
  size_t n = size * nmemb;
  char line[256];
  size_t len = n < sizeof line - 1 ? n : sizeof line - 1;
  memcpy(line, data, len);
  line[len] = '\0';
  if (strncasecmp(line, "HTTP/", 5) == 0) {
    /* A new response (after a redirect or 100-continue): forget the previous one's headers. */
    h->retry_after_ms = -1;
    h->resp_is_protobuf = 0;
    h->resp_is_json = 0;
  } else if (strncasecmp(line, "retry-after:", 12) == 0) {
    h->retry_after_ms = parse_retry_after(line + 12);
  } else if (strncasecmp(line, "content-type:", 13) == 0) {
    h->resp_is_protobuf = strstr(line + 13, "application/x-protobuf") != NULL ||
                          strstr(line + 13, "application/protobuf") != NULL;
    h->resp_is_json = strstr(line + 13, "application/json") != NULL;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  http_t *h = ud;
  return atomic_load(&h->aborted) ? 1 : 0;
}

static int gzip_body(http_t *h, const uint8_t *in, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* windowBits 15 + 16 selects the gzip wrapper (RFC 1952) instead of zlib's. */
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return TT_ENOMEM;
  size_t bound = deflateBound(&zs, len) + 32;
  if (bound > h->zcap) {
    uint8_t *nb = tt__realloc(h->zbuf, bound);
    if (nb == NULL) {
      deflateEnd(&zs);
      return TT_ENOMEM;
    }
    h->zbuf = nb;
    h->zcap = bound;
  }
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)len;
  zs.next_out = h->zbuf;
  zs.avail_out = (uInt)h->zcap;
  int rc = deflate(&zs, Z_FINISH);
  *out_len = zs.total_out;
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? 0 : TT_ENOMEM;
}

static int retryable_status(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

static int retryable_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return 1;
    default:
      return 0; /* TLS verification, bad URL, ...: retrying cannot help */
  }
}

static int make_handles(http_t *h);

static void http_send(tt__transport_t *t, const uint8_t *body, size_t len, int64_t deadline_ns,
                      tt__export_result_t *res) {
  http_t *h = (http_t *)t;
  tt__export_result_init(res);
  if (h->pid != getpid()) {
    h->pid = getpid();
    h->multi = NULL;
    h->easy = NULL;
    if (make_handles(h) != 0) {
      res->outcome = TT__EXPORT_PERMANENT;
      snprintf(res->message, sizeof res->message, "cannot recreate HTTP handles after fork");
      return;
    }
  }
  if (atomic_load(&h->aborted)) {
    res->outcome = TT__EXPORT_ABORTED;
    snprintf(res->message, sizeof res->message, "exporter shut down");
    return;
  }
  int64_t remaining_ms = (deadline_ns - tt__otlp_now_ns()) / 1000000;
  if (remaining_ms <= 0) {
    res->outcome = TT__EXPORT_RETRYABLE;
    res->no_response = res->timed_out = 1;
    snprintf(res->message, sizeof res->message, "export deadline already passed");
    return;
  }
  const uint8_t *payload = body;
  size_t plen = len;
  if (h->cfg->gzip) {
    if (gzip_body(h, body, len, &plen) != 0) {
      res->outcome = TT__EXPORT_PERMANENT;
      snprintf(res->message, sizeof res->message, "gzip compression failed");
      return;
    }
    payload = h->zbuf;
  }
  h->resp_len = 0;
  h->retry_after_ms = -1;
  h->resp_is_protobuf = 0;
  h->resp_is_json = 0;
  curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, (const char *)payload);
  curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);
  curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->cfg->gzip ? h->headers_gzip : h->headers_plain);
  curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)remaining_ms);
  curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)remaining_ms);
  curl_multi_add_handle(h->multi, h->easy);

  CURLcode rc = CURLE_OK;
  int done = 0, aborted = 0;
  while (!done) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(h->multi, &running);
    if (mc != CURLM_OK) {
      rc = CURLE_FAILED_INIT;
      break;
    }
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(h->multi, &q)) != NULL) {
      if (m->msg == CURLMSG_DONE) {
        rc = m->data.result;
        done = 1;
      }
    }
    if (done)
      break;
    if (atomic_load(&h->aborted)) {
      aborted = 1;
      break;
    }
    /* CURLOPT_TIMEOUT_MS ends the transfer at the deadline; this backstop only guards against a
     * libcurl that somehow does not. */
    if (tt__otlp_now_ns() > deadline_ns + 1000000000LL) {
      rc = CURLE_OPERATION_TIMEDOUT;
      break;
    }
    curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
  }
  curl_multi_remove_handle(h->multi, h->easy);

  /* A cancel that lands just as the answer arrives does not undo the answer. */
  if (aborted || rc == CURLE_ABORTED_BY_CALLBACK) {
    res->outcome = TT__EXPORT_ABORTED;
    res->no_response = 1;
    snprintf(res->message, sizeof res->message, "exporter shut down during export");
    return;
  }
  if (rc != CURLE_OK) {
    res->no_response = 1;
    res->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    res->outcome = retryable_curl(rc) ? TT__EXPORT_RETRYABLE : TT__EXPORT_PERMANENT;
    snprintf(res->message, sizeof res->message, "%s", curl_easy_strerror(rc));
    return;
  }
  long status = 0;
  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
  res->code = (int)status;
  if (status >= 200 && status < 300) {
    res->outcome = TT__EXPORT_OK;
    if (h->resp_is_json)
      tt__otlp_parse_json_response((const char *)h->resp, h->resp_len, res);
    else if (h->resp_is_protobuf || h->resp_len > 0)
      tt__otlp_parse_export_response(h->resp, h->resp_len, res);
    return;
  }
  res->outcome = retryable_status(status) ? TT__EXPORT_RETRYABLE : TT__EXPORT_PERMANENT;
  res->retry_after_ms = res->outcome == TT__EXPORT_RETRYABLE ? h->retry_after_ms : -1;
  /* The spec says error bodies are a google.rpc.Status in the request's encoding; anything else
   * (an HTML error page from a proxy) is summarised rather than parsed. */
  int parsed =
      h->resp_is_json
          ? tt__otlp_parse_json_status((const char *)h->resp, h->resp_len, res)
          : (h->resp_is_protobuf ? tt__otlp_parse_rpc_status(h->resp, h->resp_len, NULL, res) : -1);
  if (parsed != 0)
    snprintf(res->message, sizeof res->message, "HTTP %ld", status);
  else if (res->message[0] == '\0')
    snprintf(res->message, sizeof res->message, "HTTP %ld", status);
  if (res->outcome != TT__EXPORT_RETRYABLE)
    res->retry_after_ms = -1;
}

static void http_abort(tt__transport_t *t) {
  http_t *h = (http_t *)t;
  atomic_store(&h->aborted, 1);
  /* curl_multi_wakeup is documented as callable from any thread. */
  curl_multi_wakeup(h->multi);
}

static void http_destroy(tt__transport_t *t) {
  http_t *h = (http_t *)t;
  if (h->pid == getpid()) { /* in a forked child they are the parent's: leave them alone */
    if (h->easy)
      curl_easy_cleanup(h->easy);
    if (h->multi)
      curl_multi_cleanup(h->multi);
  }
  curl_slist_free_all(h->headers_plain);
  curl_slist_free_all(h->headers_gzip);
  tt__free(h->resp);
  tt__free(h->zbuf);
  tt__free(h);
}

static const tt__transport_ops_t http_ops = {http_send, http_abort, http_destroy};

static struct curl_slist *build_headers(const tt__otlp_config_t *cfg, int gzip) {
  struct curl_slist *l = NULL, *n;
  char line[1024];
#define ADD(s)                                                                                     \
  do {                                                                                             \
    if ((n = curl_slist_append(l, (s))) == NULL)                                                   \
      goto fail;                                                                                   \
    l = n;                                                                                         \
  } while (0)
  ADD(cfg->protocol == TT_OTLP_PROTOCOL_HTTP_JSON ? "Content-Type: application/json"
                                                  : "Content-Type: application/x-protobuf");
  /* No "Expect: 100-continue" round trip on large bodies: OTLP receivers answer directly. */
  ADD("Expect:");
  if (gzip)
    ADD("Content-Encoding: gzip");
  for (size_t i = 0; i < cfg->n_headers; i++) {
    snprintf(line, sizeof line, "%s: %s", cfg->headers[i].name, cfg->headers[i].value);
    ADD(line);
  }
#undef ADD
  return l;
fail:
  curl_slist_free_all(l);
  return NULL;
}

/* Creates the multi and easy handles. Also used in a forked child: the handles it inherited
 * share the parent's keep-alive connection (and TLS state), so the child leaks them, untouched,
 * and starts its own; cleaning them up could write on the parent's connection. */
static int make_handles(http_t *h) {
  h->multi = curl_multi_init();
  h->easy = curl_easy_init();
  if (h->multi == NULL || h->easy == NULL)
    return -1;
  char ua[64]; /* CURLOPT_USERAGENT copies it */
  snprintf(ua, sizeof ua, "OTel-OTLP-Exporter-C/%s tailtrace/%s", tt_version_string(),
           tt_version_string());
  CURL *e = h->easy;
  curl_easy_setopt(e, CURLOPT_URL, h->cfg->endpoint);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* never touch the host's signal handlers */
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, h);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (h->cfg->certificate)
    curl_easy_setopt(e, CURLOPT_CAINFO, h->cfg->certificate);
  if (h->cfg->client_certificate)
    curl_easy_setopt(e, CURLOPT_SSLCERT, h->cfg->client_certificate);
  if (h->cfg->client_key)
    curl_easy_setopt(e, CURLOPT_SSLKEY, h->cfg->client_key);
  return 0;
}

int tt__transport_http_new(const tt__otlp_config_t *cfg, tt__transport_t **out) {
  *out = NULL;
  if (strncasecmp(cfg->endpoint, "http://", 7) != 0 &&
      strncasecmp(cfg->endpoint, "https://", 8) != 0)
    return TT_EINVAL;
  pthread_once(&curl_once, curl_global_once);
  if (curl_init_rc != CURLE_OK)
    return TT_ENOMEM;
  http_t *h = tt__calloc(1, sizeof *h);
  if (h == NULL)
    return TT_ENOMEM;
  h->base.ops = &http_ops;
  h->cfg = cfg;
  atomic_init(&h->aborted, 0);
  h->resp = tt__malloc(MAX_RESPONSE_BODY);
  h->pid = getpid();
  h->headers_plain = build_headers(cfg, 0);
  h->headers_gzip = build_headers(cfg, 1);
  if (!h->resp || !h->headers_plain || !h->headers_gzip || make_handles(h) != 0) {
    http_destroy(&h->base);
    return TT_ENOMEM;
  }
  *out = &h->base;
  return 0;
}
