"""/etc/subuid and /etc/subgid: the subordinate ID ranges a user may map with newuidmap and
newgidmap (subuid(5)). Each line is `name_or_uid:start:count`."""

from idmap._record import Record

MAX_ID = 2**32 - 2  # 2**32 - 1 is (uid_t)-1, which means "no ID" to the kernel


class SubIdRange(Record):
    start: int
    count: int

    @property
    def end(self) -> int:
        """The last ID in the range."""
        return self.start + self.count - 1


def read_subid_ranges(user_name: str | None, uid: int, path: str) -> list[SubIdRange]:
    """The ranges of the user named `user_name` or with decimal `uid`, in file order. Lines
    that do not parse, or whose range lies outside 0..2**32-2, are skipped the way shadow's
    own tools skip them; a missing or unreadable file means no ranges."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    owners = {str(uid), user_name}
    ranges = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in owners:
            continue  # also blank lines and comments: neither matches a user
        start, count = _number(fields[1]), _number(fields[2])
        if start is not None and count is not None and count >= 1 and start + count - 1 <= MAX_ID:
            ranges.append(SubIdRange(start, count))
    return ranges


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None
