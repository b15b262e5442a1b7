"""Command line of prepare_dataset.py.

Run::

    python3 prepare_dataset.py --synthetic --num-images 40 --crop 64x96 --out data
    python3 prepare_dataset.py                                  # the default Kaggle dataset into data/
    python3 prepare_dataset.py --source-dir /scratch/carla-vd.zip --jobs 16

Every flag is described in docs/prepare.md. Flags left unset (None here) take the defaults of the
registered dataset that applies (unetbench/core/registry.py), resolved in api.prepare().
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import textwrap
from typing import Optional, Sequence

from ...core.errors import UserError
from ...core.parsing import (
    RaisingArgumentParser,
    argparse_type,
    check_crop_for_models,
    non_negative_int,
    parse_crop,
    positive_int,
)
from ...core.registry import DATASET_ALIASES, DATASETS, MODELS
from ..prepared import IGNORE_INDEX
from .api import (
    DEFAULT,
    DEFAULT_SEED,
    DEFAULT_SYNTHETIC_IMAGES,
    ignored_summary,
    prepare,
)
from .classes import BUILTIN_PALETTES, CARLA13
from .defaults import GENERIC, describe
from .encodings import ENCODINGS
from .resize import RESIZE_POLICIES
from .splits import DEFAULT_RATIOS, SPLIT_BY


def _positive(flag: str):
    return argparse_type(positive_int, flag)


def _per_dataset(value) -> str:
    """ "carla-vd 10, lyft-udacity 1, otherwise 1" for a DatasetSpec field."""
    def text(spec):
        v = value(spec)
        return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return ", ".join(f"{name} {text(spec)}" for name, spec in DATASETS.items()) + f", otherwise {text(GENERIC)}"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help lines wrapped at spaces only, so that a Kaggle slug is never cut at a hyphen."""
    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser(raising: bool = False) -> argparse.ArgumentParser:
    ratios = ",".join(f"{r:.2f}" for r in DEFAULT_RATIOS)
    multiple = math.lcm(*(m.input_multiple for m in MODELS.values()))
    registered = "\n".join(f"  {spec.name}: {spec.kaggle_slug or spec.urls[0]}{'  (default)' if spec is DEFAULT else ''}\n" + textwrap.fill(
        f"{spec.title}: {describe(spec)}", 78, initial_indent=" " * 6, subsequent_indent=" " * 6,
        break_on_hyphens=False) for spec in DATASETS.values())
    p = (RaisingArgumentParser if raising else argparse.ArgumentParser)(
        prog="prepare_dataset.py", formatter_class=_Formatter,
        description=textwrap.fill(
            "Prepare a segmentation dataset once, into packed uint8 arrays and a split file that every "
            f"backend reads (format: docs/dataset_format.md). Default source: Kaggle {DEFAULT.kaggle_slug}, "
            f"the {DEFAULT.title}, prepared with its registered defaults (below).", 78,
            break_on_hyphens=False),
        epilog=textwrap.fill("registered datasets (their defaults apply to a Kaggle download by its slug and to "
                             "a --source-dir with its layout; flags given always win):", 78) + f"\n{registered}\n"
               "other sources: the encoding is detected, 1 crop per image. Guide: docs/prepare.md")
    src = p.add_argument_group(f"source (one per run; default: Kaggle {DEFAULT.kaggle_slug})")
    src.add_argument("--synthetic", action="store_true", help="procedural CARLA-like street scenes")
    src.add_argument("--num-images", type=_positive("--num-images"), default=None, metavar="N",
                     help=f"synthetic: scenes to render (default {DEFAULT_SYNTHETIC_IMAGES}); real data: use a "
                          "random subset of N source pairs (default all)")
    src.add_argument("--source-dir", metavar="PATH", help="a local folder or .zip in any supported layout")
    src.add_argument("--kaggle-dataset", metavar="SLUG", default=None,
                     help=f"Kaggle dataset to download (default {DEFAULT.kaggle_slug}, {DEFAULT.title}; "
                          "needs Kaggle credentials, see docs/prepare.md)")
    src.add_argument("--dataset", metavar="NAME", default=None,
                     help=f"a registered dataset: {', '.join(DATASETS)} (or {', '.join(DATASET_ALIASES)}); without "
                          "--source-dir it is downloaded (Kaggle for CARLA, the official site for kvasir-seg and "
                          "oxford-pet); with it, its defaults apply whatever the folder names")
    src.add_argument("--cache-dir", metavar="DIR", default=None,
                     help="where Kaggle downloads are kept (default $UNETBENCH_CACHE or ~/.cache/unetbench)")
    lab = p.add_argument_group("labels")
    lab.add_argument("--encoding", choices=["auto", *ENCODINGS], default="auto",
                     help="how masks store class ids (default: the dataset's palette, else detect)")
    lab.add_argument("--palette", metavar="NAME|FILE",
                     help=f"{', '.join(BUILTIN_PALETTES)}, or a JSON/text file of colours (implies --encoding "
                          "palette when detecting; default: " + _per_dataset(lambda s: s.palette or "detect") + ")")
    lab.add_argument("--num-classes", type=_positive("--num-classes"), default=None, metavar="N",
                     help=f"number of classes (default: from the palette, or {len(CARLA13)} for CARLA ids)")
    lab.add_argument("--class-names", metavar="A,B,...", default=None,
                     help="comma-separated class names in id order")
    lab.add_argument("--unknown-to-ignore", action="store_true",
                     help=f"map unknown colours and ids >= the class count to {IGNORE_INDEX} (ignore) instead "
                          "of failing (a dataset's own ignored colours, e.g. Unlabeled, are always "
                          f"{IGNORE_INDEX})")
    out = p.add_argument_group("crops, splits and output")
    # --crop is parsed and checked against the models in prepare(), so the Python API gets the
    # same one-line errors.
    out.add_argument("--crop", default=None, metavar="HxW",
                     help=f"crop size, both sides multiples of {multiple} (default: "
                          + _per_dataset(lambda s: s.crop) + ")")
    out.add_argument("--crops-per-image", type=_positive("--crops-per-image"), default=None, metavar="K",
                     help="random crops per source image (default: " + _per_dataset(lambda s: s.crops_per_image)
                          + ")")
    out.add_argument("--seed", type=argparse_type(non_negative_int, "--seed"), default=DEFAULT_SEED,
                     help=f"seed for crops, splits and scenes (default {DEFAULT_SEED})")
    out.add_argument("--split", default=ratios, metavar="TRAIN,VAL,TEST", help=f"split ratios (default {ratios})")
    out.add_argument("--resize", choices=RESIZE_POLICIES, default=None,
                     help="how sources of different sizes meet the crop: none (crop only), cover (scale keeping "
                          "the aspect to cover the crop, then crop), stretch (scale to the crop) (default: "
                          + _per_dataset(lambda s: s.resize) + ")")
    out.add_argument("--split-by", choices=SPLIT_BY, default=None,
                     help="official: the dataset's own test list, train/val drawn from the rest (default where it "
                          "has lists: oxford-pet); image: crops of one source image stay in one split (default "
                          "otherwise); folder: whole top-level "
                          "source folders stay together; crop: every crop on its own, as the seed did (leaks "
                          "near-duplicate crops between splits: only to reproduce the seed's numbers)")
    out.add_argument("--out", default="data", metavar="DIR", help="output folder (default data/)")
    run = p.add_argument_group("running")
    run.add_argument("--skip-bad", action="store_true", help="skip bad pairs and list them instead of failing")
    run.add_argument("--jobs", type=_positive("--jobs"), default=None, metavar="J",
                     help="worker processes (default: all cores this process may use)")
    run.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    run.add_argument("--quiet", action="store_true", help="only warnings and errors")
    return p


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)

    class _Plain(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            msg = record.getMessage()
            return f"warning: {msg}" if record.levelno >= logging.WARNING else msg

    handler.setFormatter(_Plain())
    root = logging.getLogger("unetbench")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def check_args(argv: Sequence[str]) -> None:
    """What run_benchmark.sh asks before anything runs: would these flags be refused?"""
    args = build_parser(raising=True).parse_args(list(argv))
    if args.crop is not None:
        check_crop_for_models(parse_crop(args.crop, "--crop"), "--crop")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.quiet)
    names = None
    if args.class_names:
        names = [n.strip() for n in args.class_names.split(",")]
        if any(not n for n in names):
            raise UserError(f"--class-names {args.class_names!r}: empty name in the list")
    result = prepare(
        args.out, synthetic=args.synthetic, num_images=args.num_images, source_dir=args.source_dir,
        kaggle_dataset=args.kaggle_dataset, cache_dir=args.cache_dir, crop=args.crop,
        crops_per_image=args.crops_per_image, seed=args.seed, ratios=args.split, split_by=args.split_by,
        dataset=args.dataset, resize=args.resize,
        encoding=args.encoding, palette=args.palette, num_classes=args.num_classes, class_names=names,
        unknown_to_ignore=args.unknown_to_ignore, skip_bad=args.skip_bad, jobs=args.jobs, force=args.force,
        progress=not args.quiet)
    if result.up_to_date:
        print(f"{result.out} is up to date; nothing to do (--force rebuilds)")
    else:
        meta = result.metadata
        splits, crop = meta["splits"], meta["crop"]
        print(f"dataset ready in {result.out}: " + ", ".join(f"{s} {splits[s]['count']}" for s in splits)
              + f" crops of {crop['height']}x{crop['width']}, {meta['num_classes']} classes; "
              + f"{ignored_summary(meta)}; split file {result.splits_file}")
    return 0
