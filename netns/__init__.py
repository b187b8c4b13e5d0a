"""Network helpers for containers: what a new network namespace needs before `start`.

Modules here import only the standard library at module level; pyroute2 (about 200 ms to
import) is loaded inside the functions that need netlink, so containers without networking do
not pay for it.
"""
