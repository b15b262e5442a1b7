"""User-given values, parsed and checked once for every tool (prepare, training, benchmark, submit).

    positive_int("4", "--nodes")                  # 4, or UserError "--nodes must be a positive whole number, not '4.5'"
    crop = parse_crop("384x512")                  # (384, 512)
    check_crop_for_models(crop, "--crop")         # UserError when a registered model cannot take it

Each function raises ``UserError`` with a message that names the flag and the rule; argparse
users wrap them with :func:`argparse_type`.
"""

from __future__ import annotations

import argparse
import re
from typing import Callable, Iterable, Sequence, Tuple, Union

from .errors import UserError
from .registry import MODELS


def _whole(text, flag: str, rule: str) -> int:
    value = str(text).strip()
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise UserError(f"{flag} must be {rule}, not {str(text)!r}")
    return int(value)


def positive_int(text, flag: str = "value") -> int:
    value = _whole(text, flag, "a positive whole number")
    if value < 1:
        raise UserError(f"{flag} must be a positive whole number, not {str(text)!r}")
    return value


def non_negative_int(text, flag: str = "value") -> int:
    value = _whole(text, flag, "a whole number of 0 or more")
    if value < 0:
        raise UserError(f"{flag} must be a whole number of 0 or more, not {str(text)!r}")
    return value


def plain_name(text, flag: str = "name") -> str:
    """A name that becomes part of file names (``--run-name``): letters, digits, ``.``, ``_``,
    ``-``; no folder separators, no leading dot or dash, at most 100 characters."""
    value = str(text)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}", value) or ".." in value:
        raise UserError(f"{flag} {value!r}: use a plain name of letters, digits, '.', '_' and '-' "
                        "(it names files such as results_<name>.json; no '/', '..' or spaces)")
    return value


def parse_crop(crop: Union[str, Sequence[int]], flag: str = "--crop") -> Tuple[int, int]:
    """``"384x512"`` or ``(384, 512)`` -> (height, width), both at least 1 pixel."""
    try:
        if isinstance(crop, str):
            h, w = crop.lower().split("x")
            h, w = int(h), int(w)
        else:
            h, w = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise UserError(f"{flag} {crop!r}: expected HEIGHTxWIDTH in pixels, e.g. 384x512") from None
    if h < 1 or w < 1:
        raise UserError(f"{flag} {crop!r}: height and width must be at least 1 pixel")
    return h, w


def check_crop_for_models(crop: Tuple[int, int], what: str = "--crop",
                          models: Iterable[str] | None = None) -> None:
    """Refuse a crop a model cannot take (sides not multiples of its input multiple).

    Without ``models``: every registered model, since one prepared dataset serves them all."""
    h, w = crop
    for name in (models if models is not None else MODELS):
        m = MODELS[name].input_multiple
        if h % m or w % m:
            def near(v: int) -> str:
                if v % m == 0:
                    return str(v)
                lo, hi = v // m * m, (v // m + 1) * m
                return f"{lo} or {hi}" if lo else str(hi)
            raise UserError(f"{what} {h}x{w}: the {name} model needs both sides to be multiples of {m} "
                            f"(its encoder downsamples by {m}); use a height of {near(h)} and a width of "
                            f"{near(w)}")


def parse_names(text: str, valid, what: str, flag: str | None = None, aliases: dict | None = None) -> list[str]:
    """A comma-separated list of known names, each once: "cuda,cpu" -> ["cuda", "cpu"].
    ``what`` names one item in messages ("backend"), ``flag`` prefixes them ("--profiles: ..."),
    ``aliases`` maps other spellings (lower case) to names."""
    prefix = f"{flag}: " if flag else ""
    names: list[str] = []
    for raw in (n.strip() for n in text.split(",") if n.strip()):
        name = (aliases or {}).get(raw.lower(), raw)
        if name not in valid:
            raise UserError(f"{prefix}unknown {what} '{raw}'; valid {what}s: {' '.join(valid)}")
        if name in names:
            raise UserError(f"{prefix}{what} '{name}' given twice")
        names.append(name)
    return names


class RaisingArgumentParser(argparse.ArgumentParser):
    """For checking another tool's flags before a job is submitted: a bad flag is a UserError
    (one line, exit 2 through run_cli), not a usage message and an exit."""

    def error(self, message: str):
        raise UserError(message)


def argparse_type(check: Callable, flag: str) -> Callable[[str], object]:
    """An argparse ``type=`` that runs ``check(text, flag)`` and reports its message."""
    def parse(text: str):
        try:
            return check(text, flag)
        except UserError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse
