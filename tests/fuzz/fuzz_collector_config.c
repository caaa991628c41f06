/* Fuzzes the YAML configuration loader: libyaml parsing, the key table, unit parsing, ${ENV}
 * expansion and policy construction (regex compilation included). */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_config_t c;
  tt_buf_t errs = TT_BUF_INIT;
  (void)tt__config_load_string((const char *)data, size, "fuzz.yaml", &c, &errs);
  tt__config_free(&c);
  tt__buf_free(&errs);
  return 0;
}
