/* Allocator hook: every library allocation goes through these, so an application can route them
 * to its own allocator. The hook may only change before the first tt_init, because memory
 * allocated by one allocator must be freed by the same one. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void *(*g_calloc)(size_t, size_t) = calloc;
static void (*g_free)(void *) = free;
static _Atomic int g_frozen;

int tt_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                     void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *)) {
  if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL || free_fn == NULL)
    return TT_EINVAL;
  if (atomic_load(&g_frozen))
    return TT_EBUSY;
  g_malloc = malloc_fn;
  g_realloc = realloc_fn;
  g_calloc = calloc_fn;
  g_free = free_fn;
  return 0;
}

void tt__allocator_freeze(void) {
  atomic_store(&g_frozen, 1);
}

void *tt__malloc(size_t n) {
  return g_malloc(n);
}
void *tt__calloc(size_t n, size_t m) {
  return g_calloc(n, m);
}
void *tt__realloc(void *p, size_t n) {
  return g_realloc(p, n);
}
void tt__free(void *p) {
  if (p != NULL)
    g_free(p);
}

char *tt__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = tt__malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* Big aligned blocks that live as long as the process (record slabs). With the application's
 * allocator they come from it, over-allocated by `align` and aligned inside (the part outside is
 * never touched, so never resident, but it is reserved: twice a 2 MB slab's address space). With
 * the default allocator they are mapped directly and the unaligned head and tail unmapped, so a
 * block reserves only its own size. *raw receives what the caller must keep reachable (the
 * allocation) or NULL for a mapping, which leak checkers do not track. */
void *tt__alloc_aligned_forever(size_t size, size_t align, void **raw) {
  *raw = NULL;
  if (g_malloc == malloc) {
    size_t span = size + align;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      char *a = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
      if (a > m)
        munmap(m, (size_t)(a - m));
      if (a + size < m + span)
        munmap(a + size, (size_t)(m + span - (a + size)));
      return a;
    }
  }
  char *p = tt__malloc(size + align);
  if (p == NULL)
    return NULL;
  *raw = p;
  return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}
