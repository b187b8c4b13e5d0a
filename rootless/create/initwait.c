/*
 * initwait: what a created container's init becomes while it waits for `start`.
 *
 * The Python init (rootless/create/init.py) sets the whole container up, then executes this program
 * from a sealed memfd in place of the container's process. Waiting as Python would keep an
 * interpreter resident for as long as the container stays created (about 8 MiB of PSS, as
 * much as runc's Go init); this waits in a few pages. It does only what the waiting init
 * must, in runc's way:
 *   1. make itself undumpable: the fds under /proc/1/fd of the waiting init then cannot be
 *      opened or read by the container (it would need CAP_SYS_PTRACE), so the fd of exec.fifo
 *      it holds stays out of reach (the runc CVE-2024-21626 class). The runtime on the host keeps its access to
 *      /proc/PID/ns for `exec`: after this execve the init's memory belongs to the container's
 *      user namespace, in which the caller holds every capability. The container's process
 *      is dumpable again after its own execve, as under runc;
 *   2. end on TERM, INT, HUP, QUIT, USR1 and USR2: as PID 1 of a PID namespace it would
 *      ignore every signal it has no handler for, and `kill ID` of a created container must
 *      end it, as it ends runc's init;
 *   3. open exec.fifo for writing (NAME relative to FD: "exec.fifo" in the state directory,
 *      or "/proc/self/fd/FD" when FD is the fifo itself), which blocks until `start` opens it
 *      for reading, then write "0" (go) and close FD;
 *   4. execve the container's process. execve recomputes capabilities from the inheritable,
 *      bounding and ambient sets, which this execve of a file without capabilities keeps
 *      unchanged, so the process gets what a direct execve from the Python init would give;
 *      seccomp, no_new_privs, rlimits, the user and the umask carry over unchanged too.
 *
 * usage: initwait FD NAME EXECUTABLE ARGV0 [ARG...]  (the environment is the process's)
 *
 * Built static and without libc (setup.py): it runs after pivot_root, where a dynamic
 * program would load the container's libc, if the container has one.
 */

#include <asm/unistd.h>

#define O_WRONLY 01
#define O_CLOEXEC 02000000
#define PR_SET_DUMPABLE 4
#define PR_SET_NAME 15
#define SA_RESTORER 0x04000000

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start\n"
        "  hlt\n");

static long sys(long n, long a, long b, long c, long d)
{
    register long r10 __asm__("r10") = d;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n"
        "  mov x0, sp\n"
        "  bl start\n");

static long sys(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#else
#error "initwait supports x86_64 and aarch64; rootless falls back to waiting in Python elsewhere"
#endif

struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static void end(int status)
{
    for (;;)
        sys(__NR_exit_group, status, 0, 0, 0);
}

static void on_signal(int signum)
{
    end(128 + signum);
}

/* Never called: the handler exits. x86_64 refuses to deliver to a handler without one. */
static void no_return(void)
{
    end(1);
}

static unsigned long length(const char *text)
{
    unsigned long n = 0;
    while (text[n])
        n++;
    return n;
}

static void say(const char *text)
{
    sys(__NR_write, 2, (long)text, length(text), 0);
}

/* An error after `start` has been told "0": the container's stderr is the only place left. */
static void fail(const char *what, const char *name, long err)
{
    char digits[24];
    int i = sizeof(digits) - 1;
    unsigned long value = err < 0 ? -err : err;
    digits[i] = 0;
    do {
        digits[--i] = '0' + value % 10;
        value /= 10;
    } while (value && i > 0);
    say("rootless init: ");
    say(what);
    say(" `");
    say(name);
    say("`: errno ");
    say(digits + i);
    say("\n");
    end(127);
}

void start(long *stack)
{
    static const int ending[] = {15, 2, 1, 3, 10, 12};  /* TERM INT HUP QUIT USR1 USR2 */
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    long dir_fd = 0, fifo;
    const char *digit;
    struct kernel_sigaction action = {on_signal, SA_RESTORER, no_return, 0};
    unsigned long i;

    if (argc < 5)
        fail("usage: initwait FD NAME EXECUTABLE ARGV0", "", 22);
    sys(__NR_prctl, PR_SET_DUMPABLE, 0, 0, 0);
    /* Executed from a memfd, the command name would be the fd's number. */
    sys(__NR_prctl, PR_SET_NAME, (long)"rootless:init", 0, 0);
    for (i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
        sys(__NR_rt_sigaction, ending[i], (long)&action, 0, sizeof(action.mask));
    for (digit = argv[1]; *digit >= '0' && *digit <= '9'; digit++)
        dir_fd = dir_fd * 10 + (*digit - '0');
    fifo = sys(__NR_openat, dir_fd, (long)argv[2], O_WRONLY | O_CLOEXEC, 0);
    if (fifo < 0)
        fail("open", argv[2], fifo);
    sys(__NR_write, fifo, (long)"0", 1, 0);
    sys(__NR_close, fifo, 0, 0, 0);
    sys(__NR_close, dir_fd, 0, 0, 0);
    /* execve resets the handlers above to the default. */
    fail("execve", argv[3], sys(__NR_execve, (long)argv[3], (long)(argv + 4), (long)envp, 0));
}
