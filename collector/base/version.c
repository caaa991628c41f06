/* Collector version string, one place for --version, the admin port and User-Agent. */
#include "version.h"

const char *tt__collector_version(void) {
  return TT_VERSION_STRING_BUILD;
}
