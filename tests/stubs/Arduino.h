/* Declarations-only stand-in for the Arduino core API the tinyopt glue uses, so the glue
 * can be compile-checked with arm-none-eabi-g++ where no Arduino core is installed.
 * Nothing here is linked or run. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifndef F_CPU
#define F_CPU 64000000L
#endif

class HardwareSerialStub {
 public:
  void begin(unsigned long baud);
  int available();
  int read();
  size_t write(const uint8_t *buf, size_t n);
  size_t print(const char *s);
  explicit operator bool();
};
extern HardwareSerialStub Serial;

unsigned long micros(void);
void delayMicroseconds(unsigned int us);
