/* Library version, kept in one place so tt_version_string and the User-Agent agree. */
#include "tailtrace.h"

#define TT_STR2(x) #x
#define TT_STR(x) TT_STR2(x)

const char *tt_version_string(void) {
  return TT_STR(TT_VERSION_MAJOR) "." TT_STR(TT_VERSION_MINOR) "." TT_STR(TT_VERSION_PATCH);
}
