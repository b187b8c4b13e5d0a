"""Process and kernel attributes beyond the basics: sysctl rules, personality, scheduler, I/O
priority, time namespace offsets and LSM labels.

Checking is pure and runs on config.json before anything exists (config.check_semantics);
applying is small and runs where each attribute belongs: time offsets in the namespace stage
(after unshare(CLONE_NEWTIME), before any process enters the namespace), personality,
scheduler and I/O priority at the start of the init, LSM exec labels just before "ready".
"""

import os

from rootless.linux import procfs
from rootless.linux import syscalls as sc
from rootless.errors import ConfigError, RootlessError

# runc's validator (libcontainer/configs/validate/validator.go): the sysctls with a namespace of
# their own, and the namespace each needs.
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_IDLE": 5,
                  "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
TIME_CLOCKS = ("monotonic", "boottime")

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_MOUNT = "/sys/fs/selinux"


def _namespaces(linux: dict) -> dict:
    return {ns["type"]: ns.get("path") for ns in linux.get("namespaces", [])}


def check_sysctls(sysctl: dict, namespaces: dict) -> None:
    """Only sysctls of a namespace the container has (new or joined) may be set: others would
    change the host."""
    for key in sysctl:
        name = key.replace("/", ".")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            needed = "ipc"
        elif name.startswith("net."):
            needed = "network"
        elif name in UTS_SYSCTLS:
            needed = "uts"
        else:
            raise ConfigError(f'config.json: linux.sysctl: "{key}" is not namespaced')
        if needed not in namespaces:
            raise ConfigError(f'config.json: linux.sysctl: "{key}" needs a {needed} namespace in linux.namespaces')


def personality_value(personality: dict) -> int:
    domain = personality.get("domain")
    if domain not in PERSONALITY_DOMAINS:
        raise ConfigError(f"config.json: linux.personality.domain {domain!r} must be LINUX or LINUX32")
    # flags: the spec defines no values yet; runc and crun ignore them (rootless.oci.config warns)
    return PERSONALITY_DOMAINS[domain]


def scheduler_args(scheduler: dict) -> dict:
    """process.scheduler as sched_setattr's arguments, checked as the kernel would."""
    policy_name = scheduler.get("policy")
    if policy_name == "SCHED_ISO":
        raise ConfigError("config.json: process.scheduler.policy SCHED_ISO does not exist in the Linux kernel")
    if policy_name not in SCHED_POLICIES:
        raise ConfigError(f"config.json: process.scheduler.policy {policy_name!r} is not a scheduling policy")
    flags = 0
    for name in scheduler.get("flags", []):
        if name not in SCHED_FLAGS:
            raise ConfigError(f"config.json: process.scheduler.flags: {name} is not supported (utilization "
                              "clamps need values the runtime spec does not carry)")
        flags |= SCHED_FLAGS[name]
    nice, priority = scheduler.get("nice", 0), scheduler.get("priority", 0)
    if not -20 <= nice <= 19:
        raise ConfigError(f"config.json: process.scheduler.nice {nice} is outside -20..19")
    realtime = policy_name in ("SCHED_FIFO", "SCHED_RR")
    if realtime and not 1 <= priority <= 99:
        raise ConfigError(f"config.json: process.scheduler.priority {priority} must be 1..99 for {policy_name}")
    if not realtime and priority != 0:
        raise ConfigError(f"config.json: process.scheduler.priority must be 0 for {policy_name}")
    runtime, deadline, period = (scheduler.get(k, 0) for k in ("runtime", "deadline", "period"))
    if policy_name == "SCHED_DEADLINE" and not (0 < runtime <= deadline <= (period or deadline)):
        raise ConfigError("config.json: process.scheduler: SCHED_DEADLINE needs 0 < runtime <= deadline <= period")
    return {"policy": SCHED_POLICIES[policy_name], "flags": flags, "nice": nice, "priority": priority,
            "runtime": runtime, "deadline": deadline, "period": period}


def ioprio_value(io: dict) -> int:
    klass, priority = io.get("class"), io.get("priority", 0)
    if klass not in IOPRIO_CLASSES:
        raise ConfigError(f"config.json: process.ioPriority.class {klass!r} is not an I/O scheduling class")
    if not 0 <= priority <= 7:
        raise ConfigError(f"config.json: process.ioPriority.priority {priority} is outside 0..7")
    return IOPRIO_CLASSES[klass] << 13 | priority


