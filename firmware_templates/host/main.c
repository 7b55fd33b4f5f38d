/* Host entry point: serve the harness until the client closes the pty. */
#include "tinyopt_platform.h"

int tinyopt_host_link_closed(void);

int main(void) {
  tinyopt_platform_init();
  tinyopt_harness_setup();
  while (!tinyopt_host_link_closed()) tinyopt_harness_poll();
  return 0;
}
