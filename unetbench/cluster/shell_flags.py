"""A small flag reader for the two shell-facing tools (run_benchmark.sh, verify_enhanced.sh).

    parser = FlagReader("./verify_enhanced.sh", "see --help")
    parser.value("--data", "data"); parser.switch("--full", "full")
    values, rest = parser.read(["--data=/x", "--full"])     # {"data": "/x", "full": True}, []

Why not argparse: these tools keep the messages their users and tests know ("--nodes needs a
value", "unknown option '--x' (...)"), take ``--flag=value`` and ``--flag value`` alike,
collect some flags in order into lists passed on to other tools, and hand everything after
``--`` through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..core.errors import UserError


class HelpRequested(Exception):
    """-h or --help was given."""


@dataclass(frozen=True)
class _Flag:
    takes_value: bool
    dest: str
    collect: bool       # append "--flag [value]" to the list ``dest`` instead of storing the value


class FlagReader:
    def __init__(self, prog: str, unknown_hint: str):
        self.prog = prog
        self.unknown_hint = unknown_hint
        self.flags: dict[str, _Flag] = {}

    def value(self, name: str, dest: str, collect: bool = False) -> None:
        self.flags[name] = _Flag(True, dest, collect)

    def switch(self, name: str, dest: str, collect: bool = False) -> None:
        self.flags[name] = _Flag(False, dest, collect)

    def read(self, argv: Sequence[str], rest_dest: Optional[str] = None) -> tuple[dict, list]:
        """-> (values by dest: str for values, True for switches, lists for collected flags;
        the arguments after ``--``)."""
        values: dict = {f.dest: [] for f in self.flags.values() if f.collect}
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                return values, args[i + 1:]
            if arg in ("-h", "--help"):
                raise HelpRequested()
            name, inline, value = arg.partition("=") if arg.startswith("--") else (arg, "", None)
            flag = self.flags.get(name)
            if flag is None:
                raise UserError(f"unknown option '{arg}' ({self.unknown_hint})")
            if flag.takes_value:
                if not inline:
                    value = args[i + 1] if i + 1 < len(args) else ""
                    i += 1
                if not value:
                    raise UserError(f"{name} needs a value")
                if value.startswith("--") and not inline:
                    raise UserError(f"{name} needs a value, not the option '{value}'")
            elif inline:
                raise UserError(f"{name} takes no value, got '{arg}'")
            if flag.collect:
                values[flag.dest] += [name, value] if flag.takes_value else [name]
            else:
                values[flag.dest] = value if flag.takes_value else True
            i += 1
        return values, []
