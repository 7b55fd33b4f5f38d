/* Board glue interface: one implementation per board family (src/platform_<family>.c*).
 * The harness uses nothing else from the board. */
#ifndef TINYOPT_PLATFORM_H
#define TINYOPT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void tinyopt_platform_init(void); /* serial at the board's baud, timer */
int tinyopt_platform_getc(void); /* blocking; 0..255, or -1 when the link closed */
int tinyopt_platform_rx_ready(void); /* never blocks: nonzero when a byte waits */
void tinyopt_platform_write(const char *s, size_t n);
uint64_t tinyopt_platform_time_us(void); /* monotonic, 64-bit, never wraps */
uint64_t tinyopt_platform_cycles(void); /* cycle counter, or 0 if none */
const char *tinyopt_platform_timer_name(void);

/* Optional: glue that must give time to an RTOS during long inference loops (ESP32's task
 * watchdog) defines TINYOPT_PLATFORM_HAS_YIELD and implements tinyopt_platform_yield(). */
#ifdef TINYOPT_PLATFORM_HAS_YIELD
void tinyopt_platform_yield(void);
#else
#define tinyopt_platform_yield() ((void)0)
#endif

/* Harness entry points, called by src/main.c*. */
void tinyopt_harness_setup(void);
void tinyopt_harness_poll(void);

#ifdef __cplusplus
}
#endif

#endif /* TINYOPT_PLATFORM_H */
