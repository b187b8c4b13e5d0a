"""Errors a user can act on. Only the CLI turns them into a line on stderr and an exit code."""

import os


class RootlessError(Exception):
    """An error with a one-line message meant for the user."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(RootlessError):
    """Bad command line: unknown flag, missing argument, bad value."""


class ConfigError(RootlessError):
    """config.json is missing, malformed, or asks for something impossible."""


class ContainerNotFound(RootlessError):
    def __init__(self, container_id: str):
        super().__init__(f"container does not exist: {container_id}")  # runc's words: clients match them
        self.container_id = container_id


class SyscallError(RootlessError):
    """A failed system call, naming the call and the path it worked on."""

    def __init__(self, call: str, errno_: int, path: str | None = None, hint: str | None = None):
        self.call = call
        self.errno = errno_
        self.path = path
        where = f" `{path}`" if path else ""
        message = f"{call}{where}: {os.strerror(errno_)}"
        if hint:
            message += f" ({hint})"
        RootlessError.__init__(self, message)
