/* Entry point of the emulated board qemu-m4: bare metal, the harness serves forever. */
#include "tinyopt_platform.h"

int main(void) {
  tinyopt_platform_init();
  tinyopt_harness_setup();
  for (;;) tinyopt_harness_poll();
}
