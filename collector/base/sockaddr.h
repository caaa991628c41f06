/* Socket addresses from the numeric hosts the configuration resolves listening endpoints to. */
#ifndef TT_COLLECTOR_SOCKADDR_H
#define TT_COLLECTOR_SOCKADDR_H

#include <sys/socket.h>

/* Fills *ss with host (an IPv4 or IPv6 literal, no brackets) and port, and *len with the size
 * of the address it holds. Returns 0, or -EINVAL when host is not a literal. Pure. */
int tt__sockaddr_literal(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

#endif
