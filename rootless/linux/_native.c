/*
 * rootless.linux._native: the system calls of rootless/linux/syscalls.py, one thin C function
 * each, so that the runtime's hot path loads no ctypes. `import ctypes` with its prototypes costs
 * about 4 ms on every create and run (ctypes, _ctypes, struct, the Structure classes), and the
 * container init loaded four more shared objects (resource, _prctl with libcap, termios,
 * _socket) for one call each; this module is one small shared object that needs only libc.
 *
 * The contract, the same as rootless/linux/libc.py's (the ctypes fallback, used when this
 * module did not build or ROOTLESS_NO_NATIVE=1): every function takes ints, str/bytes paths (or
 * None where the kernel takes NULL) and returns an int or None; a failure raises OSError with
 * the call's errno and nothing else. Naming the call, the path and a hint is syscalls.py's job,
 * in one place for both.
 *
 * Calls glibc 2.36 does not wrap go through syscall(2) with their SYS_* numbers, and the kernel
 * structures they take are spelled out here (their layouts are part of the kernel's ABI), so
 * no UAPI header newer than the build host's is needed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

/* Numbers shared by every architecture since the calls were added (Linux 5.2 to 5.12). */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#define KEYCTL_JOIN_SESSION_KEYRING 1
#define SECCOMP_SET_MODE_FILTER 1
#define BPF_PROG_LOAD 5
#define BPF_PROG_ATTACH 8
#define LINUX_CAPABILITY_VERSION_3 0x20080522

struct open_how_v0 { uint64_t flags, mode, resolve; };
struct mount_attr_v0 { uint64_t attr_set, attr_clr, propagation, userns_fd; };
struct sched_attr_v0 {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };
struct sock_fprog_abi { unsigned short len; const void *filter; };

static PyObject *fail(void)
{
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *none_or_fail(long result)
{
    if (result < 0)
        return fail();
    Py_RETURN_NONE;
}

static PyObject *long_or_fail(long result)
{
    if (result < 0)
        return fail();
    return PyLong_FromLong(result);
}

/* "O&" converter: str, bytes or os.PathLike to a bytes object (PyUnicode_FSConverter), None to
 * NULL. The caller releases the result with Py_XDECREF. */
static int path_or_none(PyObject *arg, void *address)
{
    PyObject **result = address;
    if (arg == NULL) {  /* cleanup call after a later argument failed */
        Py_CLEAR(*result);
        return 1;
    }
    if (arg == Py_None) {
        *result = NULL;
        return 1;
    }
    return PyUnicode_FSConverter(arg, result) ? Py_CLEANUP_SUPPORTED : 0;
}

#define PATH(object) ((object) ? PyBytes_AS_STRING(object) : NULL)

/* Releasing the arguments may free memory: errno is the call's all the same. */
#define KEEPING_ERRNO(statements) do { int saved_ = errno; statements; errno = saved_; } while (0)

static PyObject *n_mount(PyObject *self, PyObject *args)
{
    PyObject *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "O&O&O&kO&:mount", path_or_none, &source, path_or_none, &target,
                          path_or_none, &fstype, &flags, path_or_none, &data))
        return NULL;
    int result = mount(PATH(source), PATH(target), PATH(fstype), flags, PATH(data));
    KEEPING_ERRNO(Py_XDECREF(source); Py_XDECREF(target); Py_XDECREF(fstype); Py_XDECREF(data));
    return none_or_fail(result);
}

static PyObject *n_umount2(PyObject *self, PyObject *args)
{
    PyObject *target = NULL;
    int flags;
    if (!PyArg_ParseTuple(args, "O&i:umount2", PyUnicode_FSConverter, &target, &flags))
        return NULL;
    int result = umount2(PyBytes_AS_STRING(target), flags);
    KEEPING_ERRNO(Py_DECREF(target));
    return none_or_fail(result);
}

static PyObject *n_unshare(PyObject *self, PyObject *args)
{
    int flags;
    if (!PyArg_ParseTuple(args, "i:unshare", &flags))
        return NULL;
    return none_or_fail(unshare(flags));
}

static PyObject *n_setns(PyObject *self, PyObject *args)
{
    int fd, nstype;
    if (!PyArg_ParseTuple(args, "ii:setns", &fd, &nstype))
        return NULL;
    return none_or_fail(setns(fd, nstype));
}

