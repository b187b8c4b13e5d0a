"""The cases of the differential harness, in one table: CASES.

A case is a config.json change (deep-merged into runc's rootless template with the caller
mapped to root, see helpers.differential.Side.base_config) plus how a client drives it (a
scenario of diff_scenarios: `run`, a terminal `run`, create/start, a list of verbs, exec,
spec, features, hooks). Without `args` the container runs the probe (helpers.differential.PROBE)
and the whole report compares, or only the sections named in `check`.

`current` marks where runc 1.1.5 and current runc (1.2 and later) differ: it turns 1.1.5's
observation into what current runc shows (by its changelog and documentation), and rootless
is compared with that.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import diff_scenarios as sc

# ROOTLESS_DIFF_CASES=N runs every case (0 or unset) or every N-th case of the table (a
# quicker smoke run); ROOTLESS_DIFF_CASES=off runs none.
SIZE_KNOB = "ROOTLESS_DIFF_CASES"


@dataclass
class Case:
    name: str
    config: Any = field(default_factory=dict)      # overrides, or a function of the Side
    args: list[str] | None = None                  # process.args; None: the probe
    scenario: Callable = sc.run
    check: tuple[str, ...] | None = None           # probe sections compared; None: all
    focus: tuple[str, ...] = ()                    # mount destinations compared (prefixes); (): all
    flags: list[str] = field(default_factory=list)  # extra flags of the verb
    terminal: bool = False
    typed: bytes = b""
    private_rootfs: bool = False
    steps: list[tuple[str, ...]] = field(default_factory=list)
    normalize: Callable | None = None
    exec_args: list[str] | None = None
    process: dict | None = None
    current: Callable[[dict], dict] | None = None  # 1.1.5's observation -> current runc's
    edit: Callable[[dict], None] | None = None     # last change to config.json (JSON null values)
    prepare: Callable | None = None                # prepare(rootfs path) of a private rootfs
    skip_if: Callable[[], str | None] | None = None  # why the host cannot run the case, or None
    root: bool = False                             # both sides as root (runc spec's template)
    note: str = ""

    def observe(self, side) -> dict:
        return self.scenario(side, self)


def selected(cases: list[Case]) -> list[Case]:
    knob = os.environ.get(SIZE_KNOB, "0").strip().lower()
    if knob == "off":
        return []
    step = int(knob) if knob.isdigit() and int(knob) > 0 else 1
    return cases[::step]


def foreign_procfs() -> str | None:
    """runc --no-pivot fails (EPERM) while the host has a procfs mounted outside /proc (a
    chroot being built, say): the host state, not a runtime, decides such a case."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = line.split(" - ", 1)[1].split()[0]
            if fstype == "proc" and fields[4] != "/proc":
                return f"the host has a procfs mounted at {fields[4]}, where runc --no-pivot fails with EPERM"
    return None


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


CASES: list[Case] = []


def add(*cases: Case) -> None:
    CASES.extend(cases)


# ---- the baseline --------------------------------------------------------------------------
add(Case("default"))
# Each section of the container's report is a case of its own, so that one divergence does
# not hide the others; the other cases compare only the sections their field touches.
for _section in ("status", "maps", "mounts", "mount_order", "fds", "env", "umask", "limits", "cwd", "names",
                 "proc", "tty"):
    add(Case(f"default-{_section}", check=(_section,)))

HOME_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/root"]
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
STATUS = ("exit", "stderr_empty", "status")


def caps(**sets: list[str]) -> dict:
    return {"process": {"capabilities": {kind: sets.get(kind, []) for kind in
                                         ("bounding", "effective", "permitted", "inheritable", "ambient")}}}


def process(**fields: Any) -> dict:
    return {"process": fields}


def linux(**fields: Any) -> dict:
    return {"linux": fields}


def with_mount(*entries: dict) -> Callable:
    """The template's mounts plus `entries` (the template's list is replaced by deep_merge)."""
    def overrides(side) -> dict:
        return {"mounts": side.base_config(["true"])["mounts"] + list(entries)}
    return overrides


# ---- process: terminal ---------------------------------------------------------------------
add(
    Case("terminal-probe", scenario=sc.run_tty, terminal=True, check=("exit", "status", "fds", "tty", "env")),
    Case("terminal-bytes", scenario=sc.run_tty, terminal=True, args=sh("printf 'a\\nb\\n'; printf 'c\\td'")),
    Case("terminal-exit-status", scenario=sc.run_tty, terminal=True, args=sh("exit 3")),
    Case("terminal-stdin", scenario=sc.run_tty, terminal=True, typed=b"hello\r",
         args=sh("echo ready-for-input; read x; echo got:$x")),
    Case("terminal-consoleSize", scenario=sc.run_tty, terminal=True, args=["stty", "size"],
         config=process(consoleSize={"height": 30, "width": 100})),
    Case("terminal-create-console-socket", scenario=sc.create_start, terminal=True, args=sh("tty; printf 'x\\ny\\n'")),
    Case("terminal-run-to-files", terminal=True, args=sh("printf 'a\\nb\\n'")),
    Case("terminal-create-without-socket", scenario=sc.steps, terminal=True, args=["true"],
         steps=[("create", "--bundle", "BUNDLE", "ID"), ("status",)]),
)

# ---- process: user, umask, args, env, cwd ----------------------------------------------------
add(
    Case("user-uid-unmapped", config=process(user={"uid": 1000, "gid": 0}), check=STATUS),
    Case("user-gid-unmapped", config=process(user={"uid": 0, "gid": 1000}), check=STATUS),
    Case("user-additionalGids-mapped", config=process(user={"uid": 0, "gid": 0, "additionalGids": [0]}), check=STATUS),
    Case("user-additionalGids-unmapped", config=process(user={"uid": 0, "gid": 0, "additionalGids": [5]}),
         check=STATUS),
    Case("user-umask-077", config=process(user={"uid": 0, "gid": 0, "umask": 0o77}), check=("exit", "umask")),
    Case("user-umask-0", config=process(user={"uid": 0, "gid": 0, "umask": 0}), check=("exit", "umask")),
    Case("user-umask-absent", check=("exit", "umask")),
    Case("args-missing-binary", args=["/nonexistent"]),
    Case("args-not-executable", args=["/etc/passwd"]),
    Case("args-directory", args=["/tmp"]),
    Case("args-path-lookup", args=["true"]),
    Case("args-not-in-path", args=["no-such-command"]),
    Case("args-exit-status", args=sh("exit 7")),
    Case("args-killed-by-signal", args=sh("kill -9 $$")),
    Case("args-stderr", args=sh("echo to-stderr >&2")),
    Case("args-empty", args=[]),
    Case("args-commandLine-ignored", args=["true"], config=process(commandLine="false")),
    Case("env-custom", config=process(env=HOME_ENV + ["FOO=bar", "EMPTY="]), check=("exit", "env")),
    Case("env-home-missing", check=("exit", "env")),
    Case("env-home-empty", config=process(env=HOME_ENV[:2] + ["HOME="]), check=("exit", "env")),
    Case("env-home-nobody", config=process(user={"uid": 0, "gid": 0}, env=HOME_ENV[:2]), args=sh("echo $HOME")),
    Case("env-duplicate", config=process(env=HOME_ENV + ["FOO=1", "FOO=2"]), check=("exit", "env")),
    Case("env-no-path", config=process(env=["HOME=/root"]), args=sh("echo $PATH")),
    Case("env-no-path-relative-args", config=process(env=["HOME=/root"]), args=["true"]),
    Case("env-without-equals", config=process(env=HOME_ENV + ["NOEQUALS"]), check=("exit", "stderr_empty", "env")),
    Case("env-empty-list", config=process(env=[]), args=["/bin/sh", "-c", "env"]),
    Case("cwd-tmp", config=process(cwd="/tmp"), check=("exit", "cwd")),
    Case("cwd-missing-readonly-rootfs", config=process(cwd="/made/by/runtime"), check=("exit", "stderr_empty", "cwd"),
         private_rootfs=True),
    Case("cwd-missing-writable-rootfs", config={"process": {"cwd": "/made/by/runtime"}, "root": {"readonly": False}},
         check=("exit", "stderr_empty", "cwd"), private_rootfs=True),
    Case("cwd-relative", config=process(cwd="tmp"), check=("exit", "stderr_empty", "cwd")),
    Case("cwd-is-a-file", config=process(cwd="/etc/passwd"), check=("exit", "stderr_empty", "cwd")),
    Case("cwd-through-symlink", config=process(cwd="/var/../tmp"), check=("exit", "cwd")),
)