def time_offsets_text(offsets: dict) -> str:
    """The lines /proc/PID/timens_offsets takes: `<clock> <secs> <nanosecs>`."""
    lines = []
    for clock, value in offsets.items():
        if clock not in TIME_CLOCKS:
            raise ConfigError(f"config.json: linux.timeOffsets: clock {clock!r} has no offset in a time "
                              "namespace (only monotonic and boottime)")
        nanosecs = value.get("nanosecs", 0)
        if not 0 <= nanosecs < 1_000_000_000:
            raise ConfigError(f"config.json: linux.timeOffsets.{clock}.nanosecs {nanosecs} is outside 0..999999999")
        lines.append(f"{clock} {value.get('secs', 0)} {nanosecs}\n")
    return "".join(lines)


def apparmor_enabled(path: str = APPARMOR_ENABLED) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def selinux_enabled(mount: str = SELINUX_MOUNT) -> bool:
    return os.path.exists(os.path.join(mount, "enforce"))


def check_lsm(config: dict, *, apparmor: bool | None = None, selinux: bool | None = None) -> None:
    process = config.get("process", {})
    if process.get("apparmorProfile"):
        if not (apparmor_enabled() if apparmor is None else apparmor):
            raise ConfigError(f"config.json: process.apparmorProfile {process['apparmorProfile']!r}: AppArmor is "
                              f"not enabled on this host ({APPARMOR_ENABLED} is not Y)")
    for name, value in (("process.selinuxLabel", process.get("selinuxLabel")),
                        ("linux.mountLabel", config.get("linux", {}).get("mountLabel"))):
        if value and not (selinux_enabled() if selinux is None else selinux):
            raise ConfigError(f"config.json: {name} {value!r}: SELinux is not enabled on this host "
                              f"(no selinuxfs at {SELINUX_MOUNT})")


def check(config: dict) -> None:
    """Every attribute of this module, before anything exists."""
    linux, process = config.get("linux", {}), config.get("process", {})
    namespaces = _namespaces(linux)
    check_sysctls(linux.get("sysctl", {}), namespaces)
    if linux.get("personality"):
        personality_value(linux["personality"])
    if process.get("scheduler"):
        scheduler_args(process["scheduler"])
    if process.get("ioPriority"):
        ioprio_value(process["ioPriority"])
    if linux.get("timeOffsets"):
        if "time" not in namespaces:
            raise ConfigError("config.json: linux.timeOffsets needs a time namespace in linux.namespaces")
        if namespaces["time"]:
            raise ConfigError("config.json: linux.timeOffsets cannot change a time namespace joined by path")
        time_offsets_text(linux["timeOffsets"])
    check_lsm(config)


def write_time_offsets(offsets: dict, proc: str = "/proc") -> None:
    """In the namespace stage, after unshare(CLONE_NEWTIME) and before the fork: the kernel takes
    offsets only while no process has entered the new time namespace."""
    text = time_offsets_text(offsets)
    try:
        procfs.write_once(f"{proc}/self/timens_offsets", text)
    except OSError as err:
        raise RootlessError(f"linux.timeOffsets: write {proc}/self/timens_offsets: {err.strerror}") from None


_PRIVILEGE_HINT = "the host's root or CAP_SYS_NICE is needed for it; rootless containers may only lower priority"


def apply_process(config: dict) -> None:
    """In the init: personality, scheduler and I/O priority, all inherited across execve."""
    linux, process = config["linux"], config["process"]
    if linux.get("personality"):
        sc.personality(personality_value(linux["personality"]))
    if process.get("scheduler"):
        sc.sched_setattr(**scheduler_args(process["scheduler"]), hint=_PRIVILEGE_HINT)
    if process.get("ioPriority"):
        sc.ioprio_set(ioprio_value(process["ioPriority"]),
                      hint="IOPRIO_CLASS_RT needs CAP_SYS_ADMIN on the host")


def apply_exec_labels(process: dict, proc: str = "/proc") -> None:
    """The LSM labels the next execve switches to (check_lsm made sure the LSM is active)."""
    writes = []
    if process.get("apparmorProfile"):
        path = f"{proc}/self/attr/apparmor/exec"
        writes.append((path if os.path.exists(path) else f"{proc}/self/attr/exec",
                       "exec " + process["apparmorProfile"], "process.apparmorProfile"))
    if process.get("selinuxLabel"):
        writes.append((f"{proc}/self/attr/exec", process["selinuxLabel"], "process.selinuxLabel"))
    for path, value, field in writes:
        try:
            procfs.write_once(path, value)
        except OSError as err:
            raise RootlessError(f"{field}: write {path}: {err.strerror}") from None

