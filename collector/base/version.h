#ifndef TT_COLLECTOR_VERSION_H
#define TT_COLLECTOR_VERSION_H
/* Returns the collector's version ("0.1.0"); static storage. Any thread. */
const char *tt__collector_version(void);
#endif
