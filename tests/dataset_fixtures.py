"""Fixture generators: small datasets on disk in each supported layout, zipped or not.

Use::

    from dataset_fixtures import write_lyft, write_flat_palette, write_index, zip_folder
    root = write_lyft(tmp_path / "lyft", folders=("dataA", "dataB"), per_folder=4)
    archive = zip_folder(root, tmp_path / "lyft.zip")

The pictures are the synthetic renderer's scenes (so labels are realistic); masks are written in
the encoding each layout uses in the wild.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from unetbench.prepare.classes import CARLA13
from unetbench.prepare.synthetic import render_scene

PALETTE13 = np.array([c for _, _, c in CARLA13], dtype=np.uint8)


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


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip ``folder``'s content (paths relative to it), like a downloaded dataset archive."""
    folder, archive = Path(folder), Path(archive)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive
