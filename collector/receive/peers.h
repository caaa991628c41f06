/* Open connections per client address, for the receivers' per-address connection cap.
 *
 * A server that only caps its total lets one client take every slot; counting per address lets
 * it refuse the client that already holds its share while others still get in. IPv4 addresses
 * are kept in their IPv4-mapped IPv6 form, so one table serves both families. The hash is
 * SipHash under a per-table key: addresses are chosen by clients.
 *
 * Not thread-safe: each server uses its table from its own thread. */
#ifndef TT_COLLECTOR_PEERS_H
#define TT_COLLECTOR_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
  uint8_t b[16];
} tt_peer_addr_t;

typedef struct tt_peer_table_s tt_peer_table_t;

/* A table for up to `max_peers` distinct addresses at once (a server passes its connection
 * cap). NULL on allocation failure. */
tt_peer_table_t *tt__peer_table_new(uint32_t max_peers);
void tt__peer_table_free(tt_peer_table_t *t);

/* The address of an AF_INET or AF_INET6 socket address; -EAFNOSUPPORT for any other family. */
int tt__peer_addr_from_sockaddr(const struct sockaddr *sa, tt_peer_addr_t *out);

/* One more connection from `a`; returns the address's count including it, or 0 when the table
 * already holds max_peers distinct addresses (the caller refuses the connection). */
uint32_t tt__peer_table_add(tt_peer_table_t *t, const tt_peer_addr_t *a);

/* One connection fewer from `a` (which must have been added). */
void tt__peer_table_remove(tt_peer_table_t *t, const tt_peer_addr_t *a);

/* Open connections from `a`. */
uint32_t tt__peer_table_count(const tt_peer_table_t *t, const tt_peer_addr_t *a);

/* Distinct addresses with at least one connection. */
uint32_t tt__peer_table_size(const tt_peer_table_t *t);

/* A keyed hash of the address (the key is drawn once per process), never 0: the sender's
 * identity in tt_export_request_t. */
uint64_t tt__peer_addr_hash(const tt_peer_addr_t *a);

/* Parses gRPC core's peer string ("ipv4:192.0.2.1:4317", "ipv6:[2001:db8::1]:4317", with the
 * brackets possibly %-escaped). -EINVAL when it names no IP address (a Unix socket, say). */
int tt__peer_addr_from_grpc(const char *peer, tt_peer_addr_t *out);

/* "192.0.2.1" or "2001:db8::1", for logs. */
void tt__peer_addr_format(const tt_peer_addr_t *a, char *out, size_t n);

/* "192.0.2.1:50312" or "[2001:db8::1]:50312" from an AF_INET or AF_INET6 address, for logs. */
void tt__peer_sockaddr_format(const struct sockaddr *sa, char *out, size_t n);

#endif
