/* tinyopt serial harness: the MLPerf Tiny (EEMBC) device protocol over the board's serial
 * link, independent of the backend and of the board (C99, no printf: newlib-nano prints
 * neither floats nor 64-bit integers, so the harness formats numbers itself).
 *
 * Commands end with '%'; each answer ends with "m-ready". Lines end with "\r\n".
 *   name%            m-name-dut-[tinyopt]
 *   profile%         m-profile-[tinyopt] m-model-[NAME]
 *   timestamp%       m-lap-us-US
 *   db load N%       m-[Expecting N bytes]; then "db HEX%" chunks until m-load-done
 *   db print [N] [O]%  m-buffer-HEX... (32 bytes per line)
 *   infer N W%       m-warmup-start-W m-warmup-done m-infer-start-N m-lap-us-T0 m-lap-us-T1
 *                    m-infer-done m-results-[..] + extension m-infer-cycles-C
 *                    N, W <= TINYOPT_INFER_MAX. Any byte received while it runs ends it early:
 *                    m-error-[infer interrupted ...] with the runs done so far, then m-ready;
 *                    the byte is left for the next command.
 *   results%         m-results-[..] + extension m-results-int8-[..]
 *   info%            (extension) backend, timer, arena, sizes, model sha
 *   layers N%        (extension) N profiled inferences, per step (layer) totals over the N:
 *                    m-layers-[runs=N,steps=K]
 *                    m-layer-overhead-[pairs=P,cycles=C,us=U]  (cost of P empty event pairs)
 *                    m-layer-[STEP,OP_INDEX,OPCODE,CYCLES,US]  (one per step, raw totals)
 *                    m-layers-total-[CYCLES,US]  (the N profiled inferences, whole)
 * At boot (extension): m-golden-pass | m-golden-fail-[mismatches=N], then m-init-done. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tinyopt_golden.h"
#include "tinyopt_model.h"
#include "tinyopt_platform.h"
#include "tinyopt_quant.h"

#define CMD_MAX 2048 /* "db " + up to ~1000 bytes of hex per chunk */
#define HEX_PER_LINE 32
/* Beyond ~10 million runs no measurement needs more (MLPerf windows are >= 10 s); a count of
 * 10^12 would keep the board busy for good. */
#define TINYOPT_INFER_MAX 10000000u

static char g_cmd[CMD_MAX + 1];
static size_t g_cmd_len;
static int g_cmd_overflow;

static int8_t g_input[TINYOPT_INPUT_BYTES]; /* what db load filled; copied in before each run */
static size_t g_load_expected;
static size_t g_load_count;
static int g_model_ok;

/* ---- output: one line at a time ---- */
static char g_line[256];
static size_t g_line_len;

static void flush_line(void) {
  if (g_line_len) tinyopt_platform_write(g_line, g_line_len);
  g_line_len = 0;
}

static void put_char(char c) {
  if (g_line_len == sizeof g_line) flush_line();
  g_line[g_line_len++] = c;
}

static void put_str(const char *s) {
  while (*s) put_char(*s++);
}

static void end_line(void) {
  put_char('\r');
  put_char('\n');
  flush_line();
}

static void put_u64(uint64_t v) {
  char tmp[21];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v);
  while (n) put_char(tmp[--n]);
}

static void put_i64(int64_t v) {
  if (v < 0) {
    put_char('-');
    put_u64((uint64_t)(-(v + 1)) + 1u);
  } else {
    put_u64((uint64_t)v);
  }
}

/* Fixed 3 decimals, rounded half away from zero (the MLPerf results format). */
static void put_f3(float f) {
  int neg = f < 0.0f;
  double a = neg ? -(double)f : (double)f;
  uint64_t milli = (uint64_t)(a * 1000.0 + 0.5);
  if (neg && milli) put_char('-');
  put_u64(milli / 1000u);
  put_char('.');
  put_char((char)('0' + (int)(milli / 100u % 10u)));
  put_char((char)('0' + (int)(milli / 10u % 10u)));
  put_char((char)('0' + (int)(milli % 10u)));
}

static void put_hex_byte(uint8_t b) {
  static const char digits[] = "0123456789abcdef";
  put_char(digits[b >> 4]);
  put_char(digits[b & 15u]);
}

static void line(const char *s) {
  put_str(s);
  end_line();
}

