from rootless import launcher


def request_from(parsed) -> launcher.Request:
    o = parsed.options
    return launcher.Request(parsed.args["id"], o["bundle"], o["config"], o["pid_file"], o["console_socket"],
                            o["no_pivot"], o["no_new_keyring"], o["preserve_fds"])


def run(ctx, parsed) -> int:
    launcher.create(ctx, request_from(parsed))
    return 0
