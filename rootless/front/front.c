/* The `rootless` command's compiled front: it answers the short calls podman, conmon and
 * containerd make for every container, and hands every other call to the Python runtime.
 *
 * Why: a Python interpreter takes longer to start than runc takes for a whole `state`, and
 * podman runs `state`, `start`, `kill` and `delete` for every container. The front answers
 * them in about a millisecond, when it can answer completely:
 *
 *   state ID              any container with a view file (below)
 *   start ID              a created container, no poststart hooks, no NOTIFY_SOCKET relay
 *   kill ID [SIGNAL]      a container that is not stopped (not --all)
 *   delete [-f] ID        a stopped container with nothing to tear down but its directory
 *
 * after at most --root, --log, --log-format and --systemd-cgroup, as rootless/fastpath.py
 * recognises them. For `create` and `run` (after the same flags) it starts their namespace
 * stage beside Python (start_namespace_stage says why). Anything else, and every error, goes
 * to Python unchanged (execv of the
 * launcher beside this program, rootless-python): the front never prints an error, so there is
 * one implementation of what a failure says, and of everything that is not a plain success.
 *
 * What the front knows of a container it reads from ROOT/ID/front, a view the Python runtime
 * writes with state.json (rootless/front/view.py documents the format): the init's PID and
 * start time, its cgroup, whether delete has more to do, and the exact text `state` prints
 * (Python renders it; the front puts in the PID and status). The view names state.json's
 * inode, size and modification time: a state.json changed or replaced behind the runtime's
 * back (a corrupt one included) no longer matches, and the call goes to Python.
 *
 * The status is derived as rootless/state.py's status() derives it: the init runs and is the
 * process that started at the recorded time, else "stopped"; its cgroup's cgroup.freeze is 1,
 * "paused"; exec.fifo exists, "created"; else "running".
 *
 * ROOTLESS_NO_FRONT=1 sends every call to Python (the tests run both ways and compare).
 * A release of a created container whose init does not answer "0" (its process could not be
 * executed, a startContainer hook failed, it died) is handed to Python with what the init
 * answered, in ROOTLESS_FRONT_ANSWER (hex): the fifo has been read and cannot be read again.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define VIEW_MAGIC "rootless-front 1\n"
#define VIEW_MAX (1 << 20)
#define ANSWER_MAX 4096

static char **original_argv;

/* The Python launcher beside this program, rootless-python, in `path`; false if not found. */
static int python_beside(char path[PATH_MAX])
{
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX - 32);
    if (n <= 0 && original_argv[0] && strchr(original_argv[0], '/') && strlen(original_argv[0]) < PATH_MAX - 32)
        n = (ssize_t)strlen(strcpy(path, original_argv[0])); /* no /proc: where the caller found us */
    if (n <= 0)
        return 0;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    strcpy(slash + 1, "rootless-python");
    return 1;
}

/* Everything the front does not answer: the Python runtime runs the same command line. */
static void __attribute__((noreturn)) hand_over(void)
{
    char self[PATH_MAX];
    if (python_beside(self))
        execv(self, original_argv);
    fprintf(stderr, "rootless: cannot run the Python runtime beside %s: %s (reinstall rootless)\n",
            original_argv[0], strerror(errno));
    exit(1);
}

/* create and run: start create's namespace stage (rootless/create/nsstage.py) now, as a Python
 * of its own beside the one this process becomes, connected to it by a socket pair. It loads the
 * container init's modules while the CLI process starts and plans, on another CPU when there is
 * one. Python's own fork of the stage (rootless/create/stagefork.py, what runs without the
 * front) would share the CLI's memory: every page either process then writes is copied, which
 * cost the CLI more than the stage's imports saved. The stage is this process's child, so the
 * CLI process it becomes can reap it; its fd numbers come after every fd the caller gave.
 * ROOTLESS_NAMESPACE_STAGE=FD tells the new Python what it is; ROOTLESS_STAGE="PID FD" tells the
 * CLI process where it is (rootless/fastpath.py takes both out of the environment). When
 * anything fails here, the CLI process forks the stage itself. */
