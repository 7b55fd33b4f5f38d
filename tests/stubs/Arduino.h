/* Declarations-only stand-in for the Arduino core API the tinyopt glue uses, so the glue
 * can be compile-checked with arm-none-eabi-g++ where no Arduino core is installed.
 * tests/test_arduino_projects.py links it on the host against definitions of its own. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* No F_CPU: ArduinoCore-mbed (Nano 33 BLE, Pico) does not define it. The core clock comes
 * from CMSIS' SystemCoreClock (mbed, STM32 cores) or Teensy 4's F_CPU_ACTUAL. */
#if defined(ARDUINO_ARCH_MBED) || defined(ARDUINO_ARCH_STM32)
extern "C" uint32_t SystemCoreClock;
#endif
#if defined(__IMXRT1062__)
extern "C" volatile uint32_t F_CPU_ACTUAL;
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
