from rootless.exec import launcher as exec_launcher
from rootless import state
from rootless.errors import RootlessError, UsageError


def run(ctx, parsed) -> int:
    o = parsed.options
    request = exec_launcher.ExecRequest(
        parsed.rest, process_file=o["process"], cwd=o["cwd"], env=o["env"], user=o["user"],
        additional_gids=o["additional_gids"], caps=o["cap"], no_new_privs=o["no_new_privs"],
        tty=o["tty"] or None, console_socket=o["console_socket"], detach=o["detach"], pid_file=o["pid_file"],
        preserve_fds=o["preserve_fds"], apparmor=o["apparmor"], process_label=o["process_label"],
        ignore_paused=o["ignore_paused"], cgroup=o["cgroup"])
    try:
        cdir = state.ContainerDir(ctx.root, parsed.args["id"])
        with cdir:
            record = cdir.load()
        return exec_launcher.execute(ctx, cdir, record, request)
    except UsageError:
        raise
    except RootlessError as err:
        err.exit_code = 255  # runc's status for an exec that fails before the process runs
        raise
