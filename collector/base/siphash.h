/* SipHash (Aumasson and Bernstein): a keyed hash for tables whose keys a client chooses. With a
 * key drawn per process, a client that sends trace or span ids crafted to collide in an
 * unkeyed hash cannot pile them into one bucket: chosen ids cost what random ids cost. */
#ifndef TT_COLLECTOR_SIPHASH_H
#define TT_COLLECTOR_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-c-d of p[0..n) under key. The tables use c = 1, d = 3 (as Rust's HashMap and Redis
 * do: their inputs are 8 or 16 bytes, and the key, not the rounds, is what an attacker lacks);
 * c = 2, d = 4 is the reference function, whose published vectors check this code. Pure. */
uint64_t tt__siphash_cd(const uint8_t key[16], const void *p, size_t n, int c, int d);

/* SipHash-1-3, the tables' function: the same as tt__siphash_cd(key, p, n, 1, 3). */
uint64_t tt__siphash(const uint8_t key[16], const void *p, size_t n);

/* Fills key with 16 random bytes from the kernel (getrandom); where that fails, from the clock
 * and the process id, which still differ between processes and runs. */
void tt__siphash_key(uint8_t key[16]);

#endif
