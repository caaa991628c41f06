/* Library version, kept in one place so tt_version_string and the User-Agent agree. */
#include "tailtrace.h"

#define VERSION_STR2(x) #x
#define VERSION_STR(x) VERSION_STR2(x)

const char *tt_version_string(void) {
  return VERSION_STR(TT_VERSION_MAJOR) "." VERSION_STR(TT_VERSION_MINOR) "." VERSION_STR(
      TT_VERSION_PATCH);
}