static void start_namespace_stage(void)
{
    char python[PATH_MAX], value[48];
    int pair[2];
    if (!python_beside(python) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return;
    for (int i = 0; i < 2; i++) {
        /* Far above the caller's fds: --preserve-fds N and LISTEN_FDS name fds from 3 up, and the
         * CLI process checks that each of those is the caller's. */
        int high = fcntl(pair[i], F_DUPFD_CLOEXEC, 512);
        if (high >= 0) {
            close(pair[i]);
            pair[i] = high;
        }
    }
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(value, sizeof value, "%d", pair[1]);
        /* The caller's command line: a process of this container, named by it as a fork of the
         * CLI would be (what `ps` shows, and what tests look for in leftovers). */
        if (fcntl(pair[1], F_SETFD, 0) == 0 && setenv("ROOTLESS_NAMESPACE_STAGE", value, 1) == 0)
            execv(python, original_argv);
        _exit(127); /* the CLI process says so: "the namespace stage exited with status 127" */
    }
    close(pair[1]);
    snprintf(value, sizeof value, "%d %d", (int)pid, pair[0]);
    if (pid < 0 || fcntl(pair[0], F_SETFD, 0) != 0 || setenv("ROOTLESS_STAGE", value, 1) != 0) {
        close(pair[0]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
}

static void hand_over_answer(const char *answer, size_t length)
{
    static const char hex[] = "0123456789abcdef";
    char encoded[2 * ANSWER_MAX + 1];
    for (size_t i = 0; i < length; i++) {
        encoded[2 * i] = hex[(unsigned char)answer[i] >> 4];
        encoded[2 * i + 1] = hex[(unsigned char)answer[i] & 15];
    }
    encoded[2 * length] = '\0';
    if (setenv("ROOTLESS_FRONT_ANSWER", encoded, 1) == 0)
        hand_over();
    fprintf(stderr, "rootless: cannot start the container: out of memory\n");
    exit(1);
}

/* ---- the command line, as rootless/fastpath.py recognise() reads it ---- */

struct call {
    const char *verb, *root, *id, *signal;
};

static int is_flag(const char *arg, const char *short_form, const char *long_form)
{
    return strcmp(arg, short_form) == 0 || strcmp(arg, long_form) == 0;
}

static void recognise(int argc, char **argv, struct call *call)
{
    int i = 1;
    const char *log_format = "text", *log_file = NULL; /* nothing the front does is logged */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t name_length = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const char *value = eq ? eq + 1 : NULL;
        if (!eq && strcmp(argv[i], "--systemd-cgroup") == 0)
            continue;
        const char **target = NULL;
        if (name_length == 6 && strncmp(argv[i], "--root", 6) == 0)
            target = &call->root;
        else if (name_length == 5 && strncmp(argv[i], "--log", 5) == 0)
            target = &log_file;
        else if (name_length == 12 && strncmp(argv[i], "--log-format", 12) == 0)
            target = &log_format;
        else
            hand_over();
        if (!value) {
            if (i + 1 == argc)
                hand_over();
            value = argv[++i];
        }
        *target = value;
    }
    if (i == argc || (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0))
        hand_over();
    call->verb = argv[i];
    if (strcmp(call->verb, "create") == 0 || strcmp(call->verb, "run") == 0) {
        for (int j = i + 1; j < argc; j++)
            if (strcmp(argv[j], "--shim") == 0 || strcmp(argv[j], "--shim=true") == 0)
                hand_over(); /* the shim creates the container, and forks its own stage */
        start_namespace_stage();
        hand_over();
    }
    int is_kill = strcmp(call->verb, "kill") == 0, is_delete = strcmp(call->verb, "delete") == 0;
    if (!is_kill && !is_delete && strcmp(call->verb, "state") != 0 && strcmp(call->verb, "start") != 0)
        hand_over();
    int positionals = 0;
    for (i++; i < argc; i++) {
        if (is_delete && is_flag(argv[i], "-f", "--force"))
            continue; /* the front deletes only stopped containers, which need no force */
        if (argv[i][0] == '-')
            hand_over(); /* kill --all among them: the front signals the init alone */
        else if (positionals++ == 0)
            call->id = argv[i];
        else if (is_kill && positionals == 2)
            call->signal = argv[i];
        else
            hand_over();
    }
    if (!call->id)
        hand_over();
}

/* ---- where the state lives: rootless/paths.py default_state_root() ---- */

static int in_initial_userns(void)
{
    char buffer[128];
    int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n < 0)
        return 1;
    buffer[n] = '\0';
    unsigned long inside, outside, count;
    char rest;
    return sscanf(buffer, " %lu %lu %lu %c", &inside, &outside, &count, &rest) == 3 && inside == 0 &&
           outside == 0 && count == 4294967295UL;
}