static void error_line(const char *what) {
  put_str("m-error-[");
  put_str(what);
  put_str("]");
  end_line();
}

/* ---- model runs ---- */
static int run_once(const int8_t *input) {
  memcpy(tinyopt_model_input(), input, TINYOPT_INPUT_BYTES);
  return tinyopt_model_invoke();
}

static void print_results(void) {
  const int8_t *out = tinyopt_model_output();
  size_t n = tinyopt_model_output_bytes();
  size_t i;
  put_str("m-results-[");
  for (i = 0; i < n; ++i) {
    float y;
    tinyopt_dequantize_output(&out[i], &y, 1);
    if (i) put_char(',');
    put_f3(y);
  }
  put_str("]");
  end_line();
}

static void print_results_int8(void) {
  const int8_t *out = tinyopt_model_output();
  size_t n = tinyopt_model_output_bytes();
  size_t i;
  put_str("m-results-int8-[");
  for (i = 0; i < n; ++i) {
    if (i) put_char(',');
    put_i64(out[i]);
  }
  put_str("]");
  end_line();
}

static void golden_check(void) {
  size_t i, mismatches = 0;
  const int8_t *out;
  if (run_once(tinyopt_golden_input) != 0) {
    error_line("golden invoke failed");
    put_str("m-golden-fail-[mismatches=");
    put_u64(TINYOPT_OUTPUT_BYTES);
    put_str("]");
    end_line();
    return;
  }
  out = tinyopt_model_output();
  for (i = 0; i < TINYOPT_OUTPUT_BYTES; ++i) mismatches += out[i] != tinyopt_golden_output[i];
  if (mismatches == 0) {
    line("m-golden-pass");
  } else {
    put_str("m-golden-fail-[mismatches=");
    put_u64(mismatches);
    put_str("]");
    end_line();
  }
}

/* ---- command parsing helpers ---- */
static const char *skip_spaces(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == ',') ++s;
  return s;
}

/* Parse a decimal unsigned number ending at a separator or at the end; returns the position
 * after it, or NULL if there is none, it has trailing junk ("5x", "-1") or it does not fit
 * 64 bits (a silent wrap would turn "db load 18446744073709551617" into 1 byte). */
static const char *parse_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  const char *start;
  s = skip_spaces(s);
  start = s;
  while (*s >= '0' && *s <= '9') {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10u) return NULL;
    v = v * 10u + d;
    ++s;
  }
  if (s == start || (*s != '\0' && *s != ' ' && *s != '\t' && *s != ',')) return NULL;
  *out = v;
  return s;
}

/* "[A] [B]" and nothing more; A and B keep their defaults when absent. */
static int parse_two(const char *s, uint64_t *a, uint64_t *b) {
  s = skip_spaces(s);
  if (*s) s = parse_u64(s, a);
  if (s && *skip_spaces(s)) s = parse_u64(s, b);
  return s != NULL && *skip_spaces(s) == '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int starts_with_word(const char *s, const char *word) {
  size_t n = strlen(word);
  return strncmp(s, word, n) == 0 && (s[n] == '\0' || s[n] == ' ');
}

