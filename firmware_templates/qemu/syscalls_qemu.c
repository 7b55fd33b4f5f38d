/* The newlib system calls a bare-metal program can reach (printf from a library, malloc,
 * abort), for the emulated board qemu-m4. Output goes to the serial link; there is no
 * file system and no input through stdio (the harness reads the UART itself). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tinyopt_platform.h"

extern char end; /* linker script: first free byte after .bss */
extern char _heap_limit; /* linker script: bottom of the reserved stack */
void tinyopt_qemu_fault(const char *what);

void *_sbrk(ptrdiff_t incr) {
  static char *brk = &end;
  char *prev = brk;
  if (incr > 0 && (size_t)incr > (size_t)(&_heap_limit - brk)) {
    errno = ENOMEM;
    return (void *)-1;
  }
  brk += incr;
  return prev;
}

int _write(int fd, const char *buf, int len) {
  (void)fd;
  tinyopt_platform_write(buf, (size_t)len);
  return len;
}

int _read(int fd, char *buf, int len) {
  (void)fd;
  (void)buf;
  (void)len;
  return 0;
}

int _close(int fd) {
  (void)fd;
  return -1;
}

int _fstat(int fd, struct stat *st) {
  (void)fd;
  st->st_mode = S_IFCHR;
  return 0;
}

int _isatty(int fd) {
  (void)fd;
  return 1;
}

int _lseek(int fd, int off, int whence) {
  (void)fd;
  (void)off;
  (void)whence;
  return 0;
}

int _getpid(void) { return 1; }

int _kill(int pid, int sig) {
  (void)pid;
  (void)sig;
  errno = EINVAL;
  return -1;
}

void _exit(int status) {
  (void)status;
  tinyopt_qemu_fault("exit");
  for (;;) {
  }
}
