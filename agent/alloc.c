/* Allocator hook: every library allocation goes through these, so an application can route them
 * to its own allocator. The hook may only change before the first tt_init, because memory
 * allocated by one allocator must be freed by the same one. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

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
