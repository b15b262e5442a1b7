"""What prepare checks about --out before it writes: that replacing the folder deletes nothing it
did not write, and that the arrays fit on its device.

    check_out_folder(Path("data"))          # UserError naming what is in the way
    check_free_space(Path("data"), nbytes)  # UserError naming the sizes, in a unit that shows them
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ...core.errors import UserError
from ..array_stamps import STAMP
from ..prepared import SPLITS_FILE


def check_out_folder(out: Path) -> None:
    """Refuse to replace a folder holding anything this tool did not write: replacing the
    dataset replaces the whole folder, so a user's notes, results or another dataset inside it
    (the documented DATA/kvasir-seg beside DATA/'s own arrays) would be deleted without a word.
    What it wrote is what the folder's split file lists (its manifest), the file itself and the
    checksum stamp."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder; choose another path")
    if not out.is_dir():
        return
    try:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    except OSError as err:
        raise UserError(f"--out {out}: cannot list it ({err.strerror}); choose a readable folder") from None
    if not entries:
        return
    if not (out / SPLITS_FILE).exists():
        raise UserError(f"--out {out}: holds other files ({_shown(entries)}) and no "
                        f"{SPLITS_FILE}; it would be replaced, so choose an empty or new folder")
    foreign = [name for name in entries if name not in _owned(out)]
    if foreign:
        raise UserError(f"--out {out}: holds {_shown(foreign)} beside the dataset, which prepare_dataset.py did not "
                        "write and would delete with the old dataset; move them out of the folder, or choose "
                        "another --out")


def _owned(out: Path) -> set:
    """The names a prepared dataset in ``out`` consists of, from its split file."""
    owned = {SPLITS_FILE, STAMP}
    try:
        meta = json.loads((out / SPLITS_FILE).read_text())
        owned |= {entry[kind]["file"] for entry in meta["splits"].values() for kind in ("images", "labels")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass   # a damaged split file: only it is known to be ours
    return owned


def _shown(names: list, limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_free_space(out: Path, needed: int) -> None:
    probe = out.parent if not out.exists() else out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if needed > free:
        raise UserError(f"not enough space for {out}: the arrays need {_size(needed)} and "
                        f"{probe} has {_size(free)} free; free space, choose another --out, "
                        "or use a smaller --crop / --num-images")


def _size(n: int) -> str:
    """Bytes in the unit that shows them (a tiny dataset on a full disk: "needs 1.2 MiB, has 40 KiB")."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} bytes"
