/* tailtrace-collector entry point (placeholder until the collector core lands). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("tailtrace-collector %s\n", TT_VERSION_STRING_BUILD);
    return 0;
  }
  fprintf(stderr, "tailtrace-collector %s: not implemented yet\n", TT_VERSION_STRING_BUILD);
  return 1;
}
