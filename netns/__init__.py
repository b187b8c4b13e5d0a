"""Network helpers for containers: what a new network namespace needs before `start`.

  loopback     lo up in the init (an ioctl: no import cost)
  config       the network plan from config.json's annotations (pure)
  attach       attach()/detach(): the helper in the create window, stopped on delete
  pasta, slirp4netns   one module per helper: command line, start, readiness, ports
  spawn        fork/exec of helpers and the watcher that stops them when the init dies
  dns          generated /etc/resolv.conf and /etc/hosts, bind-mounted read-only

Modules here import only the standard library at module level; pyroute2 (about 200 ms to
import) is for functions that need netlink, so containers without networking do not pay for
it. A bundle without rootless.* network annotations loads nothing here but loopback.
"""
