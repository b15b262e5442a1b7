"""Fixture generators: small datasets on disk in each supported layout, zipped or not.

Use::

    from dataset_fixtures import write_lyft, write_flat_palette, write_index, write_carla_vd, zip_folder
    root = write_lyft(tmp_path / "lyft", folders=("dataA", "dataB"), per_folder=4)
    archive = zip_folder(root, tmp_path / "lyft.zip")
    root = write_carla_vd(tmp_path / "carla", n=4)     # the seed's CARLA Vision Dataset layout

The pictures are the synthetic renderer's scenes (so labels are realistic); masks are written in
the encoding each layout uses in the wild.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from unetbench.data.prepare.classes import CARLA13
from unetbench.data.prepare.synthetic import render_scene

PALETTE13 = np.array([c for _, _, c in CARLA13], dtype=np.uint8)

# The CityScapes colours CARLA 0.9.x writes into _out_seg_city/ masks, written out here on purpose
# (not taken from unetbench) so that the tests check the code's table against the seed's.
SEED20 = [(0, 0, 142), (45, 60, 150), (70, 70, 70), (70, 130, 180), (81, 0, 81), (100, 40, 40), (102, 102, 156),
          (107, 142, 35), (110, 190, 160), (128, 64, 128), (145, 170, 100), (150, 100, 100), (153, 153, 153),
          (157, 234, 50), (170, 120, 50), (220, 20, 60), (220, 220, 0), (230, 150, 140), (244, 35, 232),
          (250, 170, 30)]
UNLABELED, OTHER, GUARDRAIL = (0, 0, 0), (55, 90, 80), (180, 165, 180)
# the synthetic renderer's CARLA 0.8 ids -> a CARLA 0.9.x CityScapes colour
_FROM13 = {0: UNLABELED, 1: (70, 70, 70), 2: (100, 40, 40), 3: OTHER, 4: (220, 20, 60), 5: (153, 153, 153),
           6: (157, 234, 50), 7: (128, 64, 128), 8: (244, 35, 232), 9: (107, 142, 35), 10: (0, 0, 142),
           11: (102, 102, 156), 12: (220, 220, 0)}


def _scene(index: int, size: Tuple[int, int]):
    h, w = size
    return render_scene(1234, index, h, w)


def write_lyft(root: Path, folders: Sequence[str] = ("dataA", "dataB"), per_folder: int = 4,
               size: Tuple[int, int] = (60, 80), nested: bool = True) -> Path:
    """lyft-udacity layout: dataX[/dataX]/CameraRGB/*.png and CameraSeg/*.png, id in the red channel."""
    root = Path(root)
    k = 0
    for folder in folders:
        base = root / folder / folder if nested else root / folder
        (base / "CameraRGB").mkdir(parents=True, exist_ok=True)
        (base / "CameraSeg").mkdir(parents=True, exist_ok=True)
        for i in range(per_folder):
            image, label = _scene(k, size)
            k += 1
            name = f"{i:02d}_00_{k:03d}.png"
            Image.fromarray(image).save(base / "CameraRGB" / name)
            mask = np.zeros(label.shape + (3,), dtype=np.uint8)
            mask[..., 0] = label
            Image.fromarray(mask).save(base / "CameraSeg" / name)
    return root


def write_flat_palette(root: Path, n: int = 6, size: Tuple[int, int] = (60, 80),
                       mask_ext: str = ".png", image_ext: str = ".jpg") -> Path:
    """images/ + masks/ with CARLA 13-tag palette colours (RGB masks), JPEG images."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label = _scene(100 + i, size)
        Image.fromarray(image).save(root / "images" / f"frame_{i:03d}{image_ext}", quality=95)
        Image.fromarray(PALETTE13[label]).save(root / "masks" / f"frame_{i:03d}{mask_ext}")
    return root


def write_index(root: Path, n: int = 6, size: Tuple[int, int] = (60, 80)) -> Path:
    """rgb/ + seg/ with single-channel index masks (mode L)."""
    root = Path(root)
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "seg").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label = _scene(200 + i, size)
        Image.fromarray(image).save(root / "rgb" / f"{i:04d}.png")
        Image.fromarray(label, mode="L").save(root / "seg" / f"{i:04d}.png")
    return root


def carla_vd_mask(index: int, size: Tuple[int, int]) -> np.ndarray:
    """A CityScapes-palette RGB mask as CARLA 0.9.x writes it: a street scene, a sky band, every one
    of the 20 colours in a stripe, black Unlabeled pixels, and Other and GuardRail patches."""
    h, w = size
    _, label = _scene(300 + index, size)
    lut = np.array([_FROM13[i] for i in range(13)], dtype=np.uint8)
    mask = lut[label]
    mask[: h // 8] = (70, 130, 180)                                 # Sky
    stripe = h - 6
    for i, colour in enumerate(SEED20):                             # all 20 classes, once each
        mask[stripe:, i * w // 20:(i + 1) * w // 20] = colour
    mask[h // 4: h // 4 + 3, (index * 7) % (w - 10):(index * 7) % (w - 10) + 10] = UNLABELED
    mask[h // 2: h // 2 + 4, 5 + index % 9: 11 + index % 9] = OTHER
    mask[2 * h // 3, :] = GUARDRAIL                                 # a rail across the frame
    return mask


def write_carla_vd(root: Path, n: int = 4, size: Tuple[int, int] = (64, 96), start: int = 0) -> Path:
    """The seed's CARLA Vision Dataset layout: _out/NNNNNN.png RGB frames, _out_seg_city/NNNNNN.png
    CityScapes-palette RGB masks (the same file names)."""
    root = Path(root)
    (root / "_out").mkdir(parents=True, exist_ok=True)
    (root / "_out_seg_city").mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        image, _ = _scene(300 + i, size)
        Image.fromarray(image).save(root / "_out" / f"{i:06d}.png")
        Image.fromarray(carla_vd_mask(i, size)).save(root / "_out_seg_city" / f"{i:06d}.png")
    return root


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip ``folder``'s content (paths relative to it), like a downloaded dataset archive."""
    folder, archive = Path(folder), Path(archive)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive
