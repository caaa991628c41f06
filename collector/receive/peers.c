/* Open addressing with linear probing; an entry whose count falls to zero is removed by
 * backward shifting, so lookups never walk over tombstones left by churning clients. */
#include "peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

typedef struct {
  tt_peer_addr_t addr;
  uint32_t count; /* 0: the slot is free */
} entry_t;

struct tt_peer_table_s {
  uint8_t key[16];
  uint32_t mask; /* slots - 1; slots is a power of two, at least twice max_peers */
  uint32_t max_peers;
  uint32_t size;
  entry_t *e;
};

tt_peer_table_t *tt__peer_table_new(uint32_t max_peers) {
  if (max_peers == 0 || max_peers > (1u << 24))
    return NULL;
  tt_peer_table_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  uint32_t slots = 16;
  while (slots < 2 * max_peers)
    slots <<= 1;
  t->e = calloc(slots, sizeof *t->e);
  if (t->e == NULL) {
    free(t);
    return NULL;
  }
  t->mask = slots - 1;
  t->max_peers = max_peers;
  tt__siphash_key(t->key);
  return t;
}

void tt__peer_table_free(tt_peer_table_t *t) {
  if (t == NULL)
    return;
  free(t->e);
  free(t);
}

int tt__peer_addr_from_sockaddr(const struct sockaddr *sa, tt_peer_addr_t *out) {
  memset(out, 0, sizeof *out);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->b[10] = out->b[11] = 0xff;
    memcpy(out->b + 12, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  return -EAFNOSUPPORT;
}

static uint32_t home(const tt_peer_table_t *t, const tt_peer_addr_t *a) {
  return (uint32_t)tt__siphash(t->key, a->b, sizeof a->b) & t->mask;
}

/* The slot holding `a`, or the free slot where it would go. The table is never full (at most
 * half its slots are used), so the probe ends. */
static uint32_t find(const tt_peer_table_t *t, const tt_peer_addr_t *a) {
  uint32_t i = home(t, a);
  while (t->e[i].count != 0 && memcmp(t->e[i].addr.b, a->b, sizeof a->b) != 0)
    i = (i + 1) & t->mask;
  return i;
}

uint32_t tt__peer_table_add(tt_peer_table_t *t, const tt_peer_addr_t *a) {
  uint32_t i = find(t, a);
  if (t->e[i].count == 0) {
    if (t->size >= t->max_peers)
      return 0;
    t->e[i].addr = *a;
    t->size++;
  }
  return ++t->e[i].count;
}

void tt__peer_table_remove(tt_peer_table_t *t, const tt_peer_addr_t *a) {
  uint32_t i = find(t, a);
  if (t->e[i].count == 0 || --t->e[i].count > 0)
    return;
  t->size--;
  /* Backward shift: move later entries of the probe run into the hole when their home slot
   * does not lie between the hole and themselves (cyclically). */
  uint32_t hole = i, j = i;
  for (;;) {
    j = (j + 1) & t->mask;
    if (t->e[j].count == 0)
      break;
    uint32_t h = home(t, &t->e[j].addr);
    bool between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (between)
      continue;
    t->e[hole] = t->e[j];
    hole = j;
  }
  t->e[hole].count = 0;
}

uint32_t tt__peer_table_count(const tt_peer_table_t *t, const tt_peer_addr_t *a) {
  return t->e[find(t, a)].count;
}

uint32_t tt__peer_table_size(const tt_peer_table_t *t) {
  return t->size;
}

void tt__peer_addr_format(const tt_peer_addr_t *a, char *out, size_t n) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char tmp[INET6_ADDRSTRLEN];
  const char *s = memcmp(a->b, mapped, sizeof mapped) == 0
                      ? inet_ntop(AF_INET, a->b + 12, tmp, sizeof tmp)
                      : inet_ntop(AF_INET6, a->b, tmp, sizeof tmp);
  snprintf(out, n, "%s", s ? s : "?");
}

void tt__peer_sockaddr_format(const struct sockaddr *sa, char *out, size_t n) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    snprintf(out, n, "%s:%u", inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip) ? ip : "?",
             (unsigned)ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    snprintf(out, n, "[%s]:%u", inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip) ? ip : "?",
             (unsigned)ntohs(in6->sin6_port));
  } else {
    snprintf(out, n, "?");
  }
}

static uint8_t process_key[16];
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void draw_process_key(void) {
  tt__siphash_key(process_key);
}

uint64_t tt__peer_addr_hash(const tt_peer_addr_t *a) {
  pthread_once(&process_key_once, draw_process_key);
  uint64_t h = tt__siphash(process_key, a->b, sizeof a->b);
  return h ? h : 1;
}

int tt__peer_addr_from_grpc(const char *peer, tt_peer_addr_t *out) {
  char buf[INET6_ADDRSTRLEN + 16];
  int v6;
  if (strncmp(peer, "ipv4:", 5) == 0)
    v6 = 0;
  else if (strncmp(peer, "ipv6:", 5) == 0)
    v6 = 1;
  else
    return -EINVAL;
  const char *p = peer + 5;
  /* Drop the brackets (plain or %5B / %5D) and the port after the last ':'. */
  size_t n = 0;
  for (; *p != '\0' && n < sizeof buf - 1; p++) {
    if (*p == '[' || *p == ']')
      continue;
    if (p[0] == '%' && (strncmp(p, "%5B", 3) == 0 || strncmp(p, "%5D", 3) == 0)) {
      p += 2;
      continue;
    }
    buf[n++] = *p;
  }
  buf[n] = '\0';
  char *colon = strrchr(buf, ':');
  if (colon == NULL)
    return -EINVAL;
  *colon = '\0';
  memset(out, 0, sizeof *out);
  if (!v6) {
    out->b[10] = out->b[11] = 0xff;
    return inet_pton(AF_INET, buf, out->b + 12) == 1 ? 0 : -EINVAL;
  }
  return inet_pton(AF_INET6, buf, out->b) == 1 ? 0 : -EINVAL;
}
