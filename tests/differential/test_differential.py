"""The differential harness: every case of diff_cases.CASES runs once under runc (Debian's
1.1.5) and once under rootless, both as the unprivileged test user with the same config.json
(runc's rootless template, the caller mapped to root), and what a client and the container
saw must be the same. The two sides of a case run at once.

A case that diverges today is listed once, with its reason and the part of issue 10 it
belongs to, in diff_known.KNOWN (an xfail(strict=True): a fix makes it XPASS, and the list
must be trimmed). A deliberate difference is in diff_known.DELIBERATE: the case asserts
rootless's own behaviour, with the reason. Where runc 1.1.5 and current runc differ, a case
compares rootless with current runc's documented value (the case's `current` and `note`).
conftest.py prints the table of cases (identical / differs (known) / deliberate) at the end.

Size: 368 cases (344 as the test user, 24 as root); they cost about 80 s of CPU (user + system,
runtimes and containers included), and took 3.5 to 4.8 minutes of wall time on the 2-core
machine while three other test sessions loaded it (load average 10 to 13).
ROOTLESS_DIFF_CASES=N runs every N-th case (2: half the time), ROOTLESS_DIFF_CASES=off none.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from diff_cases import CASES, Case, selected
from diff_known import DELIBERATE, KNOWN
from diff_table import VERDICTS
from helpers.differential import Side, compare

for _name in list(KNOWN) + list(DELIBERATE):
    assert _name in {case.name for case in CASES}, f"diff_known names a case that does not exist: {_name}"


def _param(case: Case):
    marks = []
    if case.name in KNOWN:
        reason, part = KNOWN[case.name]
        marks.append(pytest.mark.xfail(strict=True, reason=f"[{part}] {reason}"))
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in selected(CASES)])
def test_differential(case: Case, request: pytest.FixtureRequest) -> None:
    runc, rootless = request.getfixturevalue("root_sides" if case.root else "sides")
    verdict = "deliberate" if case.name in DELIBERATE else "differs (known)" if case.name in KNOWN else "identical"
    VERDICTS[request.node.nodeid] = (case.name, verdict)
    reason = case.skip_if() if case.skip_if is not None else None
    if reason:
        pytest.skip(reason)
    # Both sides at once (their state roots and folders are their own): half the wall time on
    # the 2-core CI machine.
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs_future = pool.submit(case.observe, runc)
        ours = case.observe(rootless)
        theirs = theirs_future.result()
    if case.name in DELIBERATE:
        reason, check = DELIBERATE[case.name]
        check(ours, theirs)
        return
    if case.current is not None:
        theirs = case.current(theirs)
    differences = compare(theirs, ours)
    assert not differences, f"{case.name}: rootless differs from {'current runc' if case.current else 'runc'}:\n" + \
        "\n".join(differences)
