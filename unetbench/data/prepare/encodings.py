"""Mask label encodings: class id in the red channel, single-channel index, or RGB palette.

Use::

    kind, table, why = detect_encoding([("a.png", mask_array), ...], palette=None)
    decoder = MaskDecoder.build(kind, num_classes=13, table=table, unknown_to_ignore=False,
                                ignored_colours=[(0, 0, 0)], palette_name="carla20")
    labels = decoder.decode(mask, "dataA/CameraSeg/a.png")   # uint8 (H, W); raises PairError

Detection looks at a few masks: all-grey or single-channel -> index; RGB whose green and blue are
zero -> red_channel (CARLA's raw output); RGB whose colours all belong to a palette -> palette
(the first built-in CARLA palette that covers them, or ``--palette``). A palette decoder labels
``ignored_colours`` (a dataset's, from unetbench/core/registry.py) IGNORE_INDEX; any other colour not
in the table is an error naming the file and the colour, unless ``unknown_to_ignore``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ...core.errors import UserError
from ..prepared import IGNORE_INDEX
from .classes import BUILTIN_PALETTES, ClassEntry
from .pair_error import PairError

log = logging.getLogger(__name__)

ENCODINGS = ("red_channel", "index", "palette", "threshold", "trimap")
# Encodings of one dataset each, with their fixed classes (the registry entry names them):
# threshold: a grey mask (Kvasir-SEG's noisy JPEGs), foreground where it is at least THRESHOLD;
# trimap: Oxford-IIIT Pet's 1 pet, 2 background, 3 border -> class ids 1, 0, 2.
FIXED_CLASSES = {"threshold": 2, "trimap": 3}
THRESHOLD = 128
TRIMAP_IDS = np.full(256, IGNORE_INDEX, dtype=np.uint8)
TRIMAP_IDS[[1, 2, 3]] = [1, 0, 2]


def pack_rgb(arr: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) int32 keys r<<16 | g<<8 | b."""
    a = arr.astype(np.int32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def load_palette(spec: str) -> List[ClassEntry]:
    """A built-in name (``carla13``, ``carla20``, ...) or a file: JSON (a classes list, or an object with
    "classes", e.g. a dataset_splits.json) or text lines ``R G B [name]`` (ids in line order)."""
    if spec.lower() in BUILTIN_PALETTES:
        return BUILTIN_PALETTES[spec.lower()]
    path = Path(spec).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"--palette {spec}: not a built-in palette ({', '.join(BUILTIN_PALETTES)}) and "
                        f"not a readable file ({err.strerror})") from None
    try:
        if text.lstrip().startswith(("[", "{")):
            data = json.loads(text)
            entries = data["classes"] if isinstance(data, dict) else data
            table = [(int(e["id"]), str(e.get("name", f"class_{e['id']}")),
                      tuple(int(v) for v in e["color"])) for e in entries]
        else:
            table = []
            for line in text.splitlines():
                line = line.split("#", 1)[0].replace(",", " ").split()
                if not line:
                    continue
                rgb = tuple(int(v) for v in line[:3])
                table.append((len(table), " ".join(line[3:]) or f"class_{len(table)}", rgb))
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise UserError(f"--palette {spec}: cannot parse it ({err}); expected JSON "
                        '[{"id": 0, "name": "road", "color": [r, g, b]}, ...] or lines "R G B name"') from None
    table.sort()
    if [e[0] for e in table] != list(range(len(table))) or not table:
        raise UserError(f"--palette {spec}: ids must be 0..N-1 without gaps")
    if any(len(e[2]) != 3 or not all(0 <= v <= 255 for v in e[2]) for e in table):
        raise UserError(f"--palette {spec}: every colour needs three values 0..255")
    if len({e[2] for e in table}) != len(table):
        raise UserError(f"--palette {spec}: two classes share a colour")
    return table


def detect_encoding(samples: Sequence[Tuple[str, np.ndarray]], palette: Optional[str] = None
                    ) -> Tuple[str, Optional[List[ClassEntry]], str]:
    """-> (kind, palette table or None, a sentence saying why)."""
    if not samples:
        raise UserError("cannot detect the mask encoding: no readable mask; pass --encoding")
    if all(arr.ndim == 2 for _, arr in samples):
        return "index", None, "masks are single-channel images"
    colours = np.unique(np.concatenate([pack_rgb(_as_rgb(arr)[::3, ::3]).ravel() for _, arr in samples]))
    r, g, b = colours >> 16, (colours >> 8) & 255, colours & 255
    if palette is not None:
        return "palette", load_palette(palette), f"--palette {palette} given"
    if (g == 0).all() and (b == 0).all():
        return "red_channel", None, "masks are RGB with green and blue zero (CARLA raw: class id in red)"
    if (r == g).all() and (g == b).all():
        return "index", None, "masks are grey RGB (the same id in every channel)"
    for name, table in BUILTIN_PALETTES.items():
        keys = pack_rgb(np.array([c for _, _, c in table], dtype=np.uint8))
        if np.isin(colours, keys).all():
            return "palette", table, f"all {len(colours)} mask colours are in the built-in {name} palette"
    if r.max() < 32:
        return "red_channel", None, "red values are all small class ids (other channels ignored)"
    shown = ", ".join(f"({c >> 16},{(c >> 8) & 255},{c & 255})" for c in colours[:6])
    raise UserError(f"cannot detect the mask encoding of {samples[0][0]}: colours {shown} are not in the "
                    "CARLA palettes; pass --palette FILE with your colours, or --encoding")