/* ---- commands ---- */
static void cmd_db(const char *args) {
  uint64_t n;
  args = skip_spaces(args);
  if (starts_with_word(args, "load")) {
    const char *p = parse_u64(args + 4, &n);
    if (!p || *skip_spaces(p)) {
      error_line("db load needs a byte count");
      return;
    }
    if (n > TINYOPT_INPUT_BYTES) {
      error_line("db load: more bytes than the model input");
      return;
    }
    g_load_expected = (size_t)n;
    g_load_count = 0;
    put_str("m-[Expecting ");
    put_u64(n);
    put_str(" bytes]");
    end_line();
    if (n == 0) line("m-load-done");
  } else if (starts_with_word(args, "print")) {
    uint64_t count = g_load_count ? g_load_count : TINYOPT_INPUT_BYTES, start = 0;
    size_t i;
    if (!parse_two(args + 5, &count, &start)) {
      error_line("db print takes numbers: db print [N] [offset]");
      return;
    }
    /* clamped as 64-bit values: a cast to a 32-bit size_t first would wrap */
    if (start > TINYOPT_INPUT_BYTES) start = TINYOPT_INPUT_BYTES;
    if (count > TINYOPT_INPUT_BYTES - start) count = TINYOPT_INPUT_BYTES - start;
    for (i = 0; i < (size_t)count; ++i) {
      if (i % HEX_PER_LINE == 0) put_str("m-buffer-");
      put_hex_byte((uint8_t)g_input[start + i]);
      if (i % HEX_PER_LINE == HEX_PER_LINE - 1 || i + 1 == (size_t)count) end_line();
    }
  } else {
    /* a chunk of hex bytes for the pending db load, checked whole before any byte is
     * stored: a rejected chunk leaves the load as it was, so the client can resend it */
    size_t len = strlen(args), i;
    if (len == 0) {
      error_line("db: no hex bytes");
      return;
    }
    if (len % 2) {
      error_line("db: odd number of hex digits");
      return;
    }
    for (i = 0; i < len; ++i) {
      if (hex_value(args[i]) < 0) {
        error_line("db: not a hex byte");
        return;
      }
    }
    if (len / 2 > g_load_expected - g_load_count) {
      error_line("db: more bytes than announced by db load");
      return;
    }
    for (i = 0; i < len; i += 2) {
      g_input[g_load_count++] = (int8_t)(uint8_t)(hex_value(args[i]) * 16 + hex_value(args[i + 1]));
    }
    if (g_load_count == g_load_expected) line("m-load-done");
  }
}

/* A host that sends anything while a run goes on wants the board back (a typo, a dead
 * runner, a Ctrl-C): polled between runs, so the longest wait is one inference. Line ends
 * and spaces after the '%' of the infer command itself are not a request to stop. The byte
 * that stops a run is kept for the command parser. */
static int g_pushback = -1;

static int stop_requested(void) {
  while (g_pushback < 0 && tinyopt_platform_rx_ready()) {
    int c = tinyopt_platform_getc();
    if (c < 0) return 1; /* the link closed: nobody waits for the figures */
    if (c == ' ' || c == '\r' || c == '\n' || c == '\t') continue;
    g_pushback = c;
  }
  return g_pushback >= 0;
}

static void interrupted_line(const char *phase, uint64_t done, uint64_t asked, uint64_t us) {
  put_str("m-error-[infer interrupted in ");
  put_str(phase);
  put_str(" after ");
  put_u64(done);
  put_str(" of ");
  put_u64(asked);
  put_str(" runs, ");
  put_u64(us);
  put_str(" us]");
  end_line();
}

/* What every command that runs the model needs; prints the reason when it cannot. */
static int can_run(void) {
  if (g_load_count != g_load_expected) {
    /* half new, half old bytes: results for an input nobody sent */
    error_line("db load not finished: send the rest of its bytes first");
    return 0;
  }
  if (!g_model_ok) {
    error_line("model init failed");
    return 0;
  }
  return 1;
}

static void cmd_infer(const char *args) {
  uint64_t n = 1, w = 0, t0, t1, c0, c1, i;
  if (!parse_two(args, &n, &w) || n == 0) {
    /* N = 0 would print the results of an earlier input as if they were this one's */
    error_line("infer takes numbers: infer N [W], N >= 1");
    return;
  }
  if (n > TINYOPT_INFER_MAX || w > TINYOPT_INFER_MAX) {
    error_line("infer: at most 10000000 runs and 10000000 warm-up runs");
    return;
  }
  if (!can_run()) return;
  put_str("m-warmup-start-");
  put_u64(w);
  end_line();
  t0 = tinyopt_platform_time_us();
  for (i = 0; i < w; ++i) {
    if (stop_requested()) {
      interrupted_line("warm-up", i, w, tinyopt_platform_time_us() - t0);
      return;
    }
    if (run_once(g_input) != 0) {
      error_line("invoke failed");
      return;
    }
    tinyopt_platform_yield();
  }
  line("m-warmup-done");
  put_str("m-infer-start-");
  put_u64(n);
  end_line();
  t0 = tinyopt_platform_time_us();
  c0 = tinyopt_platform_cycles();
  for (i = 0; i < n; ++i) {
    if (stop_requested()) {
      interrupted_line("infer", i, n, tinyopt_platform_time_us() - t0);
      return;
    }
    /* the input is copied before every run: TFLM may reuse the input tensor's memory */
    if (run_once(g_input) != 0) {
      error_line("invoke failed");
      return;
    }
    tinyopt_platform_yield();
    /* keep 32-bit counter extensions current: a glue may extend its clock and its cycle
     * counter separately (ESP32 at 240 MHz: CCOUNT wraps every 17.9 s) */
    (void)tinyopt_platform_time_us();
    (void)tinyopt_platform_cycles();
  }
  c1 = tinyopt_platform_cycles();
  t1 = tinyopt_platform_time_us();
  put_str("m-lap-us-");
  put_u64(t0);
  end_line();
  put_str("m-lap-us-");
  put_u64(t1);
  end_line();
  line("m-infer-done");
  print_results();
  put_str("m-infer-cycles-");
  put_u64(c1 - c0);
  end_line();
}