static PyObject *n_pivot_root(PyObject *self, PyObject *args)
{
    PyObject *new_root = NULL, *put_old = NULL;
    if (!PyArg_ParseTuple(args, "O&O&:pivot_root", PyUnicode_FSConverter, &new_root, PyUnicode_FSConverter,
                          &put_old))
        return NULL;
    long result = syscall(SYS_pivot_root, PyBytes_AS_STRING(new_root), PyBytes_AS_STRING(put_old));
    KEEPING_ERRNO(Py_DECREF(new_root); Py_DECREF(put_old));
    return none_or_fail(result);
}

static PyObject *set_name(PyObject *args, const char *format, int (*set)(const char *, size_t))
{
    const char *name;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, format, &name, &length))
        return NULL;
    return none_or_fail(set(name, length));
}

static PyObject *n_sethostname(PyObject *self, PyObject *args)
{
    return set_name(args, "y#:sethostname", sethostname);
}

static PyObject *n_setdomainname(PyObject *self, PyObject *args)
{
    return set_name(args, "y#:setdomainname", setdomainname);
}

static PyObject *n_prctl(PyObject *self, PyObject *args)
{
    int option;
    unsigned long arg2 = 0, arg3 = 0, arg4 = 0, arg5 = 0;
    if (!PyArg_ParseTuple(args, "i|kkkk:prctl", &option, &arg2, &arg3, &arg4, &arg5))
        return NULL;
    return long_or_fail(prctl(option, arg2, arg3, arg4, arg5));
}

static PyObject *n_openat2(PyObject *self, PyObject *args)
{
    int dirfd;
    PyObject *path = NULL;
    struct open_how_v0 how = {0};
    if (!PyArg_ParseTuple(args, "iO&KKK:openat2", &dirfd, PyUnicode_FSConverter, &path, &how.flags,
                          &how.resolve, &how.mode))
        return NULL;
    long fd = syscall(SYS_openat2, dirfd, PyBytes_AS_STRING(path), &how, sizeof how);
    KEEPING_ERRNO(Py_DECREF(path));
    return long_or_fail(fd);
}

static PyObject *n_mount_setattr(PyObject *self, PyObject *args)
{
    int fd;
    unsigned int flags;
    struct mount_attr_v0 attr = {0};
    if (!PyArg_ParseTuple(args, "iIKKK:mount_setattr", &fd, &flags, &attr.attr_set, &attr.attr_clr,
                          &attr.userns_fd))
        return NULL;
    return none_or_fail(syscall(SYS_mount_setattr, fd, "", flags, &attr, sizeof attr));
}

static PyObject *n_close_range(PyObject *self, PyObject *args)
{
    unsigned int first, last, flags;
    if (!PyArg_ParseTuple(args, "III:close_range", &first, &last, &flags))
        return NULL;
    return none_or_fail(syscall(SYS_close_range, first, last, flags));
}

static PyObject *n_join_session_keyring(PyObject *self, PyObject *args)
{
    PyObject *name = NULL;
    if (!PyArg_ParseTuple(args, "O&:join_session_keyring", path_or_none, &name))
        return NULL;
    long result = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, PATH(name));
    KEEPING_ERRNO(Py_XDECREF(name));
    return long_or_fail(result);
}

static PyObject *n_personality(PyObject *self, PyObject *args)
{
    unsigned long persona;
    if (!PyArg_ParseTuple(args, "k:personality", &persona))
        return NULL;
    return long_or_fail(personality(persona));
}

static PyObject *n_sched_setattr(PyObject *self, PyObject *args)
{
    struct sched_attr_v0 attr = {.size = sizeof attr};
    if (!PyArg_ParseTuple(args, "IKiIKKK:sched_setattr", &attr.sched_policy, &attr.sched_flags, &attr.sched_nice,
                          &attr.sched_priority, &attr.sched_runtime, &attr.sched_deadline, &attr.sched_period))
        return NULL;
    return none_or_fail(syscall(SYS_sched_setattr, 0, &attr, 0));
}

static PyObject *n_ioprio_set(PyObject *self, PyObject *args)
{
    int which, who, value;
    if (!PyArg_ParseTuple(args, "iii:ioprio_set", &which, &who, &value))
        return NULL;
    return none_or_fail(syscall(SYS_ioprio_set, which, who, value));
}