def _as_rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr[..., :3]


@dataclass(frozen=True)
class MaskDecoder:
    kind: str
    num_classes: int
    unknown_to_ignore: bool
    keys: Optional[np.ndarray] = None      # palette: sorted packed colours (the table's and the ignored ones)
    ids: Optional[np.ndarray] = None       # palette: class id of each key (IGNORE_INDEX for ignored colours)
    ignored: Optional[np.ndarray] = None   # palette: True where the key is an ignored colour
    palette_name: str = "the palette"      # for messages

    @classmethod
    def build(cls, kind: str, num_classes: int, table: Optional[List[ClassEntry]] = None,
              unknown_to_ignore: bool = False, ignored_colours: Sequence[Tuple[int, int, int]] = (),
              palette_name: Optional[str] = None) -> "MaskDecoder":
        if kind not in ENCODINGS:
            raise UserError(f"--encoding {kind!r}: choose one of {', '.join(ENCODINGS)}")
        if not 1 <= num_classes <= IGNORE_INDEX:
            raise UserError(f"--num-classes {num_classes}: must be 1..{IGNORE_INDEX} (labels are uint8, "
                            f"{IGNORE_INDEX} is ignore)")
        if kind in FIXED_CLASSES and num_classes != FIXED_CLASSES[kind]:
            raise UserError(f"--encoding {kind} has {FIXED_CLASSES[kind]} classes, not --num-classes {num_classes}")
        if kind != "palette":
            return cls(kind, num_classes, unknown_to_ignore)
        if not table:
            raise UserError(f"--encoding palette needs a palette: --palette {'|'.join(BUILTIN_PALETTES)}|FILE")
        colours = [tuple(c) for _, _, c in table]
        clash = [c for c in ignored_colours if tuple(c) in colours]
        if clash:
            raise UserError(f"colour {clash[0]} is both a class of {palette_name or 'the palette'} and an ignored "
                            "colour; fix the dataset entry in unetbench/core/registry.py")
        ignored = list(dict.fromkeys(tuple(c) for c in ignored_colours))
        keys = pack_rgb(np.array(colours + ignored, dtype=np.uint8).reshape(-1, 3))
        ids = np.array([e[0] for e in table] + [IGNORE_INDEX] * len(ignored), dtype=np.int64)
        is_ignored = np.array([False] * len(colours) + [True] * len(ignored))
        order = np.argsort(keys)
        return cls(kind, num_classes, unknown_to_ignore, keys[order], ids[order], is_ignored[order],
                   f"the palette {palette_name}" if palette_name else "the palette")

    def mask_channels(self) -> str:
        """How the decoder wants the mask loaded: "rgb" or "single"."""
        if self.kind == "threshold":
            return "grey"
        return "rgb" if self.kind in ("palette", "red_channel") else "single"

    def decode(self, mask: np.ndarray, name: str) -> np.ndarray:
        """Mask -> uint8 class ids; unknown values raise PairError (or become IGNORE_INDEX)."""
        if self.kind == "palette":
            keys = pack_rgb(_as_rgb(mask))
            pos = np.searchsorted(self.keys, keys)
            pos = np.minimum(pos, len(self.keys) - 1)
            known = self.keys[pos] == keys
            ids = self.ids[pos]
            bad = ~known | ((ids >= self.num_classes) & ~self.ignored[pos])
            if bad.any():
                if not self.unknown_to_ignore:
                    values = np.unique(keys[bad])
                    shown = ", ".join(f"({v >> 16},{(v >> 8) & 255},{v & 255})" for v in values[:5])
                    also = " (nor among its ignored colours)" if self.ignored.any() else ""
                    raise PairError(f"{name}: {len(values)} colour(s) not in {self.palette_name}{also}, first "
                                    f"{shown}; pass the right --palette, or --unknown-to-ignore to label them "
                                    f"{IGNORE_INDEX} (ignored)")
                ids = np.where(bad, IGNORE_INDEX, ids)
            return ids.astype(np.uint8)
        if self.kind == "threshold":
            return (mask >= THRESHOLD).astype(np.uint8)
        if self.kind == "trimap":
            return self._trimap(mask, name)
        values = mask[..., 0] if mask.ndim == 3 else mask
        bad = values >= self.num_classes
        if bad.any():
            if not self.unknown_to_ignore:
                shown = ", ".join(str(int(v)) for v in np.unique(values[bad])[:5])
                raise PairError(f"{name}: class id(s) {shown} at or above the class count {self.num_classes}; "
                                f"set --num-classes, or pass --unknown-to-ignore to label them {IGNORE_INDEX} "
                                "(ignored)")
            values = np.where(bad, IGNORE_INDEX, values)
        return np.ascontiguousarray(values, dtype=np.uint8)

    def _trimap(self, mask: np.ndarray, name: str) -> np.ndarray:
        values = mask[..., 0] if mask.ndim == 3 else mask
        bad = (values < 1) | (values > 3)
        if bad.any() and not self.unknown_to_ignore:
            shown = ", ".join(str(int(v)) for v in np.unique(values[bad])[:5])
            raise PairError(f"{name}: trimap value(s) {shown} outside 1-3 (1 pet, 2 background, 3 border): not an "
                            "Oxford-IIIT Pet trimap, or damaged; re-extract annotations.tar.gz, pass --skip-bad to "
                            f"skip the pair, or --unknown-to-ignore to label those pixels {IGNORE_INDEX}")
        return TRIMAP_IDS[np.clip(values, 0, 255).astype(np.uint8)]
