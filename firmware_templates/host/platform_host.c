/* Host glue (Linux/macOS): the firmware serves the harness over a pseudo-terminal of its
 * own, as QEMU's "-serial pty" does, so tests drive it with the same serial client as a
 * board. The pty path is printed on stdout ("char device redirected to /dev/pts/N").
 * The slave side is put in raw mode here, before any client opens it (no echo, no CR/LF
 * translation), and boot output waits until a client has opened the port, because bytes
 * written while nobody holds the slave open would be lost. Clients that flush their input
 * right after opening (pyserial does) would also drop early output: the master runs in
 * packet mode until the client's flush is seen (or 500 ms have passed), then boots. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE 1 /* cfmakeraw */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tinyopt_platform.h"

static int g_master = -1;
static int g_closed;
static unsigned char g_pending[256]; /* client bytes read during the start-up handshake */
static size_t g_pending_len, g_pending_pos;

static void die(const char *what) {
  fprintf(stderr, "tinyopt host: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void make_raw(const char *slave_path) {
  struct termios t;
  int fd = open(slave_path, O_RDWR | O_NOCTTY);
  if (fd < 0) die("open pty slave");
  if (tcgetattr(fd, &t) != 0) die("tcgetattr");
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  if (tcsetattr(fd, TCSANOW, &t) != 0) die("tcsetattr");
  close(fd); /* from now on the master sees a hang-up until a client opens the slave */
}

static void wait_for_client(void) {
  for (;;) {
    struct pollfd p;
    p.fd = g_master;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 20) < 0 && errno != EINTR) die("poll");
    if (!(p.revents & POLLHUP)) return;
    {
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In packet mode every read from the master starts with a status byte: 0 for data, else
 * TIOCPKT_* flags. Wait for TIOCPKT_FLUSHREAD (the client flushed its input queue). */
static void wait_for_client_flush(void) {
  int64_t deadline = now_ms() + 500;
  for (;;) {
    unsigned char buf[sizeof g_pending + 1];
    struct pollfd p;
    int64_t left = deadline - now_ms();
    ssize_t n;
    if (left <= 0) return;
    p.fd = g_master;
    p.events = POLLIN | POLLPRI;
    p.revents = 0;
    if (poll(&p, 1, (int)left) <= 0) continue;
    if (p.revents & POLLHUP) return; /* the client went away again: boot anyway */
    n = read(g_master, buf, sizeof buf);
    if (n <= 0) return;
    if (buf[0] == TIOCPKT_DATA) { /* the client spoke first: keep its bytes */
      size_t k = (size_t)(n - 1);
      if (k > sizeof g_pending - g_pending_len) k = sizeof g_pending - g_pending_len;
      memcpy(g_pending + g_pending_len, buf + 1, k);
      g_pending_len += k;
      return;
    }
    if (buf[0] & TIOCPKT_FLUSHREAD) return;
  }
}

void tinyopt_platform_init(void) {
  int on = 1, off = 0;
  const char *name;
  g_master = posix_openpt(O_RDWR | O_NOCTTY);
  if (g_master < 0) die("posix_openpt");
  if (grantpt(g_master) != 0) die("grantpt");
  if (unlockpt(g_master) != 0) die("unlockpt");
  name = ptsname(g_master);
  if (!name) die("ptsname");
  make_raw(name);
  if (ioctl(g_master, TIOCPKT, &on) != 0) die("ioctl TIOCPKT");
  printf("char device redirected to %s (label serial0)\n", name);
  fflush(stdout);
  wait_for_client();
  wait_for_client_flush();
  if (ioctl(g_master, TIOCPKT, &off) != 0) die("ioctl TIOCPKT");
}

int tinyopt_platform_getc(void) {
  unsigned char c;
  if (g_pending_pos < g_pending_len) return g_pending[g_pending_pos++];
  for (;;) {
    ssize_t n = read(g_master, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    g_closed = 1; /* EIO: the client closed the port */
    return -1;
  }
}

int tinyopt_platform_rx_ready(void) {
  struct pollfd p;
  if (g_pending_pos < g_pending_len) return 1;
  if (g_closed) return 1;
  p.fd = g_master;
  p.events = POLLIN;
  p.revents = 0;
  /* POLLHUP too: getc then reports the closed link */
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

void tinyopt_platform_write(const char *s, size_t n) {
  while (n) {
    ssize_t w = write(g_master, s, n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      g_closed = 1;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

uint64_t tinyopt_platform_time_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t tinyopt_platform_cycles(void) { return 0; }

const char *tinyopt_platform_timer_name(void) { return "clock_monotonic"; }

int tinyopt_host_link_closed(void) { return g_closed; }