/* ---- per-layer timing ---- */
#define LAYER_STEPS (TINYOPT_MODEL_LAYERS > 0 ? TINYOPT_MODEL_LAYERS : 1)
#define LAYER_MAX_RUNS 1000u
#define OVERHEAD_PAIRS 64

static uint64_t g_layer_cycles[LAYER_STEPS];
static uint64_t g_layer_us[LAYER_STEPS];
static uint64_t g_event_cycles, g_event_us;
static int g_layer_bad_step;

/* Both clocks are read at every event: on boards without a cycle counter the µs figure is
 * the one that counts. The reads themselves are what the overhead figure measures. */
static void on_layer_event(void *ctx, int step, int end) {
  uint64_t c = tinyopt_platform_cycles();
  uint64_t us = tinyopt_platform_time_us();
  (void)ctx;
  if (step < 0 || step >= LAYER_STEPS) {
    g_layer_bad_step = 1;
    return;
  }
  if (!end) {
    g_event_cycles = c;
    g_event_us = us;
  } else {
    g_layer_cycles[step] += c - g_event_cycles;
    g_layer_us[step] += us - g_event_us;
  }
}

static void put_layer_line(int step) {
  put_str("m-layer-[");
  put_u64((uint64_t)step);
  put_char(',');
  put_i64(tinyopt_model_layer_op_index(step));
  put_char(',');
  put_str(tinyopt_model_layer_op(step));
  put_char(',');
  put_u64(g_layer_cycles[step]);
  put_char(',');
  put_u64(g_layer_us[step]);
  put_str("]");
  end_line();
}

static void cmd_layers(const char *args) {
  uint64_t n = 1, unused = 0, c0, c1, t0, t1, i;
  int step;
  if (!parse_two(args, &n, &unused) || n == 0 || n > LAYER_MAX_RUNS || unused != 0) {
    error_line("layers takes one number: layers N, 1 <= N <= 1000");
    return;
  }
  if (!can_run()) return;
  if (tinyopt_model_profiling(1) != 0) {
    error_line("profiling could not start");
    tinyopt_model_profiling(0);
    return;
  }
  /* what an event pair costs with nothing between: subtracted from every step by the host */
  memset(g_layer_cycles, 0, sizeof g_layer_cycles);
  memset(g_layer_us, 0, sizeof g_layer_us);
  for (step = 0; step < OVERHEAD_PAIRS; ++step) {
    on_layer_event(NULL, 0, 0);
    on_layer_event(NULL, 0, 1);
  }
  put_str("m-layers-[runs=");
  put_u64(n);
  put_str(",steps=");
  put_u64((uint64_t)TINYOPT_MODEL_LAYERS);
  put_str("]");
  end_line();
  put_str("m-layer-overhead-[pairs=");
  put_u64(OVERHEAD_PAIRS);
  put_str(",cycles=");
  put_u64(g_layer_cycles[0]);
  put_str(",us=");
  put_u64(g_layer_us[0]);
  put_str("]");
  end_line();
  memset(g_layer_cycles, 0, sizeof g_layer_cycles);
  memset(g_layer_us, 0, sizeof g_layer_us);
  g_layer_bad_step = 0;
  c0 = tinyopt_platform_cycles();
  t0 = tinyopt_platform_time_us();
  for (i = 0; i < n; ++i) {
    if (stop_requested()) {
      interrupted_line("layers", i, n, tinyopt_platform_time_us() - t0);
      tinyopt_model_profiling(0);
      return;
    }
    memcpy(tinyopt_model_input(), g_input, TINYOPT_INPUT_BYTES);
    if (tinyopt_model_invoke_layers(on_layer_event, NULL) != 0) {
      error_line("invoke failed");
      tinyopt_model_profiling(0);
      return;
    }
    tinyopt_platform_yield();
  }
  c1 = tinyopt_platform_cycles();
  t1 = tinyopt_platform_time_us();
  tinyopt_model_profiling(0);
  if (g_layer_bad_step) {
    error_line("the model reported a step outside its layer table");
    return;
  }
  for (step = 0; step < TINYOPT_MODEL_LAYERS; ++step) put_layer_line(step);
  put_str("m-layers-total-[");
  put_u64(c1 - c0);
  put_char(',');
  put_u64(t1 - t0);
  put_str("]");
  end_line();
}

