/* Fuzz target: arbitrary bytes as a spool segment file. Opening and draining the spool must
 * never crash, whatever a crash or a bad disk left behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[64];
  if (dir[0] == '\0') {
    snprintf(dir, sizeof dir, "/tmp/tt-fuzz-spool-%d", (int)getpid());
  }
  char path[128];
  snprintf(path, sizeof path, "%s/seg-0000000000000001.tts", dir);
  tt_spool_opts_t o = {0};
  o.dir = dir;
  o.max_bytes = 1 << 20;
  tt_spool_t *s = NULL;
  char err[256];
  /* Create the directory through a first open, then plant the input as the oldest segment. */
  if (tt__spool_open(&o, &s, err, sizeof err) != 0)
    return 0;
  tt__spool_close(s);
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return 0;
  if (size > 0)
    fwrite(data, 1, size, f);
  fclose(f);
  if (tt__spool_open(&o, &s, err, sizeof err) == 0) {
    tt_buf_t b = TT_BUF_INIT;
    int n = 0;
    while (n++ < 1000 && tt__spool_peek(s, &b, NULL) == 0)
      tt__spool_ack(s);
    tt__buf_free(&b);
    tt__spool_close(s);
  }
  unlink(path);
  return 0;
}
