"""Process and kernel attributes beyond the basics: sysctl rules, personality, scheduler, I/O
priority, NUMA memory policy, CPU affinity, time namespace offsets and LSM labels.

Checking is pure and runs on config.json before anything exists (config.check_semantics);
applying is small and runs where each attribute belongs: time offsets in the namespace stage
(after unshare(CLONE_NEWTIME), before any process enters the namespace), personality,
scheduler, I/O priority and memory policy at the start of the init (and of exec's process),
LSM exec labels just before "ready".

CPU affinity follows current runc: the runtime's caller may be pinned to some CPUs (a pinned
kubelet or shell), and that pinning must not leak into the container, so the init and exec's
process start from every CPU the kernel allows them (their cpuset). process.execCPUAffinity is
for `exec` only (the spec: "not applicable to the container's init process"): `initial` while
exec joins the container, `final` for the process from its execve on.
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

MEMORY_POLICY_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
                       "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MEMORY_POLICY_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
                       "MPOL_F_STATIC_NODES": 1 << 15}
_MAX_IDS = 1 << 16            # CPUs and memory nodes: far beyond any machine (CONFIG_NR_CPUS <= 8192)

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


def id_list(text: str, where: str) -> list[int]:
    """A CPU or node list as the spec writes it ("0-3,7"), sorted; "" is the empty list."""
    ids: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ConfigError(f"config.json: {where} {text!r} is not a list like 0-3,7")
        low, high = int(first), int(last) if dash else int(first)
        if low > high or high >= _MAX_IDS:
            raise ConfigError(f"config.json: {where} {text!r}: the range {part} is empty or too large")
        ids.update(range(low, high + 1))
    return sorted(ids)


def memory_policy_args(policy: dict) -> tuple[int, list[int]]:
    """linux.memoryPolicy as set_mempolicy's mode (flags ORed in) and node list."""
    mode = policy.get("mode")
    if mode not in MEMORY_POLICY_MODES:
        raise ConfigError(f"config.json: linux.memoryPolicy.mode {mode!r} is not a memory policy mode "
                          f"(known: {', '.join(MEMORY_POLICY_MODES)})")
    value = MEMORY_POLICY_MODES[mode]
    for flag in policy.get("flags") or ():
        if flag not in MEMORY_POLICY_FLAGS:
            raise ConfigError(f"config.json: linux.memoryPolicy.flags: {flag!r} is not a memory policy flag "
                              f"(known: {', '.join(MEMORY_POLICY_FLAGS)})")
        value |= MEMORY_POLICY_FLAGS[flag]
    nodes = id_list(policy.get("nodes") or "", "linux.memoryPolicy.nodes")
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and nodes:
        raise ConfigError(f"config.json: linux.memoryPolicy: {mode} takes no nodes")
    if mode in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE") and not nodes:
        raise ConfigError(f"config.json: linux.memoryPolicy: {mode} needs nodes")
    return value, nodes


def cpu_affinity(process: dict) -> tuple[list[int] | None, list[int] | None]:
    """process.execCPUAffinity as (initial, final) CPU lists; None where unset or empty."""
    affinity = process.get("execCPUAffinity") or {}
    return tuple(id_list(affinity[key], f"process.execCPUAffinity.{key}") or None if affinity.get(key) else None
                 for key in ("initial", "final"))


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
    if linux.get("memoryPolicy"):
        memory_policy_args(linux["memoryPolicy"])
    cpu_affinity(process)
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
    """In the init and exec's process: personality, scheduler, I/O priority and memory policy,
    all inherited across execve."""
    linux, process = config["linux"], config["process"]
    if linux.get("memoryPolicy"):
        mode, nodes = memory_policy_args(linux["memoryPolicy"])
        sc.set_mempolicy(mode, nodes, hint="linux.memoryPolicy: are the nodes online and in this cpuset "
                                           "(Mems_allowed_list in /proc/self/status)?")
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



def set_cpus(cpus: list[int] | None, what: str) -> None:
    """Pin this process to `cpus`; None: every CPU, which the kernel narrows to the cpuset (the
    caller's own pinning is dropped, as current runc drops it)."""
    try:
        # "Every CPU": bits past the machine's CPUs are ignored by the kernel.
        os.sched_setaffinity(0, range(max(os.cpu_count() or 1, 1024)) if cpus is None else cpus)
    except OSError as err:
        if cpus is None:
            return      # every CPU is what the kernel allows anyway: keep what we have
        listed = ",".join(map(str, cpus))
        raise RootlessError(f"process.execCPUAffinity.{what} {listed}: sched_setaffinity: {err.strerror} "
                            "(are these CPUs online and in the container's cpuset?)") from None
