"""The verdict of each case run in this session (nodeid -> (case name, verdict)), filled by
test_differential.py and printed as a table by conftest.py's terminal summary."""

VERDICTS: dict[str, tuple[str, str]] = {}
