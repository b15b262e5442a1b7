"""The self-check's verdict: its last line, written on the device and read back on the login node.

    passed("cpu", checks=11, warned=1)            # "selfcheck cpu: all 11 checks passed (1 with a warning)"
    failed("cuda", "device: make_backend(...): ...")  # "selfcheck cuda: FAILED; first failing call: device: ..."
    read_verdict(log_text)                        # -> (True, "all 11 checks passed ...") | (False, "device: ...") | None

Written by unetbench/cluster/selfcheck_calls.py (and selfcheck.py when torch cannot be imported),
read by selfcheck_jobs.py from each job's log: one format, kept here. Torch-free.
"""

from __future__ import annotations

from typing import Optional

VERDICT = "selfcheck "
FIRST_FAILURE = "first failing call: "


def passed(backend: str, checks: int, warned: int) -> str:
    return f"{VERDICT}{backend}: all {checks} checks passed" + (f" ({warned} with a warning)" if warned else "")


def failed(backend: str, first_failure: str, rank: Optional[int] = None) -> str:
    where = f" (rank {rank})" if rank is not None else ""
    return f"{VERDICT}{backend}{where}: FAILED; {FIRST_FAILURE}{first_failure}"


def read_verdict(text: str) -> Optional[tuple[bool, str]]:
    """The last verdict in a log: (passed, what it says after the backend), or None when the
    command never got as far (SETUP failed, no python, killed)."""
    lines = [line for line in text.splitlines() if line.startswith(VERDICT)]
    if not lines:
        return None
    said = lines[-1].split(": ", 1)[-1]
    if FIRST_FAILURE in said:
        return False, said.split(FIRST_FAILURE, 1)[1]
    return True, said
