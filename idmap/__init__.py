"""User-namespace ID maps: read /etc/subuid and /etc/subgid (subid), plan the uid_map and
gid_map of a container's new user namespace (plan, pure), and write them with
newuidmap/newgidmap or directly (apply). Standard library only: this runs on every create."""

from idmap.apply import apply_idmap_plan, find_helper
from idmap.plan import IdMapError, IdMapping, IdMapPlan, plan_idmaps
from idmap.subid import SubIdRange, read_subid_ranges

__all__ = ["SubIdRange", "read_subid_ranges", "IdMapping", "IdMapPlan", "IdMapError", "plan_idmaps",
           "apply_idmap_plan", "find_helper"]
