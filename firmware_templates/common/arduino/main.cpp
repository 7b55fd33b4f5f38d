/* Arduino entry point: setup() brings up the serial link and runs the boot golden check,
 * loop() serves one byte of the MLPerf Tiny protocol at a time. */
#include <Arduino.h>

#include "tinyopt_platform.h"

void setup() {
  tinyopt_platform_init();
  tinyopt_harness_setup();
}

void loop() { tinyopt_harness_poll(); }
