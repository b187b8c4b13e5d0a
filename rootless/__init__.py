"""rootless: a rootless-first OCI container runtime.

Process stages (one module each):
  rootless.fastpath   the command's entry: the short verbs without the CLI's tables, the rest to rootless.cli
  rootless.cli        the CLI process: parses argv, dispatches to rootless.commands.<verb>
  rootless.create.stagefork  forks the namespace stage first, so that it imports while the CLI plans
  rootless.create.launcher   the CLI side of create: plans, sends the stage its job, maps IDs, waits
  rootless.create.nsstage    the namespace-creating child: joins/creates namespaces, forks the init
  rootless.create.init       the container init: mounts, pivot_root, process setup, waits for start

The parent/child protocol is documented in rootless.create.protocol.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"
