/* Function-entry tracer for scripts/hot-functions (a development tool, not part of the product).
 *
 * Loaded with LD_PRELOAD into docker-machine-driver-ec2spot. It puts a breakpoint (int3) on the
 * first byte of every function listed in $HOT_FN_STARTS (hex offsets from the executable's load
 * address, sorted ascending, one per line) when the process's executable is $HOT_FN_EXE. The first time a function runs, the SIGTRAP handler
 * writes its offset to $HOT_FN_OUT/<pid>.hits, puts the original byte back and resumes there,
 * so each function costs one trap and the file lists functions in the order they first ran.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static uintptr_t base, text_lo, text_hi;
static uintptr_t *starts;
static unsigned char *orig;
static size_t count;
static int out = -1;

static long find(uintptr_t off) {
  size_t lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (starts[mid] < off) lo = mid + 1;
    else hi = mid;
  }
  return (lo < count && starts[lo] == off) ? (long)lo : -1;
}

static void on_trap(int sig, siginfo_t *si, void *ctx) {
  ucontext_t *uc = ctx;
  uintptr_t at = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
  long i = (at >= base) ? find(at - base) : -1;
  if (i < 0) { /* a breakpoint that is not ours: behave as if we were not here */
    signal(SIGTRAP, SIG_DFL);
    raise(SIGTRAP);
    return;
  }
  if (*(volatile unsigned char *)at == 0xCC) {
    char line[24], digits[20];
    int n = 0, k = 0;
    uintptr_t off = at - base;
    do { digits[k++] = "0123456789abcdef"[off & 15]; off >>= 4; } while (off);
    while (k) line[n++] = digits[--k];
    line[n++] = '\n';
    (void)!write(out, line, n);
    *(volatile unsigned char *)at = orig[i];
  }
  uc->uc_mcontext.gregs[REG_RIP] = (greg_t)at;
}

static int main_program(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size; (void)data;
  base = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type == PT_LOAD && (p->p_flags & PF_X)) {
      text_lo = (base + p->p_vaddr) & ~4095UL;
      text_hi = (base + p->p_vaddr + p->p_memsz + 4095) & ~4095UL;
    }
  }
  return 1; /* the first object is the executable */
}

__attribute__((constructor)) static void trace_init(void) {
  const char *list = getenv("HOT_FN_STARTS"), *dir = getenv("HOT_FN_OUT");
  const char *exe = getenv("HOT_FN_EXE");
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (!list || !dir || !exe || len < 0) return;
  self[len] = 0;
  if (strcmp(self, exe) != 0) return; /* only the traced binary, not the harness driving it */
  dl_iterate_phdr(main_program, NULL);
  FILE *f = fopen(list, "r");
  if (!f) return;
  size_t cap = 1 << 16;
  starts = malloc(cap * sizeof *starts);
  unsigned long v;
  while (fscanf(f, "%lx", &v) == 1) {
    if (count == cap) starts = realloc(starts, (cap *= 2) * sizeof *starts);
    if (base + v >= text_lo && base + v < text_hi) starts[count++] = v;
  }
  fclose(f);
  char path[4096];
  snprintf(path, sizeof path, "%s/%d.hits", dir, (int)getpid());
  out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return;
  /* First line: the command line, so the analysis can tell a plugin from the agent. */
  int cmd = open("/proc/self/cmdline", O_RDONLY);
  ssize_t n = cmd < 0 ? 0 : read(cmd, path, sizeof path - 1);
  for (ssize_t i = 0; i < n; i++)
    if (path[i] == 0 || path[i] == '\n') path[i] = ' ';
  (void)!write(out, "# ", 2);
  (void)!write(out, path, n > 0 ? n : 0);
  (void)!write(out, "\n", 1);
  if (cmd >= 0) close(cmd);
  orig = malloc(count);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_trap;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGTRAP, &sa, NULL);
  mprotect((void *)text_lo, text_hi - text_lo, PROT_READ | PROT_WRITE | PROT_EXEC);
  for (size_t i = 0; i < count; i++) {
    unsigned char *p = (unsigned char *)(base + starts[i]);
    orig[i] = *p;
    *p = 0xCC;
  }
}
