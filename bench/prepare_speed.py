"""Time dataset preparation on generated 800x600 PNG pairs in the lyft layout; prints images/s.

Run::

    python3 bench/prepare_speed.py                          # 500 pairs, all cores
    python3 bench/prepare_speed.py --pairs 5000 --jobs 16   # the goal: under 60 s on 16 cores

The PNG pairs (dataA..dataE/CameraRGB + CameraSeg, class id in the red channel, like the Kaggle
set) are generated once into --workdir and reused; only ``prepare()`` is timed (listing, pairing,
encoding detection, decode, crop, write, fsync and sha256 of the arrays), with a cold output
folder each run. Page cache is warm for the PNGs after generation, as on a second run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from unetbench.core.errors import run_cli  # noqa: E402
from unetbench.data.prepare.api import default_jobs, prepare  # noqa: E402
from unetbench.core.registry import DATASETS  # noqa: E402
from unetbench.data.prepare.synthetic import render_scene  # noqa: E402
from unetbench.core.parsing import argparse_type, check_crop_for_models, parse_crop, positive_int  # noqa: E402

FOLDERS = ("dataA", "dataB", "dataC", "dataD", "dataE")
# The generated pairs are in the Lyft/Udacity layout, so that dataset's defaults apply.
LYFT = DATASETS["lyft-udacity"]


def _write_pair(args):
    root, index = args
    folder = FOLDERS[index % len(FOLDERS)]
    name = f"{index:06d}.png"
    image, label = render_scene(99, index, 600, 800)
    mask = np.zeros(label.shape + (3,), dtype=np.uint8)
    mask[..., 0] = label
    Image.fromarray(image).save(Path(root) / folder / "CameraRGB" / name, compress_level=6)
    Image.fromarray(mask).save(Path(root) / folder / "CameraSeg" / name, compress_level=6)


def generate(root: Path, pairs: int, jobs: int) -> None:
    marker = root / f".complete-{pairs}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    for folder in FOLDERS:
        (root / folder / "CameraRGB").mkdir(parents=True)
        (root / folder / "CameraSeg").mkdir(parents=True)
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        pool.map(_write_pair, [(str(root), i) for i in range(pairs)], chunksize=8)
    marker.touch()
    print(f"generated {pairs} 800x600 PNG pairs in {time.perf_counter() - start:.1f} s", flush=True)


def crop_for_models(text: str, flag: str) -> tuple:
    """--crop, refused at once when a model cannot take it (not after generating the pairs)."""
    crop = parse_crop(text, flag)
    check_crop_for_models(crop, flag)
    return crop


def count(flag: str):
    return argparse_type(positive_int, flag)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=count("--pairs"), default=500, help="source pairs (default 500)")
    p.add_argument("--jobs", type=count("--jobs"), default=default_jobs(), help="worker processes (default all cores)")
    p.add_argument("--crop", type=argparse_type(crop_for_models, "--crop"), default=LYFT.crop,
                   help="HxW (default %s)" % "x".join(map(str, LYFT.crop)))
    p.add_argument("--crops-per-image", type=count("--crops-per-image"), default=LYFT.crops_per_image)
    p.add_argument("--repeats", type=count("--repeats"), default=2, help="timed runs; the best is reported")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "unetbench-prepare-bench"))
    args = p.parse_args(argv)

    work = Path(args.workdir)
    generate(work / "lyft", args.pairs, args.jobs)
    times = []
    for _ in range(args.repeats):
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        prepare(out, source_dir=work / "lyft", crop=args.crop, crops_per_image=args.crops_per_image,
                jobs=args.jobs, force=True, progress=False)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"prepared {args.pairs} pairs ({args.pairs * args.crops_per_image} crops of {args.crop[0]}x{args.crop[1]}) "
          f"with {args.jobs} job(s): best {best:.2f} s of {len(times)}, {args.pairs / best:.1f} images/s")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores visible, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {Image.__version__}")
    print(f"5000 images would take about {5000 / (args.pairs / best):.0f} s at this rate")
    return 0


if __name__ == "__main__":
    run_cli(main)   # a UserError from prepare() (full disk...): one error line, no traceback
