/* Runs the aot model on the inputs of to_inputs.h and prints every output byte in hex,
 * one inference per line, through semihosting (tests/aot_qemu.py compares them with the
 * TFLM runtime). */
#include <stdint.h>
#include <string.h>

#include "tinyopt_model.h"
#include "to_inputs.h"

void to_puts(const char *s);

int main(void) {
  static char line[2 * TO_OUTPUT_BYTES + 2];
  static const char hex[] = "0123456789abcdef";
  if (tinyopt_model_init() != 0 || tinyopt_model_input_bytes() != TO_INPUT_BYTES ||
      tinyopt_model_output_bytes() != TO_OUTPUT_BYTES) {
    to_puts("bad model\n");
    return 1;
  }
  for (int s = 0; s < TO_SAMPLES; ++s) {
    const int8_t *y;
    memcpy(tinyopt_model_input(), to_inputs[s], TO_INPUT_BYTES);
    tinyopt_model_invoke();
    y = tinyopt_model_output();
    for (int i = 0; i < TO_OUTPUT_BYTES; ++i) {
      line[2 * i] = hex[((uint8_t)y[i]) >> 4];
      line[2 * i + 1] = hex[((uint8_t)y[i]) & 15];
    }
    line[2 * TO_OUTPUT_BYTES] = '\n';
    line[2 * TO_OUTPUT_BYTES + 1] = 0;
    to_puts(line);
  }
  to_puts("done\n");
  return 0;
}