static void state_root(const char *given, char *root, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    uid_t euid = geteuid();
    struct stat st;
    int n;
    if (given)
        n = snprintf(root, size, "%s", given);
    else if (xdg && *xdg && (euid != 0 || !in_initial_userns()))
        n = snprintf(root, size, "%s%srootless", xdg, xdg[strlen(xdg) - 1] == '/' ? "" : "/");
    else if (euid == 0)
        n = snprintf(root, size, "/run/rootless");
    else {
        n = snprintf(root, size, "/run/user/%u", euid);
        if (stat(root, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == euid)
            n = snprintf(root, size, "/run/user/%u/rootless", euid);
        else
            n = snprintf(root, size, "/tmp/rootless-%u", euid);
    }
    /* rootless/paths.py check_state_root(): a root that is not a directory is Python's to report */
    if (n <= 0 || (size_t)n >= size || stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        hand_over();
}

/* rootless/state.py validate_id() */
static void check_id(const char *id)
{
    size_t length = strlen(id);
    if (length == 0 || length > 255 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        hand_over();
    for (const char *c = id; *c; c++)
        if (!isascii((unsigned char)*c) || !(isalnum((unsigned char)*c) || strchr("_+.-", *c)))
            hand_over();
}

/* ---- the container: its view file and its status ---- */

struct container {
    int dir;                /* ROOT/ID, opened O_PATH-free so it can be flock()ed */
    char *view;             /* the whole view file */
    long pid;
    unsigned long long start;
    char cgroup[PATH_MAX];
    int teardown, notify;
    const char *state_text; /* what `state` prints, with the PID and status to put in */
};

static char *read_file_at(int dir, const char *name, size_t limit)
{
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *text = malloc(limit + 1);
    size_t length = 0;
    ssize_t n;
    while (text && length < limit && (n = read(fd, text + length, limit - length)) > 0)
        length += (size_t)n;
    close(fd);
    if (!text || length == limit) {
        free(text);
        return NULL;
    }
    text[length] = '\0';
    return text;
}

/* The next line of the view, which must begin with `key `; its rest, NUL-terminated. */
static char *view_line(char **cursor, const char *key)
{
    char *line = *cursor, *end = strchr(line, '\n');
    size_t key_length = strlen(key);
    if (!end || strncmp(line, key, key_length) != 0 || line[key_length] != ' ')
        hand_over();
    *end = '\0';
    *cursor = end + 1;
    return line + key_length + 1;
}

static void load(const char *root, const char *id, int lock, struct container *c)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", root, id) >= (int)sizeof path)
        hand_over();
    c->dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dir < 0 || (lock && flock(c->dir, LOCK_EX) != 0))
        hand_over();
    c->view = read_file_at(c->dir, "front", VIEW_MAX);
    if (!c->view || strncmp(c->view, VIEW_MAGIC, strlen(VIEW_MAGIC)) != 0)
        hand_over();
    char *cursor = c->view + strlen(VIEW_MAGIC);
    /* Opened, not only looked at: a state.json Python could not read is Python's to report. */
    struct stat st;
    unsigned long long inode, size, mtime;
    int record = openat(c->dir, "state.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int examined = record >= 0 ? fstat(record, &st) : -1;
    if (record >= 0)
        close(record);
    if (sscanf(view_line(&cursor, "state.json"), "%llu %llu %llu", &inode, &size, &mtime) != 3 ||
        examined != 0 || !S_ISREG(st.st_mode) ||
        st.st_ino != inode || (unsigned long long)st.st_size != size ||
        (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st.st_mtim.tv_nsec != mtime)
        hand_over();
    if (sscanf(view_line(&cursor, "init"), "%ld %llu", &c->pid, &c->start) != 2 || c->pid <= 0)
        hand_over();
    const char *cgroup = view_line(&cursor, "cgroup");
    if (strlen(cgroup) >= sizeof c->cgroup)
        hand_over();
    strcpy(c->cgroup, cgroup);
    c->teardown = strcmp(view_line(&cursor, "teardown"), "1") == 0;
    c->notify = strcmp(view_line(&cursor, "notify"), "1") == 0;
    if (strncmp(cursor, "state\n", 6) != 0)
        hand_over();
    c->state_text = cursor + 6;
}

/* rootless/linux/procfs.py is_alive(): runs, is no zombie, started when the init did */
static int is_alive(long pid, unsigned long long start)
{
    char path[64], buffer[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buffer[n] = '\0';
    char *fields = strrchr(buffer, ')');
    if (!fields || fields[1] != ' ')
        return 0;
    char state = fields[2];
    if (state == 'Z' || state == 'X')
        return 0;
    char *field = fields + 2;
    for (int i = 0; i < 19; i++) { /* field 22, the start time, is the 20th after the state */
        field = strchr(field, ' ');
        if (!field)
            return 0;
        field++;
    }
    return strtoull(field, NULL, 10) == start;
}

static const char *status_of(const struct container *c)
{
    if (!is_alive(c->pid, c->start))
        return "stopped";
    if (c->cgroup[0]) {
        char path[PATH_MAX + 16], first = 0;
        snprintf(path, sizeof path, "%s/cgroup.freeze", c->cgroup);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (read(fd, &first, 1) != 1)
                first = 0;
            close(fd);
        }
        if (first == '1')
            return "paused";
    }
    struct stat st;
    return fstatat(c->dir, "exec.fifo", &st, 0) == 0 ? "created" : "running";
}

/* ---- the verbs ---- */

static int write_all(const char *text, size_t length)
{
    while (length) {
        ssize_t n = write(1, text, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        length -= (size_t)n;
    }
    return 0;
}

static int state(struct container *c)
{
    /* The view holds `state`'s output as Python renders it; its 4th and 5th lines are the PID
     * and the status (rootless/state.py state_text()). */
    const char *status = status_of(c), *text = c->state_text, *line = text;
    for (int i = 0; i < 3; i++) {
        line = strchr(line, '\n');
        if (!line)
            hand_over();
        line++;
    }
    const char *status_line = strchr(line, '\n');
    const char *rest = status_line ? strchr(status_line + 1, '\n') : NULL;
    if (!rest || strncmp(line, "  \"pid\": ", 9) != 0 || strncmp(status_line + 1, "  \"status\": ", 12) != 0)
        hand_over();
    char middle[96];
    int n = snprintf(middle, sizeof middle, "  \"pid\": %ld,\n  \"status\": \"%s\",", strcmp(status, "stopped") ? c->pid : 0L,
                     status);
    if (write_all(text, (size_t)(line - text)) || write_all(middle, (size_t)n) || write_all(rest, strlen(rest)))
        return 1;
    return 0;
}

/* rootless/container.py signal_number(), for the names it knows: any other goes to Python */
static int signal_number(const char *text)
{
    static const struct { const char *name; int number; } names[] = {
        {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP},
        {"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL},
        {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
        {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU},
        {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
        {"POLL", SIGPOLL}, {"PWR", SIGPWR}, {"SYS", SIGSYS},
    };
    if (!text)
        return SIGTERM;
    if (*text && strspn(text, "0123456789") == strlen(text)) {
        if (strlen(text) > 3 || atoi(text) >= 65) /* NSIG */
            hand_over();
        return atoi(text);
    }
    const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].number;
    hand_over();
}

static int kill_init(struct container *c, const char *signal_text)
{
    int number = signal_number(signal_text);
    if (strcmp(status_of(c), "stopped") == 0)
        hand_over(); /* "container not running": Python's words */
    if (kill((pid_t)c->pid, number) != 0 && errno != ESRCH)
        hand_over();
    return 0;
}

/* Saved poststart or poststop hooks (rootless/process/hooks.py): Python runs them. */
static int has_hooks(const struct container *c)
{
    return faccessat(c->dir, "hooks.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int release(struct container *c)
{
    if (strcmp(status_of(c), "created") != 0 || has_hooks(c))
        hand_over();
    const char *notify_socket = getenv("NOTIFY_SOCKET");
    if (c->notify && notify_socket && *notify_socket)
        hand_over();
    /* rootless/container.py start(): the reader never waits for a writer; poll waits until the
     * init writes, while the front watches the init. */
    int fd = openat(c->dir, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        hand_over();
    char answer[ANSWER_MAX];
    size_t length = 0;
    struct pollfd wanted = {.fd = fd, .events = POLLIN | POLLHUP};
    for (;;) {
        int ready = poll(&wanted, 1, 100);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0) {
            if (!is_alive(c->pid, c->start))
                break;
            continue;
        }
        ssize_t n = read(fd, answer + length, sizeof answer - length);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break; /* the writer is gone: the init's execve closed the fifo, or the init died */
        length += (size_t)n;
        if (length == sizeof answer)
            break;
    }
    close(fd);
    unlinkat(c->dir, "exec.fifo", 0);
    if (length == 1 && answer[0] == '0')
        return 0;
    hand_over_answer(answer, length);
    return 1;
}

/* rootless/state.py ContainerDir.remove(): the files, and directories of files */
static void remove_tree(int parent, const char *name, int depth)
{
    int dir = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *listing = dir >= 0 ? fdopendir(dir) : NULL;
    if (!listing) {
        if (dir >= 0)
            close(dir);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(listing))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (unlinkat(dir, entry->d_name, 0) != 0 && errno == EISDIR && depth > 0)
            remove_tree(dir, entry->d_name, depth - 1);
    }
    closedir(listing);
    unlinkat(parent, name, AT_REMOVEDIR);
}

static int delete(struct container *c, const char *root, const char *id)
{
    if (c->teardown || strcmp(status_of(c), "stopped") != 0 || has_hooks(c))
        hand_over();
    int parent = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0)
        hand_over();
    remove_tree(parent, id, 1);
    return 0;
}

int main(int argc, char **argv)
{
    original_argv = argv;
    const char *off = getenv("ROOTLESS_NO_FRONT"), *fault = getenv("ROOTLESS_FAULT");
    if (argc < 2 || (off && *off))
        hand_over();
    struct call call = {0};
    recognise(argc, argv, &call); /* create and run are handed over there */
    if (fault && *fault)
        hand_over(); /* the faults are Python's steps: tests/reliability */
    char root[PATH_MAX];
    state_root(call.root, root, sizeof root);
    check_id(call.id);
    struct container c = {0};
    int is_state = strcmp(call.verb, "state") == 0;
    load(root, call.id, !is_state, &c); /* as Python: every verb but state holds the lock */
    if (is_state)
        return state(&c);
    if (strcmp(call.verb, "kill") == 0)
        return kill_init(&c, call.signal);
    if (strcmp(call.verb, "start") == 0)
        return release(&c);
    return delete(&c, root, call.id);
}