static void cmd_info(void) {
  put_str("m-info-backend-[");
  put_str(tinyopt_model_backend());
  put_str("]");
  end_line();
  put_str("m-info-timer-[");
  put_str(tinyopt_platform_timer_name());
  put_str("]");
  end_line();
  put_str("m-info-arena-bytes-[");
  put_u64(tinyopt_model_arena_used_bytes());
  put_str("]");
  end_line();
  put_str("m-info-input-bytes-[");
  put_u64(tinyopt_model_input_bytes());
  put_str("]");
  end_line();
  put_str("m-info-output-bytes-[");
  put_u64(tinyopt_model_output_bytes());
  put_str("]");
  end_line();
  line("m-info-model-sha-[" TINYOPT_MODEL_SHA16 "]");
}

static void execute(char *cmd) {
  size_t len = strlen(cmd);
  /* tolerate line ends and spaces around the command */
  while (len && (cmd[len - 1] == ' ' || cmd[len - 1] == '\r' || cmd[len - 1] == '\n' ||
                 cmd[len - 1] == '\t'))
    cmd[--len] = '\0';
  while (*cmd == ' ' || *cmd == '\r' || *cmd == '\n' || *cmd == '\t') ++cmd;

  if (strcmp(cmd, "name") == 0) {
    line("m-name-dut-[tinyopt]");
  } else if (strcmp(cmd, "profile") == 0) {
    line("m-profile-[tinyopt]");
    line("m-model-[" TINYOPT_MODEL_NAME "]");
  } else if (strcmp(cmd, "timestamp") == 0) {
    put_str("m-lap-us-");
    put_u64(tinyopt_platform_time_us());
    end_line();
  } else if (starts_with_word(cmd, "db")) {
    cmd_db(cmd + 2);
  } else if (starts_with_word(cmd, "infer")) {
    cmd_infer(cmd + 5);
  } else if (strcmp(cmd, "results") == 0) {
    if (!g_model_ok) {
      error_line("model init failed");
      line("m-ready");
      return;
    }
    print_results();
    print_results_int8();
  } else if (starts_with_word(cmd, "layers")) {
    cmd_layers(cmd + 6);
  } else if (strcmp(cmd, "info") == 0) {
    cmd_info();
  } else {
    error_line("unknown command");
  }
  line("m-ready");
}

void tinyopt_harness_setup(void) {
  g_model_ok = tinyopt_model_init() == 0;
  if (!g_model_ok) {
    error_line("model init failed");
  } else if (tinyopt_model_input_bytes() != TINYOPT_INPUT_BYTES ||
             tinyopt_model_output_bytes() != TINYOPT_OUTPUT_BYTES) {
    error_line("model sizes differ from the golden header");
    g_model_ok = 0;
  } else {
    golden_check();
  }
  memcpy(g_input, tinyopt_golden_input, TINYOPT_INPUT_BYTES);
  g_load_count = TINYOPT_INPUT_BYTES;
  g_load_expected = TINYOPT_INPUT_BYTES;
  line("m-init-done");
  line("m-ready");
}

void tinyopt_harness_poll(void) {
  int c = g_pushback >= 0 ? g_pushback : tinyopt_platform_getc();
  g_pushback = -1;
  if (c < 0) return;
  if (c == '%') {
    g_cmd[g_cmd_len] = '\0';
    if (g_cmd_overflow) {
      error_line("command too long");
      line("m-ready");
    } else {
      execute(g_cmd);
    }
    g_cmd_len = 0;
    g_cmd_overflow = 0;
    return;
  }
  if (g_cmd_len < CMD_MAX) {
    g_cmd[g_cmd_len++] = (char)c;
  } else {
    g_cmd_overflow = 1;
  }
}
