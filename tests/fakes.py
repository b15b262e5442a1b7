"""Shared fakes for the tests: a clock that moves only when told, and stand-in command-line tools.

FakeClock
    Time for code that takes a ``clock=`` callable (the step timer, the energy meters, the
    monitor): call it to read the time, ``advance(seconds)`` to move it. It also plays the
    device's part the timer needs: ``sync()`` records the time of each synchronisation in
    ``syncs``, ``event()`` makes a host event on this clock. Subclass it for a fake device whose
    counters move with time (an energy counter: add a ``work(seconds)`` that calls ``advance``).

fake_tool(bin_dir, name, ...)
    Writes ``bin_dir/name``, an executable /bin/sh stand-in for a device or cluster tool
    (nvidia-smi, hl-smi, nsys, sbatch, ...), to put first on a subprocess's PATH. It can record
    each call (``log``; read back with ``calls``), answer particular first arguments
    (``answers``), print lines once or again and again until killed (``lines``, ``every``), and
    run a few more shell lines (``then``) for the rare stand-in that must do more.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path


class FakeClock:
    """A clock that only moves when told; records when it is synchronised."""

    def __init__(self, start: float = 0.0):
        self.now = start
        self.syncs: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sync(self) -> None:
        self.syncs.append(self.now)

    def event(self):
        """A host event read from this clock, what the step timer's ``event`` factory returns."""
        from unetbench.devices.events import HostEvent
        return HostEvent(self)


def _echo(lines: Iterable[str]) -> str:
    return "".join(f"printf '%s\\n' {shlex.quote(line)}\n" for line in lines)


def fake_tool(bin_dir: Path, name: str, lines: Iterable[str] = (), *, log: Path | None = None,
              every: float | None = None, answers: Mapping[str, Iterable[str]] | None = None,
              then: str = "") -> Path:
    """Write ``bin_dir/name``, an executable /bin/sh stand-in; return its path.

    Each call, in this order:
      log      appends one line to this file: the tool's name and its arguments, space separated
               (``calls(log, name)`` reads them back);
      answers  a call whose first argument is a key prints that key's lines and exits 0;
      then     runs these shell lines (for a stand-in that must do one more thing);
      lines    printed, once; with ``every`` (seconds), again and again until the tool is killed,
               like ``nvidia-smi -l``. Then it exits 0.
    """
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    body = ["#!/bin/sh"]
    if log is not None:
        body.append(f"printf '%s\\n' \"{name} $*\" >> {shlex.quote(str(log))}")
    for first, out in (answers or {}).items():
        body.append(f"if [ \"$1\" = {shlex.quote(first)} ]; then\n{_echo(out)}exit 0\nfi")
    if then:
        body.append(then.rstrip("\n"))
    printed = _echo(lines)
    if every is not None:
        body.append(f"while true; do\n{printed}sleep {every}\ndone")
    elif printed:
        body.append(printed.rstrip("\n"))
    path = bin_dir / name
    path.write_text("\n".join(body) + "\n")
    path.chmod(0o755)
    return path


def calls(log: Path, name: str | None = None) -> list[list[str]]:
    """The calls ``fake_tool`` stand-ins recorded in ``log``: one list of arguments per call, oldest
    first; only ``name``'s calls (without the name) when it is given, else each list starts with the tool."""
    log = Path(log)
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    if name is None:
        return rows
    return [row[1:] for row in rows if row and row[0] == name]
