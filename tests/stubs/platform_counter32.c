/* Test glue for the harness on the host, with a cycle counter that behaves like an ESP32's
 * CCOUNT: 32 bits wide, extended to 64 bits by the glue from the reads it sees, while the
 * µs clock is a separate 64-bit timer (esp_timer). Time is virtual and deterministic: every
 * model invocation (linked with -Wl,--wrap=tinyopt_model_invoke) advances it by
 * STUB_CYCLES_PER_INVOKE cycles at 1 GHz, so one invocation wraps the 32-bit counter at most
 * once and the reported m-infer-cycles must equal N * STUB_CYCLES_PER_INVOKE exactly.
 * The link is stdin/stdout; the program ends at end of input. Used by
 * tests/test_harness_robustness.py only. */
#include <stdint.h>
#include <stdio.h>

#include "tinyopt_platform.h"

#define STUB_CYCLES_PER_INVOKE 3000000000u

int __real_tinyopt_model_invoke(void);

static uint64_t g_true_cycles; /* the virtual hardware's elapsed cycles */
static uint32_t g_last_raw;
static uint64_t g_high;
static int g_eof;

int __wrap_tinyopt_model_invoke(void) {
  g_true_cycles += STUB_CYCLES_PER_INVOKE;
  return __real_tinyopt_model_invoke();
}

void tinyopt_platform_init(void) {}

int tinyopt_platform_getc(void) {
  int c = getchar();
  if (c == EOF) g_eof = 1;
  return c == EOF ? -1 : c;
}

/* The whole script is on stdin before the first command runs, so "a byte waits" would
 * always be true here: the interrupt path is tested against the emulated board instead. */
int tinyopt_platform_rx_ready(void) { return 0; }

void tinyopt_platform_write(const char *s, size_t n) {
  fwrite(s, 1, n, stdout);
  fflush(stdout);
}

uint64_t tinyopt_platform_time_us(void) { return g_true_cycles / 1000u; }

uint64_t tinyopt_platform_cycles(void) {
  uint32_t now = (uint32_t)g_true_cycles; /* what a 32-bit counter register shows */
  if (now < g_last_raw) g_high += (uint64_t)1 << 32;
  g_last_raw = now;
  return g_high | now;
}

const char *tinyopt_platform_timer_name(void) { return "stub-counter32"; }

int main(void) {
  tinyopt_platform_init();
  tinyopt_harness_setup();
  while (!g_eof) tinyopt_harness_poll();
  return 0;
}