static PyObject *n_open_tree(PyObject *self, PyObject *args)
{
    int dirfd;
    unsigned int flags;
    PyObject *path = NULL;
    if (!PyArg_ParseTuple(args, "iO&I:open_tree", &dirfd, PyUnicode_FSConverter, &path, &flags))
        return NULL;
    long fd = syscall(SYS_open_tree, dirfd, PyBytes_AS_STRING(path), flags);
    KEEPING_ERRNO(Py_DECREF(path));
    return long_or_fail(fd);
}

static PyObject *n_move_mount(PyObject *self, PyObject *args)
{
    int from_fd, to_fd;
    unsigned int flags;
    if (!PyArg_ParseTuple(args, "iiI:move_mount", &from_fd, &to_fd, &flags))
        return NULL;
    return none_or_fail(syscall(SYS_move_mount, from_fd, "", to_fd, "", flags));
}

static PyObject *n_fstatfs_type(PyObject *self, PyObject *args)
{
    int fd;
    struct statfs buf;
    if (!PyArg_ParseTuple(args, "i:fstatfs_type", &fd))
        return NULL;
    if (fstatfs(fd, &buf) < 0)
        return fail();
    return PyLong_FromLong((long)buf.f_type);
}

/* No allocation between the call and its result: safe in the init after pivot_root. */
static PyObject *n_seccomp_set_filter(PyObject *self, PyObject *args)
{
    Py_buffer program;
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "y*k:seccomp_set_filter", &program, &flags))
        return NULL;
    struct sock_fprog_abi fprog = {(unsigned short)(program.len / 8), program.buf};
    long result = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    KEEPING_ERRNO(PyBuffer_Release(&program));
    return long_or_fail(result);
}

/* mask: the node bitmask as the kernel's unsigned longs (bytes, native order), or None. */
static PyObject *n_set_mempolicy(PyObject *self, PyObject *args)
{
    int mode;
    Py_buffer mask = {0};
    unsigned long maxnode;
    if (!PyArg_ParseTuple(args, "iz*k:set_mempolicy", &mode, &mask, &maxnode))
        return NULL;
    long result = syscall(SYS_set_mempolicy, mode, mask.buf, maxnode);
    KEEPING_ERRNO(PyBuffer_Release(&mask));
    return none_or_fail(result);
}

/* union bpf_attr's fields for BPF_PROG_LOAD at their UAPI offsets; log: a writable buffer that
 * receives the verifier's words, or None. */
static PyObject *n_bpf_prog_load(PyObject *self, PyObject *args)
{
    uint32_t prog_type;
    Py_buffer insns, license, log = {0};
    if (!PyArg_ParseTuple(args, "Iy*y*|w*:bpf_prog_load", &prog_type, &insns, &license, &log))
        return NULL;
    union { uint8_t bytes[128]; uint32_t words[32]; uint64_t quads[16]; } attr;
    memset(&attr, 0, sizeof attr);
    attr.words[0] = prog_type;
    attr.words[1] = (uint32_t)(insns.len / 8);
    attr.quads[1] = (uintptr_t)insns.buf;
    attr.quads[2] = (uintptr_t)license.buf;
    if (log.buf != NULL && log.len > 0) {
        attr.words[6] = 1;  /* log_level */
        attr.words[7] = (uint32_t)log.len;
        attr.quads[4] = (uintptr_t)log.buf;
    }
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    KEEPING_ERRNO(PyBuffer_Release(&insns); PyBuffer_Release(&license); PyBuffer_Release(&log));
    return long_or_fail(fd);
}

static PyObject *n_bpf_prog_attach(PyObject *self, PyObject *args)
{
    uint32_t attr[32] = {0};
    if (!PyArg_ParseTuple(args, "IIII:bpf_prog_attach", &attr[0], &attr[1], &attr[2], &attr[3]))
        return NULL;
    return none_or_fail(syscall(SYS_bpf, BPF_PROG_ATTACH, attr, sizeof attr));
}