# ---- process: capabilities, noNewPrivileges, rlimits, oomScoreAdj, LSMs, scheduling -----------
add(
    Case("caps-none", config=caps(), check=STATUS),
    Case("caps-sys-admin", config=caps(**{k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective",
                                                                                         "permitted")}), check=STATUS),
    Case("caps-all", config=caps(**{k: ALL_CAPS for k in ("bounding", "effective", "permitted")}), check=STATUS),
    Case("caps-ambient", config=caps(**{k: ["CAP_NET_BIND_SERVICE"] for k in
                                        ("bounding", "effective", "permitted", "inheritable", "ambient")}),
         check=STATUS),
    Case("caps-ambient-not-inheritable", config=caps(**{k: ["CAP_NET_BIND_SERVICE"] for k in
                                                         ("bounding", "effective", "permitted", "ambient")}),
         check=STATUS),
    Case("caps-inheritable-only", config=caps(bounding=["CAP_KILL"], inheritable=["CAP_KILL"]), check=STATUS),
    Case("caps-bounding-only", config=caps(bounding=ALL_CAPS), check=STATUS),
    Case("caps-effective-not-permitted", config=caps(bounding=["CAP_KILL"], effective=["CAP_KILL"]), check=STATUS),
    Case("caps-unknown-name", config=caps(bounding=["CAP_KILL", "CAP_NOT_A_CAP"], permitted=["CAP_KILL"],
                                         effective=["CAP_KILL"]), check=STATUS),
    Case("caps-absent", config={"process": {"capabilities": None}}, check=STATUS),
    Case("noNewPrivileges-false", config=process(noNewPrivileges=False), check=STATUS),
    Case("noNewPrivileges-absent", config={"process": {"noNewPrivileges": None}}, check=STATUS),
    Case("rlimit-nofile-512", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]),
         check=("exit", "limits")),
    Case("rlimit-core-0", config=process(rlimits=[{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]),
         check=("exit", "limits")),
    Case("rlimit-nproc", config=process(rlimits=[{"type": "RLIMIT_NPROC", "soft": 100, "hard": 200}]),
         check=("exit", "limits")),
    Case("rlimit-stack", config=process(rlimits=[{"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608}]),
         check=("exit", "limits")),
    Case("rlimit-core-unlimited", config=process(rlimits=[{"type": "RLIMIT_CORE", "soft": (1 << 64) - 1,
                                                           "hard": (1 << 64) - 1}]), check=("exit", "limits")),
    Case("rlimit-several", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                                                  {"type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 1000},
                                                  {"type": "RLIMIT_CPU", "soft": 100, "hard": 200}]),
         check=("exit", "limits")),
    Case("rlimit-raise-hard", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]),
         check=("exit", "stderr_empty", "limits")),
    Case("rlimit-unknown-type", config=process(rlimits=[{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]),
         check=("exit", "stderr_empty", "limits")),
    Case("rlimit-soft-above-hard", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
         check=("exit", "stderr_empty", "limits")),
    Case("rlimit-duplicate", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                                                    {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]),
         check=("exit", "stderr_empty", "limits")),
    Case("rlimits-empty", config=process(rlimits=[]), check=("exit", "limits")),
    Case("oomScoreAdj-100", config=process(oomScoreAdj=100), check=("exit", "proc")),
    Case("oomScoreAdj-1000", config=process(oomScoreAdj=1000), check=("exit", "proc")),
    Case("oomScoreAdj-lower", config=process(oomScoreAdj=-100), check=("exit", "stderr_empty", "proc")),
    Case("apparmorProfile", config=process(apparmorProfile="unconfined"), check=("exit", "stderr_empty", "status")),
    Case("selinuxLabel", config=process(selinuxLabel="system_u:system_r:container_t:s0:c1,c2"),
         check=("exit", "stderr_empty", "status")),
    Case("ioPriority", config=process(ioPriority={"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
         args=["ionice", "-p", "1"], note="runc 1.2 applies process.ioPriority; 1.1.5 ignores it",
         current=lambda seen: {**seen, "stdout": "idle\n"}),
    Case("scheduler-batch", config=process(scheduler={"policy": "SCHED_BATCH"}),
         args=sh("grep -E '^policy' /proc/self/sched || chrt -p $$"),
         note="runc 1.2 applies process.scheduler; 1.1.5 ignores it (policy 3 is SCHED_BATCH)",
         current=lambda seen: {**seen, "stdout": re.sub(r" 0$", " 3", seen["stdout"].rstrip("\n")) + "\n"}),
)

# ---- root, hostname, domainname, annotations --------------------------------------------------
add(
    Case("root-writable", config={"root": {"readonly": False}}, check=("exit", "mounts"), focus=("/$",)),
    Case("root-missing", config={"root": {"path": "/nonexistent/rootfs"}}, check=("exit", "stderr_empty")),
    Case("hostname-other", config={"hostname": "other-name"}, check=("exit", "names")),
    Case("hostname-empty", config={"hostname": ""}, check=("exit", "names")),
    Case("hostname-absent", config={"hostname": None}, check=("exit", "names")),
    Case("hostname-too-long", config={"hostname": "h" * 70}, check=("exit", "stderr_empty", "names")),
    Case("domainname", config={"domainname": "example.org"}, check=("exit", "names"),
         note="runc 1.2 sets linux's domainname (1.1.5 leaves it '(none)')",
         current=lambda seen: {**seen, "names": seen["names"].replace("(none)", "example.org")}),
    Case("hostname-without-uts-namespace",
         config=linux(namespaces=[{"type": t} for t in ("pid", "ipc", "mount", "network", "user")]),
         check=("exit", "stderr_empty", "names")),
    Case("annotations", config={"annotations": {"org.example.key": "value"}}, args=["true"], scenario=sc.steps,
         steps=[("create", "--bundle", "BUNDLE", "ID"), ("state", "ID")], normalize=lambda text, side: sc.state_json(text)),
)

# ---- mounts ------------------------------------------------------------------------------------
BIND_ETC = {"destination": "/mnt", "type": "bind", "source": "/etc"}
add(
    Case("mount-bind-ro", config=with_mount({**BIND_ETC, "options": ["bind", "ro"]}), check=("exit", "mounts"),
         focus=("/mnt",)),
    Case("mount-bind-rw", config=with_mount({**BIND_ETC, "options": ["bind"]}), check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-rbind", config=with_mount({**BIND_ETC, "source": "/sys/fs/cgroup", "options": ["rbind", "ro"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-flags", config=with_mount({**BIND_ETC, "options": ["bind", "nosuid", "nodev", "noexec"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-rro", config=with_mount({**BIND_ETC, "source": "/sys/fs/cgroup", "options": ["rbind", "rro"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-type-none", config=with_mount({"destination": "/mnt", "type": "none", "source": "/etc",
                                                    "options": ["bind", "ro"]}), check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-no-type", config=with_mount({"destination": "/mnt", "source": "/etc", "options": ["bind"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-file", config=with_mount({"destination": "/etc/hostname", "type": "bind",
                                               "source": "/etc/hostname", "options": ["bind", "ro"]}),
         check=("exit", "mounts"), focus=("/etc/hostname",), private_rootfs=True),
    Case("mount-bind-missing-source", config=with_mount({**BIND_ETC, "source": "/nonexistent", "options": ["bind"]}),
         check=("exit", "stderr_empty")),
    Case("mount-bind-atime", config=with_mount({**BIND_ETC, "options": ["bind", "noatime", "nodiratime"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-strictatime", config=with_mount({**BIND_ETC, "options": ["bind", "strictatime"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-nosymfollow", config=with_mount({**BIND_ETC, "options": ["bind", "nosymfollow"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-bind-remount-flags-ro-nosuid", config=with_mount({**BIND_ETC, "options": ["bind", "ro", "nosuid"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-tmpfs-no-mode", config=with_mount({"destination": "/run", "type": "tmpfs", "source": "tmpfs"}),
         args=["stat", "-c", "%a %U", "/run"]),
    Case("mount-tmpfs-mode-700", config=with_mount({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                                    "options": ["mode=700"]}), args=["stat", "-c", "%a %U", "/run"]),
    Case("mount-tmpfs-size", config=with_mount({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                                "options": ["size=1m", "nr_inodes=100"]}), check=("exit", "mounts"), focus=("/run",),
         note="current runc passes the covered directory's mode as mode= (runc issue 3911; 1.1.5 chmods after)",
         current=lambda seen: {**seen, "mounts": seen["mounts"].replace("nr_inodes=N,uid", "nr_inodes=N,mode=755,uid")}),
    Case("mount-tmpfs-new-destination", config=with_mount({"destination": "/new/dir", "type": "tmpfs",
                                                           "source": "tmpfs"}), check=("exit", "mounts"), focus=("/new/dir",),
         private_rootfs=True),
    Case("mount-tmpfs-bad-option", config=with_mount({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                                      "options": ["frobnicate=1"]}), check=("exit", "stderr_empty")),
    Case("mount-unknown-type", config=with_mount({"destination": "/run", "type": "nosuchfs", "source": "x"}),
         check=("exit", "stderr_empty")),
    Case("mount-propagation-rprivate", config=with_mount({**BIND_ETC, "options": ["rbind", "rprivate"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-propagation-private", config=with_mount({**BIND_ETC, "options": ["bind", "private"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-propagation-rslave", config=with_mount({**BIND_ETC, "options": ["rbind", "rslave"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-propagation-rshared", config=with_mount({**BIND_ETC, "options": ["rbind", "rshared"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-propagation-unbindable", config=with_mount({**BIND_ETC, "options": ["bind", "unbindable"]}),
         check=("exit", "mounts"), focus=("/mnt",)),
    Case("mount-dev-readonly", config=lambda side: {"mounts": [
        {**m, "options": m["options"] + ["ro"]} if m["destination"] == "/dev" else m
        for m in side.base_config(["true"])["mounts"]]}, check=("exit", "stderr_empty", "mounts"), focus=("/dev",)),
    Case("mount-no-cgroup", config=lambda side: {"mounts": [
        m for m in side.base_config(["true"])["mounts"] if m["destination"] != "/sys/fs/cgroup"]},
         check=("exit", "mounts"), focus=("/sys",)),
    Case("mount-no-dev-mqueue-shm", config=lambda side: {"mounts": [
        m for m in side.base_config(["true"])["mounts"] if m["destination"] not in ("/dev/mqueue", "/dev/shm")]},
         check=("exit", "mounts"), focus=("/dev",)),
    Case("mount-dev-file-bind", config=with_mount({"destination": "/dev/extra-null", "type": "bind",
                                                   "source": "/dev/null", "options": ["bind"]}),
         args=sh("ls -l /dev/extra-null | cut -c1")),
    Case("mount-dangling-symlink-destination", config=with_mount({"destination": "/dangling", "type": "tmpfs",
                                                                  "source": "tmpfs"}),
         private_rootfs=True, args=sh("ls -ld /dangling | cut -c1; grep -c ' /nonexistent-target ' /proc/self/mountinfo"),
         prepare=lambda rootfs: (rootfs / "dangling").symlink_to("/nonexistent-target")),
    Case("mount-relative-destination", config=with_mount({"destination": "mnt", "type": "bind", "source": "/etc",
                                                          "options": ["bind"]}), check=("exit", "stderr_empty", "mounts"), focus=("/mnt",)),
    Case("mount-sysfs-in-own-netns", config=lambda side: {"mounts": [
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        if m["destination"] == "/sys" else m for m in side.base_config(["true"])["mounts"]]},
         check=("exit", "stderr_empty", "mounts"), focus=("/sys$",)),
    Case("mount-proc-options", config=lambda side: {"mounts": [
        {**m, "options": ["nosuid", "nodev", "noexec"]} if m["destination"] == "/proc" else m
        for m in side.base_config(["true"])["mounts"]]}, check=("exit", "mounts"), focus=("/proc$",)),
)

# ---- linux: namespaces, masked and read-only paths, devices --------------------------------------
NS = ("pid", "ipc", "uts", "mount", "network", "user")


def namespaces(*types: str, **paths: str) -> dict:
    return linux(namespaces=[{"type": t} for t in types] + [{"type": t, "path": p} for t, p in paths.items()])


add(
    Case("ns-without-network", config=namespaces(*[t for t in NS if t != "network"]),
         args=sh("ls /sys/class/net | sort | tr '\\n' ' '; readlink /proc/self/ns/net | grep -c net")),
    Case("ns-without-pid", config=namespaces(*[t for t in NS if t != "pid"]), args=sh("[ $$ = 1 ] && echo pid1 || echo not-pid1")),
    Case("ns-without-ipc", config=lambda side: {**namespaces(*[t for t in NS if t != "ipc"]), "mounts": [
        m for m in side.base_config(["true"])["mounts"] if m["destination"] != "/dev/mqueue"]},
         check=("exit", "stderr_empty")),
    Case("ns-without-mount", config=namespaces(*[t for t in NS if t != "mount"]), check=("exit", "stderr_empty")),
    Case("ns-cgroup", config=namespaces(*NS, "cgroup"), args=["cat", "/proc/self/cgroup"]),
    Case("ns-time", config=namespaces(*NS, "time"), args=sh("readlink /proc/self/ns/time >/dev/null && echo ok"),
         note="runc 1.2 supports time namespaces; 1.1.5 refuses the type",
         current=lambda seen: {"exit": 0, "stderr_empty": True, "stdout": "ok\n"}),
    Case("ns-duplicate", config=namespaces(*NS, "pid"), check=("exit", "stderr_empty")),
    Case("ns-unknown-type", config=namespaces(*NS, "nosuch"), check=("exit", "stderr_empty")),
    Case("ns-path-missing", config=namespaces(*[t for t in NS if t != "network"], network="/nonexistent/ns"),
         check=("exit", "stderr_empty")),
    Case("ns-path-wrong-type", config=namespaces(*[t for t in NS if t != "network"], network="/proc/self/ns/pid"),
         check=("exit", "stderr_empty")),
    Case("maskedPaths-empty", config=linux(maskedPaths=[]), check=("exit", "mounts"), focus=("/proc", "/sys/firmware")),
    Case("maskedPaths-duplicate", config=linux(maskedPaths=["/proc/kcore", "/proc/kcore", "/proc/acpi", "/proc/acpi"]),
         check=("exit", "mounts"), focus=("/proc",),
         note="current runc masks a path listed twice once (1.1.5 mounts over it twice)",
         current=lambda seen: {**seen, "mounts": "\n".join(dict.fromkeys(seen["mounts"].splitlines()))}),
    Case("maskedPaths-file", config=linux(maskedPaths=["/proc/uptime"]), args=sh("wc -c < /proc/uptime")),
    Case("maskedPaths-directory", config=linux(maskedPaths=["/proc/driver"]), args=sh("ls -A /proc/driver | wc -l")),
    Case("maskedPaths-two-directories", config=linux(maskedPaths=["/proc/driver", "/proc/acpi"]),
         args=sh("stat -c %d /proc/driver /proc/acpi | uniq | wc -l"),
         note="current runc masks every directory with one shared read-only tmpfs (1.1.5 mounts one each)",
         current=lambda seen: {**seen, "stdout": "1\n"}),
    Case("maskedPaths-missing", config=linux(maskedPaths=["/nonexistent"]), check=("exit", "stderr_empty")),
    Case("readonlyPaths-empty", config=linux(readonlyPaths=[]), check=("exit", "mounts"), focus=("/proc",)),
    Case("readonlyPaths-extra", config=linux(readonlyPaths=["/proc/sys", "/proc/driver"]), check=("exit", "mounts"), focus=("/proc",)),
    Case("readonlyPaths-missing", config=linux(readonlyPaths=["/nonexistent"]), check=("exit", "stderr_empty")),
    Case("readonlyPaths-file", config=linux(readonlyPaths=["/proc/sysrq-trigger", "/etc/passwd"]),
         check=("exit", "mounts"), focus=("/proc", "/etc")),
)

FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
LS_DEV = sh("ls -ln /dev/fuse /dev/null | cut -d' ' -f1,5-7 | tr -s ' '")
ZERO_0600 = {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600, "uid": 0, "gid": 0}
URANDOM = {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9, "fileMode": 0o640, "uid": 0, "gid": 0}
# The nodes in the order they were made (a fresh tmpfs numbers its inodes in order), and their
# modes and owners.
DEV_ORDER = sh("cd /dev; ls -i null random full tty zero urandom | sort -n | awk '{print $2}' | tr '\\n' ' '; echo;"
               " ls -ln null zero urandom | awk '{print $1, $3, $4, $NF}'")
add(
    Case("device-fuse-0666", config=linux(devices=[{**FUSE, "fileMode": 0o666, "uid": 0, "gid": 0}]), args=LS_DEV),
    Case("device-fuse-0660", config=linux(devices=[{**FUSE, "fileMode": 0o660, "uid": 0, "gid": 0}]), args=LS_DEV),
    Case("device-filemode-with-type-bits", config=linux(devices=[{**FUSE, "fileMode": 0o20666, "uid": 0, "gid": 0}]),
         args=LS_DEV),
    Case("device-no-filemode", config=linux(devices=[FUSE]), args=LS_DEV),
    Case("device-ptmx-redundant", config=linux(devices=[{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2,
                                                         "fileMode": 0o666}]),
         args=sh("ls -l /dev/ptmx | cut -c1-10; readlink /dev/ptmx")),
    Case("device-null-listed", config=linux(devices=[{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                                                      "fileMode": 0o666}]), args=LS_DEV[:2] + ["ls -ln /dev/null | cut -c1-10"]),
    # A device that overrides a default one takes the place of the config's devices (after the
    # defaults), as runc orders them: the order of the binds shows in mountinfo.
    Case("device-override-default-order", config=linux(devices=[ZERO_0600]), check=("exit", "mount_order"),
         focus=("/dev",)),
    Case("device-override-defaults-order", config=linux(devices=[URANDOM, ZERO_0600, {**FUSE, "fileMode": 0o666}]),
         check=("exit", "mount_order"), focus=("/dev",)),
    Case("device-override-default-seen", config=linux(devices=[URANDOM, ZERO_0600]), args=DEV_ORDER),
    Case("device-in-subdir", config=linux(devices=[{**FUSE, "path": "/dev/sub/fuse", "fileMode": 0o666}]),
         args=sh("ls -ln /dev/sub/fuse | cut -c1")),
    Case("device-block-loop", config=linux(devices=[{"path": "/dev/loop-control", "type": "c", "major": 10,
                                                     "minor": 237, "fileMode": 0o660}]),
         args=sh("ls -l /dev/loop-control | cut -c1")),
    Case("device-outside-dev", config=linux(devices=[{**FUSE, "path": "/tmp/fuse", "fileMode": 0o666}]),
         check=("exit", "stderr_empty")),
    Case("device-missing-on-host", config=linux(devices=[{"path": "/dev/nosuch", "type": "c", "major": 250,
                                                          "minor": 250, "fileMode": 0o666}]),
         check=("exit", "stderr_empty")),
)

# ---- linux: sysctl, seccomp, personality, propagation, timeOffsets, resources, newer fields ---------
SECCOMP_ALLOW = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                                        "SCMP_ARCH_X32"]}


def seccomp(**fields: Any) -> dict:
    return linux(seccomp={**SECCOMP_ALLOW, **fields})


MKDIR = sh("mkdir /tmp/x 2>&1; echo rc=$?")
add(
    Case("sysctl-net", config=linux(sysctl={"net.ipv4.ip_forward": "1"}), args=["cat", "/proc/sys/net/ipv4/ip_forward"]),
    Case("sysctl-ipc", config=linux(sysctl={"kernel.msgmax": "4096"}), args=["cat", "/proc/sys/kernel/msgmax"]),
    Case("sysctl-mqueue", config=linux(sysctl={"fs.mqueue.msg_max": "20"}), args=["cat", "/proc/sys/fs/mqueue/msg_max"]),
    Case("sysctl-not-namespaced", config=linux(sysctl={"vm.swappiness": "10"}), check=("exit", "stderr_empty")),
    Case("sysctl-unknown", config=linux(sysctl={"net.ipv4.no_such_key": "1"}), check=("exit", "stderr_empty")),
    Case("sysctl-net-without-netns", config={**namespaces(*[t for t in NS if t != "network"]),
                                             **linux(sysctl={"net.ipv4.ip_forward": "1"})},
         check=("exit", "stderr_empty")),
    Case("sysctl-hostname-with-uts", config=linux(sysctl={"kernel.domainname": "via-sysctl"}),
         args=["cat", "/proc/sys/kernel/domainname"]),
    Case("seccomp-errno-rule", config=seccomp(syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
         args=MKDIR),
    Case("seccomp-errno-ret", config=seccomp(syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                                         "errnoRet": 13}]), args=MKDIR),
    Case("seccomp-defaultErrnoRet", config=linux(seccomp={"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                                                          "syscalls": []}),
         args=["true"], check=("exit", "stderr_empty")),
    Case("seccomp-kill-process", config=seccomp(syscalls=[{"names": ["mkdir", "mkdirat"],
                                                            "action": "SCMP_ACT_KILL_PROCESS"}]), args=MKDIR),
    Case("seccomp-log", config=seccomp(syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]),
         args=MKDIR),
    Case("seccomp-unknown-syscall", config=seccomp(syscalls=[{"names": ["no_such_syscall", "mkdir", "mkdirat"],
                                                               "action": "SCMP_ACT_ERRNO"}]), args=MKDIR),
    Case("seccomp-args-condition", config=seccomp(syscalls=[{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                                              "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]),
         args=sh("setarch linux32 true 2>&1; echo rc=$?")),
    Case("seccomp-flag-log", config=seccomp(flags=["SECCOMP_FILTER_FLAG_LOG"],
                                            syscalls=[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
         args=MKDIR, note="runc 1.1.5 cannot set filter flags with Debian's libseccomp (its features list none); "
                          "current runc sets SECCOMP_FILTER_FLAG_LOG",
         current=lambda seen: {"exit": 0, "stderr_empty": True,
                               "stdout": "mkdir: can't create directory '/tmp/x': Operation not permitted\nrc=1\n"}),
    Case("seccomp-status", config=seccomp(syscalls=[{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]),
         check=("exit", "status")),
    Case("seccomp-listenerPath-without-notify", config=seccomp(listenerPath="/tmp/no-agent.sock",
                                                               syscalls=[{"names": ["mkdir", "mkdirat"],
                                                                          "action": "SCMP_ACT_ERRNO"}]), args=MKDIR),
    Case("seccomp-unknown-action", config=seccomp(syscalls=[{"names": ["mkdirat"], "action": "SCMP_ACT_NOPE"}]),
         check=("exit", "stderr_empty")),
    Case("seccomp-empty-names", config=seccomp(syscalls=[{"names": [], "action": "SCMP_ACT_ERRNO"}]),
         check=("exit", "stderr_empty")),
    Case("personality-linux32", config=linux(personality={"domain": "LINUX32"}), args=["uname", "-m"],
         note="runc 1.2 applies linux.personality (1.1.5 ignores it): uname -m says i686",
         current=lambda seen: {**seen, "stdout": "i686\n"}),
    Case("personality-linux", config=linux(personality={"domain": "LINUX"}), args=["uname", "-m"]),
    Case("rootfsPropagation-private", config=linux(rootfsPropagation="private"), check=("exit", "stderr_empty")),
    Case("rootfsPropagation-rprivate", config=linux(rootfsPropagation="rprivate"), check=("exit", "stderr_empty")),
    Case("rootfsPropagation-slave", config=linux(rootfsPropagation="slave"), check=("exit", "stderr_empty")),
    Case("rootfsPropagation-rslave", config=linux(rootfsPropagation="rslave"), check=("exit", "stderr_empty")),
    Case("rootfsPropagation-shared", config=linux(rootfsPropagation="shared"), check=("exit", "stderr_empty")),
    Case("rootfsPropagation-unbindable", config=linux(rootfsPropagation="unbindable"), check=("exit", "stderr_empty")),
    Case("timeOffsets-null", edit=lambda config: config["linux"].update(timeOffsets=None),
         check=("exit", "stderr_empty")),
    Case("timeOffsets-with-time-namespace", config={**namespaces(*NS, "time"),
                                                   "linux": {"namespaces": [{"type": t} for t in NS + ("time",)],
                                                             "timeOffsets": {"monotonic": {"secs": 86400,
                                                                                           "nanosecs": 0}}}},
         args=sh("cat /proc/self/timens_offsets"),
         note="runc 1.2 supports time namespaces and their offsets; 1.1.5 refuses the type",
         current=lambda seen: {"exit": 0, "stderr_empty": True,
                               "stdout": "monotonic       86400         0\nboottime            0         0\n"}),
    Case("resources-empty", config=linux(resources={}), check=("exit", "stderr_empty")),
    Case("resources-devices-rule", config=linux(resources={"devices": [{"allow": False, "access": "rwm"}]}),
         check=("exit", "stderr_empty")),
    Case("resources-memory-limit", config=linux(resources={"memory": {"limit": 100000000}}),
         check=("exit", "stderr_empty")),
    Case("cgroupsPath", config=linux(cgroupsPath="/diff-test"), check=("exit", "stderr_empty")),
    Case("mountLabel", config=linux(mountLabel="system_u:object_r:container_file_t:s0"), check=("exit", "stderr_empty")),
    Case("memoryPolicy-interleave", config=linux(memoryPolicy={"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
         args=sh("grep -q interleave /proc/self/numa_maps && echo interleaved || echo default"),
         note="current runc (1.3) applies linux.memoryPolicy with set_mempolicy; 1.1.5 ignores it",
         current=lambda seen: {**seen, "stdout": "interleaved\n"}),
    # execCPUAffinity is for exec only: current runc's `run` resets the init to every CPU
    # (its tests/integration/cpu_affinity.bats), as 1.1.5 does; `exec` ends on `final`.
    Case("execCPUAffinity-not-for-init", config=process(execCPUAffinity={"initial": "0", "final": "1"}),
         args=sh("grep Cpus_allowed_list /proc/self/status")),
)

# ---- verbs: create/start/state/list/kill/delete/run flags ---------------------------------------
SLEEP = ["sleep", "600"]
CREATE = ("create", "--bundle", "BUNDLE", "ID")
RUN_D = ("run", "-d", "--bundle", "BUNDLE", "ID")
STATUS_STEP = ("status",)
SETTLE = ("settle",)  # the status once stopped, or after 2 s


def verb(name: str, *steps: tuple[str, ...], args: list[str] | None = None, **kwargs: Any) -> Case:
    return Case(name, scenario=sc.steps, args=args or SLEEP, steps=list(steps),
                normalize=kwargs.pop("normalize", lambda text, side: sc.state_json(text)), **kwargs)


def table(text: str, side) -> str:
    return sc.pids_as_count(text, side)


add(
    Case("create-start-probe", scenario=sc.create_start, check=("create", "start", "status_after_create",
                                                                "status_after_start", "status", "env", "cwd")),
    Case("create-start-fds", scenario=sc.create_start, check=("create", "start", "fds")),
    Case("create-start-exit-status", scenario=sc.create_start, args=sh("echo out; exit 3")),
    verb("state-created", CREATE, ("state", "ID")),
    verb("state-running", RUN_D, ("state", "ID")),
    verb("state-stopped", ("run", "-d", "--bundle", "BUNDLE", "ID"), ("wait-stopped",), ("state", "ID"), args=["true"]),
    verb("state-missing", ("state", "no-such-container")),
    verb("state-no-id", ("state",)),
    verb("list-table", CREATE, ("list",), normalize=table),
    verb("list-quiet", CREATE, ("list", "-q")),
    verb("list-json", CREATE, ("list", "-f", "json")),
    verb("list-format-table", CREATE, ("list", "--format", "table"), normalize=table),
    verb("list-empty-json", ("list", "-f", "json")),
    verb("list-empty-table", ("list",)),
    verb("list-bad-format", ("list", "-f", "yaml")),
    verb("start-created", CREATE, ("start", "ID"), ("sleep", "0.2"), STATUS_STEP),
    verb("start-twice", CREATE, ("start", "ID"), ("start", "ID")),
    verb("start-missing", ("start", "no-such-container")),
    verb("start-stopped", ("run", "-d", "--bundle", "BUNDLE", "ID"), ("wait-stopped",), ("start", "ID"), args=["true"]),
    verb("create-duplicate-id", CREATE, CREATE),
    verb("create-bad-id", ("create", "--bundle", "BUNDLE", "a/b")),
    verb("create-empty-id", ("create", "--bundle", "BUNDLE", "")),
    verb("create-no-id", ("create", "--bundle", "BUNDLE")),
    verb("create-missing-bundle", ("create", "--bundle", "/nonexistent/bundle", "ID")),
    verb("create-pid-file", ("create", "--pid-file", "WORK/c.pid", "--bundle", "BUNDLE", "ID"),
         ("pid-file", "WORK/c.pid")),
    verb("create-pid-file-relative", ("create", "--pid-file", "c-rel.pid", "--bundle", "BUNDLE", "ID"), STATUS_STEP,
         ("pid-file", "WORK/c-rel.pid")),
    verb("create-no-pivot", ("create", "--no-pivot", "--bundle", "BUNDLE", "ID"), ("start", "ID"), STATUS_STEP,
         skip_if=foreign_procfs),
    verb("create-no-new-keyring", ("create", "--no-new-keyring", "--bundle", "BUNDLE", "ID"), STATUS_STEP),
    verb("create-preserve-fds-0", ("create", "--preserve-fds", "0", "--bundle", "BUNDLE", "ID"), STATUS_STEP),
    verb("create-bundle-from-cwd", ("create", "ID"), STATUS_STEP),
    verb("run-detach", RUN_D, STATUS_STEP),
    verb("run-detach-pid-file", ("run", "-d", "--pid-file", "WORK/r.pid", "--bundle", "BUNDLE", "ID"),
         ("pid-file", "WORK/r.pid")),
    verb("run-detach-exits", RUN_D, SETTLE, args=["true"]),
    Case("run-no-pivot", flags=["--no-pivot"], check=("exit", "stderr_empty", "status", "cwd"),
         skip_if=foreign_procfs),
    Case("run-no-new-keyring", flags=["--no-new-keyring"], args=sh("cat /proc/self/status | grep -c Cap")),
    Case("run-keep", scenario=sc.steps, args=["true"], steps=[("run", "--keep", "--bundle", "BUNDLE", "ID"),
                                                               STATUS_STEP]),
    Case("run-without-keep", scenario=sc.steps, args=["true"], steps=[("run", "--bundle", "BUNDLE", "ID"),
                                                                       STATUS_STEP]),
    Case("run-detach-terminal-without-socket", scenario=sc.steps, terminal=True, args=["true"],
         steps=[RUN_D, STATUS_STEP]),
    Case("run-detach-console-socket", scenario=sc.run_detached_console, terminal=True,
         args=sh("tty; printf 'x\\ny\\n'; stty size")),
    Case("run-detach-console-socket-consoleSize", scenario=sc.run_detached_console, terminal=True,
         args=["stty", "size"], config=process(consoleSize={"height": 33, "width": 99})),
    Case("run-preserve-fds-bad", flags=["--preserve-fds", "x"], args=["true"]),
)

# kill: names and numbers, -a, and the states it refuses.
for _signal in ("KILL", "9", "SIGKILL", "TERM", "15", "SIGTERM", "HUP", "SIGUSR1", "sigkill", "kill"):
    add(verb(f"kill-{_signal}", RUN_D, ("kill", "ID", _signal), SETTLE))
add(
    verb("kill-default-signal", RUN_D, ("kill", "ID"), SETTLE),
    verb("kill-trapped-term", RUN_D, ("kill", "ID", "TERM"), SETTLE,
         args=sh("trap 'exit 0' TERM; while :; do sleep 0.1; done")),
    verb("kill-all", RUN_D, ("kill", "-a", "ID", "KILL"), SETTLE),
    verb("kill-all-long", RUN_D, ("kill", "--all", "ID", "KILL"), SETTLE),
    verb("kill-created", CREATE, ("kill", "ID", "KILL"), SETTLE),
    verb("kill-stopped", ("run", "-d", "--bundle", "BUNDLE", "ID"), ("wait-stopped",), ("kill", "ID", "KILL"),
         args=["true"]),
    verb("kill-unknown-signal", RUN_D, ("kill", "ID", "NOSUCH"), STATUS_STEP),
    verb("kill-signal-zero", RUN_D, ("kill", "ID", "0"), STATUS_STEP),
    verb("kill-signal-out-of-range", RUN_D, ("kill", "ID", "99"), STATUS_STEP),
    verb("kill-missing", ("kill", "no-such-container", "KILL")),
    verb("delete-running", RUN_D, ("delete", "ID"), STATUS_STEP),
    verb("delete-force-running", RUN_D, ("delete", "-f", "ID"), STATUS_STEP),
    verb("delete-force-long", RUN_D, ("delete", "--force", "ID"), STATUS_STEP),
    verb("delete-created", CREATE, ("delete", "ID"), STATUS_STEP),
    verb("delete-stopped", ("run", "-d", "--bundle", "BUNDLE", "ID"), ("wait-stopped",), ("delete", "ID"),
         STATUS_STEP, args=["true"]),
    verb("delete-missing", ("delete", "no-such-container")),
    verb("delete-force-missing", ("delete", "-f", "no-such-container")),
    verb("pause-rootless", RUN_D, ("pause", "ID"), STATUS_STEP),
    verb("resume-running", RUN_D, ("resume", "ID"), STATUS_STEP),
    verb("ps-table", RUN_D, ("ps", "ID"), normalize=table),
    verb("ps-json", RUN_D, ("ps", "-f", "json", "ID"), normalize=table),
    verb("ps-created", CREATE, ("ps", "-f", "json", "ID"), normalize=table),
    verb("ps-missing", ("ps", "no-such-container")),
    verb("global-log-json", ("--log", "WORK/log.json", "--log-format", "json", "run", "--bundle", "BUNDLE", "ID"),
         args=["true"]),
    verb("global-log-text", ("--log", "WORK/log.txt", "run", "--bundle", "BUNDLE", "ID"), args=["true"]),
    verb("global-debug", ("--debug", "--log", "WORK/debug.log", "run", "--bundle", "BUNDLE", "ID"), args=["true"]),
    verb("global-version", ("--version",), normalize=lambda text, side: len(text.splitlines()) > 0),
    verb("global-unknown-verb", ("frobnicate",)),
    verb("global-unknown-flag", ("state", "--frobnicate", "ID")),
)

# ---- exec ----------------------------------------------------------------------------------------
PROCESS = {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo $FOO; pwd; id -u"], "cwd": "/tmp",
           "env": ["PATH=/bin", "FOO=from-process", "HOME=/root"]}


def exec_case(name: str, *flags: str, exec_args: list[str] | None = None, **kwargs: Any) -> Case:
    return Case(name, scenario=sc.exec_in, flags=list(flags), exec_args=exec_args, **kwargs)


add(
    exec_case("exec-probe-status", check=("exit", "stderr_empty", "status")),
    exec_case("exec-probe-env", check=("exit", "env")),
    exec_case("exec-probe-fds", check=("exit", "fds")),
    exec_case("exec-probe-limits-cwd-umask", check=("exit", "limits", "cwd", "umask")),
    exec_case("exec-env", "-e", "FOO=bar", "-e", "HOME=/root", exec_args=sh("echo $FOO $HOME")),
    exec_case("exec-env-mixed-flag-forms", "-e", "FOO=bar", "--env", "HOME=/root", exec_args=sh("echo $FOO $HOME")),
    exec_case("exec-env-override-path", "-e", "PATH=/bin", exec_args=sh("echo $PATH")),
    exec_case("exec-home-from-passwd", exec_args=sh("echo home=$HOME")),
    exec_case("exec-user-root", "-u", "0:0", exec_args=["id"]),
    exec_case("exec-user-uid-only", "--user", "0", exec_args=["id"]),
    exec_case("exec-user-unmapped", "-u", "1000", exec_args=["id"]),
    exec_case("exec-user-name", "-u", "root", exec_args=["id"]),
    exec_case("exec-additional-gids", "-g", "0", exec_args=["id"]),
    exec_case("exec-cwd", "--cwd", "/tmp", exec_args=["pwd"]),
    exec_case("exec-cwd-missing", "--cwd", "/nonexistent", exec_args=["pwd"]),
    exec_case("exec-cap", "--cap", "CAP_SYS_ADMIN", exec_args=sh("grep CapEff /proc/self/status")),
    exec_case("exec-cap-unknown", "--cap", "CAP_NOPE", exec_args=["true"]),
    exec_case("exec-no-new-privs", "--no-new-privs", exec_args=sh("grep NoNewPrivs /proc/self/status")),
    exec_case("exec-tty", "-t", exec_args=sh("tty; printf 'a\\nb\\n'")),
    exec_case("execCPUAffinity-final", config=process(execCPUAffinity={"initial": "0", "final": "1"}),
              exec_args=sh("grep Cpus_allowed_list /proc/self/status"),
              note="runc 1.2 applies process.execCPUAffinity to exec; 1.1.5 ignores it",
              current=lambda seen: {**seen, "stdout": "Cpus_allowed_list:\t1\n"}),
    exec_case("exec-tty-stty", "-t", exec_args=["stty", "-a"]),
    # process.consoleSize of the container's config.json is the exec's too (runc's exec copies
    # the container's process), as is --process FILE's; a foreground exec then takes the
    # caller's size, a console socket's receiver keeps it.
    exec_case("exec-tty-console-socket", "-d", "-t", "--console-socket", "CONSOLE", exec_args=["stty", "size"]),
    exec_case("exec-tty-console-socket-consoleSize", "-d", "-t", "--console-socket", "CONSOLE",
              exec_args=["stty", "size"], config=process(consoleSize={"height": 33, "width": 99})),
    exec_case("exec-tty-console-socket-consoleSize-terminal", "-d", "-t", "--console-socket", "CONSOLE",
              exec_args=sh("stty size; tty"), terminal=True, config=process(consoleSize={"height": 31, "width": 97})),
    exec_case("exec-tty-console-socket-process-consoleSize", "-d", "--console-socket", "CONSOLE",
              config=process(consoleSize={"height": 33, "width": 99}),
              process={**PROCESS, "terminal": True, "consoleSize": {"height": 40, "width": 120},
                       "args": ["stty", "size"]}),
    exec_case("exec-tty-console-socket-process-no-consoleSize", "-d", "--console-socket", "CONSOLE",
              config=process(consoleSize={"height": 33, "width": 99}),
              process={**PROCESS, "terminal": True, "args": ["stty", "size"]}),
    exec_case("exec-tty-consoleSize-foreground", "-t", exec_args=sh("sleep 0.5; stty size"),
              config=process(consoleSize={"height": 33, "width": 99})),
    exec_case("exec-tty-consoleSize-foreground-at-start", "-t", exec_args=["stty", "size"],
              config=process(consoleSize={"height": 33, "width": 99})),
    exec_case("exec-tty-process-consoleSize-foreground-at-start", "-t", process={
        **PROCESS, "terminal": True, "consoleSize": {"height": 40, "width": 120}, "args": ["stty", "size"]}),
    exec_case("exec-detach", "-d", exec_args=["sleep", "1"]),
    exec_case("exec-detach-pid-file", "-d", "--pid-file", "WORK/e.pid", exec_args=sh("sleep 1")),
    exec_case("exec-process-file", process=PROCESS),
    exec_case("exec-process-file-no-home", process={**PROCESS, "env": ["PATH=/bin"],
                                                    "args": ["sh", "-c", "echo home=$HOME"]}),
    exec_case("exec-process-file-caps", process={**PROCESS, "args": ["sh", "-c", "grep Cap /proc/self/status"],
                                                 "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                                                  "permitted": ["CAP_KILL"]}}),
    exec_case("exec-process-file-rlimits", process={**PROCESS, "args": ["sh", "-c", "ulimit -n"],
                                                    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 99, "hard": 99}]}),
    exec_case("exec-process-file-bad-json", "--process", "/etc/hostname", exec_args=["true"]),
    exec_case("exec-exit-status", exec_args=sh("exit 5")),
    exec_case("exec-missing-binary", exec_args=["/nonexistent"]),
    exec_case("exec-no-args", exec_args=[]),
    exec_case("exec-preserve-fds-0", "--preserve-fds", "0", exec_args=["true"]),
    exec_case("exec-apparmor", "--apparmor", "unconfined", exec_args=["true"]),
    exec_case("exec-process-label", "--process-label", "system_u:system_r:container_t:s0", exec_args=["true"]),
    verb("exec-missing-container", ("exec", "no-such-container", "true")),
    verb("exec-created-container", CREATE, ("exec", "ID", "true")),
    verb("exec-stopped-container", ("run", "-d", "--bundle", "BUNDLE", "ID"), ("wait-stopped",),
         ("exec", "ID", "true"), args=["true"]),
)

# ---- spec, features --------------------------------------------------------------------------
def current_spec(seen: dict) -> dict:
    """runc 1.2's template (libcontainer/specconv/example.go): no ambient capabilities, and
    /sys/devices/virtual/tpm masked; cgroup namespace only on a cgroup v2 host (not this one)."""
    config = seen.get("config")
    if isinstance(config, dict):
        config["process"]["capabilities"].pop("ambient", None)
        config["linux"]["maskedPaths"].append("/sys/devices/virtual/tpm")
    return seen


def spec_version(config: Any, side) -> Any:
    if isinstance(config, dict):
        config["ociVersion"] = "<ociVersion>"
    return config


add(
    Case("spec", scenario=sc.spec, normalize=spec_version, current=current_spec, note=current_spec.__doc__),
    Case("spec-rootless", scenario=sc.spec, flags=["--rootless"], normalize=spec_version, current=current_spec),
    Case("spec-existing-config", scenario=sc.spec, steps=[("existing",)]),
    Case("spec-bundle", scenario=sc.spec, flags=["--bundle", "."], normalize=spec_version, current=current_spec),
    Case("features-top-level-keys", scenario=sc.features,
         normalize=lambda data, side: {"keys": sorted(data)},
         note="runc 1.2 adds potentiallyUnsafeConfigAnnotations",
         current=lambda seen: {**seen, "keys": sorted(seen["keys"] + ["potentiallyUnsafeConfigAnnotations"])}),
    Case("features-linux-keys", scenario=sc.features, normalize=lambda data, side: {"linux": sorted(data["linux"])},
         note="runc 1.2 adds intelRdt and mountExtensions, 1.3 netDevices",
         current=lambda seen: {**seen, "linux": sorted(seen["linux"] + ["intelRdt", "mountExtensions",
                                                                        "netDevices"])}),
    Case("features-hooks", scenario=sc.features, normalize=lambda data, side: {"hooks": data.get("hooks")}),
    Case("features-namespaces", scenario=sc.features,
         normalize=lambda data, side: {"namespaces": sorted(data["linux"]["namespaces"])},
         note="runc 1.2 supports time namespaces", current=lambda seen: {**seen, "namespaces": sorted(
             seen["namespaces"] + ["time"])}),
    Case("features-capabilities", scenario=sc.features,
         normalize=lambda data, side: {"capabilities": sorted(data["linux"]["capabilities"])},
         note="runc 1.2 was built with a libcap that knows the same 41 capabilities"),
    Case("features-mount-options", scenario=sc.features,
         normalize=lambda data, side: {"mountOptions": sorted(data["mountOptions"])},
         note="runc 1.2 adds idmap and ridmap", current=lambda seen: {**seen, "mountOptions": sorted(
             seen["mountOptions"] + ["idmap", "ridmap"])}),
    Case("features-seccomp-actions", scenario=sc.features,
         normalize=lambda data, side: {"actions": sorted(data["linux"]["seccomp"].get("actions", []))}),
    Case("features-seccomp-operators", scenario=sc.features,
         normalize=lambda data, side: {"operators": sorted(data["linux"]["seccomp"].get("operators", []))}),
    Case("features-seccomp-flags", scenario=sc.features,
         normalize=lambda data, side: {"supportedFlags": sorted(data["linux"]["seccomp"].get("supportedFlags", []))},
         note="runc 1.1.5 reports none with Debian's libseccomp 2.5.4; current runc reports the flags both the "
              "kernel and libseccomp support (WAIT_KILLABLE_RECV needs libseccomp 2.6)",
         current=lambda seen: {**seen, "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                                          "SECCOMP_FILTER_FLAG_TSYNC"]}),
)

# ---- hooks ----------------------------------------------------------------------------------------
def hook(script: str, **extra: Any) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", script], **extra}


def hooks(**kinds: list[dict]) -> Callable:
    def overrides(side) -> dict:
        out = side.runtime.work_dir / "hooks.out"
        return {"hooks": {kind: [{**entry, "args": [a.replace("OUT", str(out)) for a in entry["args"]]}
                                 for entry in entries] for kind, entries in kinds.items()}}
    return overrides


STATE_FIELDS = "read s; echo \"$0 $(echo \"$s\" | tr ',' '\\n' | grep -E '\"(status|id)\"' | tr '\\n' ' ')\" >> OUT"
add(
    Case("hook-prestart", args=["true"], scenario=sc.hooks, config=hooks(prestart=[hook("echo prestart >> OUT")])),
    Case("hook-order", args=["true"], scenario=sc.hooks, config=hooks(
        prestart=[hook("echo prestart >> OUT")], createRuntime=[hook("echo createRuntime >> OUT")],
        createContainer=[hook("echo createContainer >> OUT")], startContainer=[hook("true")],
        poststart=[hook("echo poststart >> OUT")], poststop=[hook("echo poststop >> OUT")])),
    Case("hook-state-on-stdin", args=["true"], scenario=sc.hooks, config=hooks(
        createRuntime=[hook(STATE_FIELDS.replace("$0", "createRuntime"))],
        poststart=[hook(STATE_FIELDS.replace("$0", "poststart"))],
        poststop=[hook(STATE_FIELDS.replace("$0", "poststop"))]),
        normalize=lambda text, side: re.sub(r'"id":"[^"]*"', '"id":"<ID>"', text),
        note="current runc (PR #5186, after 1.5.0-rc.1) runs poststart from `start` once the process has "
             "started, as runtime.md asks: the state says running (1.1.5 ran it before the release: created)",
        current=lambda seen: {**seen, "hooks": seen["hooks"].replace('poststart "id":"<ID>" "status":"created"',
                                                                     'poststart "id":"<ID>" "status":"running"')}),
    Case("hook-env-given", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[hook("echo \"$FOO\" >> OUT; env | grep -c . >> OUT", env=["FOO=bar"])])),
    Case("hook-env-absent", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[hook("env | cut -d= -f1 | grep -qx PATH && echo has-PATH >> OUT || echo no-PATH >> OUT")])),
    Case("hook-args", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[{"path": "/bin/sh", "args": ["name-in-argv0", "-c", "echo $0 >> OUT"]}])),
    Case("hook-startContainer-env", args=["cat", "/hook.out"], private_rootfs=True,
         config={"root": {"readonly": False}, "process": {"env": HOME_ENV + ["FOO=container"]},
                 "hooks": {"startContainer": [hook("echo FOO=$FOO > /hook.out")]}},
         note="a startContainer hook runs in the container and sees the process's environment"),
    Case("hook-failing-startContainer", args=["true"], scenario=sc.hooks,
         config=hooks(startContainer=[hook("exit 3")], poststart=[hook("echo poststart >> OUT")])),
    Case("hook-failing-prestart", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[hook("exit 3")])),
    Case("hook-failing-poststart", args=["true"], scenario=sc.hooks,
         config=hooks(poststart=[hook("echo ran >> OUT; exit 3")])),
    Case("hook-failing-poststop", args=["true"], scenario=sc.hooks,
         config=hooks(poststop=[hook("echo ran >> OUT; exit 3")])),
    Case("hook-timeout", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[hook("sleep 5; echo late >> OUT", timeout=1)])),
    Case("hook-missing-path", args=["true"], scenario=sc.hooks,
         config=hooks(prestart=[{"path": "/nonexistent/hook", "args": ["x", "OUT"]}])),
)

# ---- as root: runc's own template, no user namespace (helpers.runtime hides the v1 memory
# controller from both runtimes, which runc as root would write to) ------------------------------
for _section in ("status", "maps", "mounts", "mount_order", "fds", "env", "umask", "limits", "cwd", "names", "proc"):
    add(Case(f"root-default-{_section}", check=(_section,), root=True))
add(
    Case("root-caps-all", config=caps(**{k: ALL_CAPS for k in ("bounding", "effective", "permitted")}),
         check=STATUS, root=True),
    Case("root-user-1000", config=process(user={"uid": 1000, "gid": 1000, "additionalGids": [5, 100]}),
         check=STATUS, root=True),
    Case("root-rlimit-raise-hard", config=process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 20,
                                                            "hard": 1 << 20}]),
         check=("exit", "stderr_empty", "limits"), root=True),
    Case("root-oomScoreAdj-lower", config=process(oomScoreAdj=-500), check=("exit", "stderr_empty", "proc"),
         root=True),
    Case("root-device-fuse-0666", config=linux(devices=[{**FUSE, "fileMode": 0o666, "uid": 0, "gid": 0}]),
         args=LS_DEV, root=True),
    Case("root-device-fuse-0660", config=linux(devices=[{**FUSE, "fileMode": 0o660, "uid": 0, "gid": 0}]),
         args=LS_DEV, root=True),
    Case("root-device-override-default-seen", config=linux(devices=[URANDOM, ZERO_0600]), args=DEV_ORDER, root=True),
    Case("root-device-filemode-with-type-bits", config=linux(devices=[{**FUSE, "fileMode": 0o20666}]),
         args=LS_DEV, root=True),
    Case("root-sysfs", check=("exit", "mounts"), focus=("/sys$",), root=True),
    Case("root-user-namespace", config=lambda side: {"linux": {
        "namespaces": [{"type": t} for t in NS], "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}},
         check=("exit", "stderr_empty", "status", "maps"), root=True),
    verb("root-kill-KILL", RUN_D, ("kill", "ID", "KILL"), SETTLE, root=True),
    verb("root-ps-json", RUN_D, ("ps", "-f", "json", "ID"), normalize=table, root=True),
    exec_case("root-exec-user", "-u", "1000:1000", exec_args=["id"], root=True),
)
