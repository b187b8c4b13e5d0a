"""The flags of `create` and `run`, written once. rootless.cli puts these Commands in its tables,
and rootless.fastpath parses the create and run calls clients make with them alone: the CLI's
other tables and help texts cost about 0.7 ms of every create (podman makes one per container)."""

from rootless import args as a

BUNDLE = a.Option(("b", "bundle"), "bundle", True, help="path to the bundle (default: current directory)")
CONTAINER_SETUP = (
    BUNDLE,
    a.Option(("f", "config"), "config", True, help="path to config.json (default: BUNDLE/config.json)"),
    a.Option(("pid-file",), "pid_file", True, help="write the init's host PID to this file"),
    a.Option(("console-socket",), "console_socket", True, help="AF_UNIX socket that receives the pty master"),
    a.Option(("no-pivot",), "no_pivot", help="use MS_MOVE and chroot instead of pivot_root"),
    a.Option(("no-new-keyring",), "no_new_keyring", help="keep the caller's session keyring"),
    a.Option(("preserve-fds",), "preserve_fds", True, 0, a.non_negative_int, help="pass N more fds (3..3+N-1)"),
    a.Option(("pidfd-socket",), "pidfd_socket", True, help="accepted for runc compatibility; unused"),
    a.Option(("network",), "network", True, help="none, pasta, slirp4netns or host (annotation rootless.network)"),
    a.Option(("p", "publish"), "publish", True, repeat=True,
             help="[hostip:]hostport:containerport[/tcp|udp], repeatable (annotation rootless.ports)"),
    a.Option(("dns",), "dns", True, help="auto or name servers, comma-separated (annotation rootless.dns)"),
    a.Option(("shim",), "shim", help="hand the container to a shim that keeps its stdio, log and exit code"),
    a.Option(("shim-log",), "shim_log", True, help="the shim's log file (default: STATE/ID/ctr.log)"),
    a.Option(("shim-log-format",), "shim_log_format", True, "k8s-file", help="k8s-file or json-lines"),
)

CREATE = a.Command("create", "Create a container: its init waits in the namespaces until `start`.",
                   CONTAINER_SETUP, ("id",))
RUN = a.Command("run", "Create and start a container; wait for it unless --detach.", CONTAINER_SETUP + (
    a.Option(("d", "detach"), "detach", help="do not wait for the container"),
    a.Option(("keep",), "keep", help="do not delete the container after it exits"),
    a.Option(("rm",), "rm", help="with --shim: the shim deletes the container once it exits"),
), ("id",))
SETUP_COMMANDS = {CREATE.name: CREATE, RUN.name: RUN}