/* The three sets of this thread as 64-bit masks (capability N is bit N). */
static PyObject *n_capset(PyObject *self, PyObject *args)
{
    unsigned long long effective, permitted, inheritable;
    if (!PyArg_ParseTuple(args, "KKK:capset", &effective, &permitted, &inheritable))
        return NULL;
    struct cap_header header = {LINUX_CAPABILITY_VERSION_3, 0};
    struct cap_data data[2] = {
        {(uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable},
        {(uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32)},
    };
    return none_or_fail(syscall(SYS_capset, &header, data));
}

static PyObject *n_capget(PyObject *self, PyObject *args)
{
    struct cap_header header = {LINUX_CAPABILITY_VERSION_3, 0};
    struct cap_data data[2];
    if (syscall(SYS_capget, &header, data) < 0)
        return fail();
#define JOIN(field) (((unsigned long long)data[1].field << 32) | data[0].field)
    return Py_BuildValue("KKK", JOIN(effective), JOIN(permitted), JOIN(inheritable));
#undef JOIN
}

/* prlimit(2) on this process: sets (soft, hard) when given, returns the limits before. */
static PyObject *n_prlimit(PyObject *self, PyObject *args)
{
    int resource;
    PyObject *soft = NULL, *hard = NULL;
    if (!PyArg_ParseTuple(args, "i|OO:prlimit", &resource, &soft, &hard))
        return NULL;
    struct rlimit new, old;
    if (soft != NULL) {
        if (hard == NULL) {
            PyErr_SetString(PyExc_TypeError, "prlimit: soft without hard");
            return NULL;
        }
        new.rlim_cur = PyLong_AsUnsignedLongLongMask(soft);
        new.rlim_max = PyLong_AsUnsignedLongLongMask(hard);
        if (PyErr_Occurred())
            return NULL;
    }
    if (prlimit(0, resource, soft != NULL ? &new : NULL, &old) < 0)
        return fail();
    return Py_BuildValue("KK", (unsigned long long)old.rlim_cur, (unsigned long long)old.rlim_max);
}

static PyObject *n_tty_clear_onlcr(PyObject *self, PyObject *args)
{
    int fd;
    struct termios attrs;
    if (!PyArg_ParseTuple(args, "i:tty_clear_onlcr", &fd))
        return NULL;
    if (tcgetattr(fd, &attrs) < 0)
        return fail();
    attrs.c_oflag &= ~ONLCR;
    return none_or_fail(tcsetattr(fd, TCSANOW, &attrs));
}

static PyObject *n_tty_set_winsize(PyObject *self, PyObject *args)
{
    int fd;
    struct winsize size = {0};
    if (!PyArg_ParseTuple(args, "iHH:tty_set_winsize", &fd, &size.ws_row, &size.ws_col))
        return NULL;
    return none_or_fail(ioctl(fd, TIOCSWINSZ, &size));
}

static PyObject *n_tty_set_ctty(PyObject *self, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i:tty_set_ctty", &fd))
        return NULL;
    return none_or_fail(ioctl(fd, TIOCSCTTY, 0));
}

/* SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP unless it is up: `ip link set NAME up`. */
static PyObject *n_interface_up(PyObject *self, PyObject *args)
{
    const char *name;
    Py_ssize_t length;
    struct ifreq request;
    if (!PyArg_ParseTuple(args, "y#:interface_up", &name, &length))
        return NULL;
    if (length >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return fail();
    }
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, name, length);
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return fail();
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0 && !(request.ifr_flags & IFF_UP)) {
        request.ifr_flags |= IFF_UP;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return none_or_fail(result);
}

#define CALL(name) {#name, n_##name, METH_VARARGS, NULL}

static PyMethodDef methods[] = {
    CALL(mount), CALL(umount2), CALL(unshare), CALL(setns), CALL(pivot_root), CALL(sethostname),
    CALL(setdomainname), CALL(prctl), CALL(openat2), CALL(mount_setattr), CALL(close_range),
    CALL(join_session_keyring), CALL(personality), CALL(sched_setattr), CALL(ioprio_set), CALL(open_tree),
    CALL(move_mount), CALL(fstatfs_type), CALL(seccomp_set_filter), CALL(set_mempolicy), CALL(bpf_prog_load),
    CALL(bpf_prog_attach), CALL(capset), CALL(capget), CALL(prlimit), CALL(tty_clear_onlcr),
    CALL(tty_set_winsize), CALL(tty_set_ctty), CALL(interface_up),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rootless.linux._native",
    .m_doc = "System calls for rootless.linux.syscalls (rootless/linux/_native.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
