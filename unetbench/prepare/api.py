"""The Python entry point of dataset preparation.

Use::

    from unetbench.prepare.api import prepare, prepare_synthetic
    result = prepare_synthetic("/tmp/data", num_images=40, crop=(64, 96))    # tiny, for tests
    result = prepare("data", source_dir="/scratch/lyft.zip", split_by="folder", jobs=16)
    result.metadata["splits"]["train"]["count"]

``prepare`` is what ``python3 prepare_dataset.py`` runs; it raises ``UserError`` for every
failure the user can fix. The written format is docs/dataset_format.md.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_write_json
from ..errors import UserError
from .classes import CARLA13, classes_json
from .fingerprint import fingerprint, is_up_to_date
from .pipeline import Job, Task, run_tasks
from .progress import Progress
from .splits import SPLITS, parse_ratios, split_items
from .writer import Staging, create_array, explain_write_error, finish_file, shrink_rows

log = logging.getLogger("unetbench.prepare")

FORMAT = "unetbench-dataset"
FORMAT_VERSION = 1
DEFAULT_KAGGLE_DATASET = "kumaresanmanickavelu/lyft-udacity-challenge"
DEFAULT_SYNTHETIC_IMAGES = 1000
IGNORE_INDEX = 255


@dataclass
class PrepareResult:
    out: Path                 # the dataset folder
    splits_file: Path         # out / "dataset_splits.json"
    metadata: dict            # its content
    up_to_date: bool          # True when nothing was written: same fingerprint, no force


@dataclass
class Plan:
    """What to prepare, resolved from the source before any array is written."""
    source: dict                          # the split file's "source" object (skipped filled later)
    items: list                           # synthetic indices or layouts.Pair
    groups: List[str]                     # folder of each item (for --split-by folder)
    encoding: dict
    classes: list                         # [(id, name, (r, g, b))]
    ignore_index: Optional[int]
    files: list = field(default_factory=list)      # (rel, size, mtime_ns) for the fingerprint
    skipped: list = field(default_factory=list)    # found before decoding (unpaired files)
    reader: object = None
    decoder: object = None
    settings: dict = field(default_factory=dict)   # source-specific settings for the fingerprint


def parse_crop(crop: Union[str, Sequence[int]]) -> Tuple[int, int]:
    """``"384x512"`` or ``(384, 512)`` -> (height, width)."""
    try:
        if isinstance(crop, str):
            h, w = crop.lower().split("x")
            h, w = int(h), int(w)
        else:
            h, w = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise UserError(f"--crop {crop!r}: expected HEIGHTxWIDTH in pixels, e.g. 384x512") from None
    if h < 1 or w < 1:
        raise UserError(f"--crop {crop!r}: height and width must be at least 1 pixel")
    return h, w


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # honours Slurm's CPU binding
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def prepare(out: Union[str, os.PathLike] = "data", *,
            synthetic: bool = False,
            num_images: Optional[int] = None,
            source_dir: Union[str, os.PathLike, None] = None,
            kaggle_dataset: Optional[str] = None,
            cache_dir: Union[str, os.PathLike, None] = None,
            crop: Union[str, Sequence[int]] = (384, 512),
            crops_per_image: int = 1,
            seed: int = 42,
            ratios: Union[str, Sequence[float]] = (0.7, 0.15, 0.15),
            split_by: str = "image",
            encoding: str = "auto",
            palette: Optional[str] = None,
            num_classes: Optional[int] = None,
            class_names: Optional[Sequence[str]] = None,
            unknown_to_ignore: bool = False,
            skip_bad: bool = False,
            jobs: Optional[int] = None,
            force: bool = False,
            progress: bool = True) -> PrepareResult:
    """Prepare a dataset into ``out``; see docs/prepare.md for every option.

    Exactly one source: ``synthetic=True``, ``source_dir`` (a folder or a .zip), or Kaggle
    (``kaggle_dataset``, the default when neither of the others is given).
    """
    out = Path(out)
    crop_hw = parse_crop(crop)
    ratio3 = parse_ratios(ratios)
    if int(crops_per_image) < 1:
        raise UserError(f"--crops-per-image {crops_per_image}: must be at least 1")
    if num_images is not None and int(num_images) < 1:
        raise UserError(f"--num-images {num_images}: must be at least 1")
    if split_by not in ("image", "folder"):
        raise UserError(f"--split-by {split_by!r}: choose image or folder")
    jobs = default_jobs() if not jobs else int(jobs)
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    if sum(bool(x) for x in (synthetic, source_dir, kaggle_dataset)) > 1:
        raise UserError("choose one source: --synthetic, --source-dir or --kaggle-dataset")

    if synthetic:
        if int(crops_per_image) != 1:
            log.warning("--crops-per-image is ignored with --synthetic: scenes are rendered at the crop size")
        crops_per_image = 1
        plan = _plan_synthetic(int(num_images or DEFAULT_SYNTHETIC_IMAGES), encoding, palette,
                               num_classes, class_names)
    else:
        from .plan_files import plan_files  # imports PIL-heavy modules only when needed
        plan = plan_files(source_dir=source_dir, kaggle_dataset=kaggle_dataset or DEFAULT_KAGGLE_DATASET,
                          cache_dir=cache_dir, num_images=num_images, seed=seed, encoding=encoding,
                          palette=palette, num_classes=num_classes, class_names=class_names,
                          unknown_to_ignore=unknown_to_ignore, skip_bad=skip_bad)

    settings = {"crop": crop_hw, "crops_per_image": int(crops_per_image), "seed": int(seed),
                "ratios": ratio3, "split_by": split_by, "num_images": num_images,
                "encoding": plan.encoding, "classes": plan.classes, "ignore_index": plan.ignore_index,
                "skip_bad": bool(skip_bad), **plan.settings}
    fp = fingerprint(settings, plan.files)
    splits_file = out / "dataset_splits.json"
    if not force and is_up_to_date(out, fp):
        log.info("%s is up to date (same sources and settings); nothing to do (use --force to rebuild)", out)
        import json
        return PrepareResult(out, splits_file, json.loads(splits_file.read_text()), True)
    _check_out_folder(out)

    assignment = split_items(len(plan.items), plan.groups, ratio3, seed, split_by)
    k = int(crops_per_image)
    h, w = crop_hw
    rows = {s: len(assignment[s]) * k for s in SPLITS}
    _check_free_space(out, sum(rows.values()) * h * w * 4)

    with Staging(out) as stage:
        arrays = {}
        for s in SPLITS:
            img_path, lab_path = stage.path / f"{s}_images.npy", stage.path / f"{s}_labels.npy"
            create_array(img_path, (rows[s], h, w, 3))
            create_array(lab_path, (rows[s], h, w))
            arrays[s] = (str(img_path), str(lab_path))
        job = Job(arrays=arrays, crop=crop_hw, crops_per_image=k, seed=int(seed), synthetic=synthetic,
                  source=plan.reader, decoder=plan.decoder)
        tasks = [Task(s, rank * k, plan.items[i]) for s in SPLITS for rank, i in enumerate(assignment[s])]
        log.info("preparing %d source %s into %d crops of %dx%d with %d job(s)", len(tasks),
                 "scenes" if synthetic else "pairs", sum(rows.values()), h, w, jobs)
        per_split = _collect(job, tasks, jobs, skip_bad, progress, plan)
        splits_meta = {}
        for s in SPLITS:
            splits_meta[s] = _finish_split(stage.path, s, per_split[s], rows[s], k, h, w, plan)
        skipped = plan.skipped + [r for s in SPLITS for r in per_split[s]["skipped"]]
        source = dict(plan.source)
        source["pairs_used"] = len(plan.items) - sum(len(per_split[s]["skipped"]) for s in SPLITS)
        source["pairs_skipped"] = len(skipped)
        source["skipped"] = skipped
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": fp,
            "source": source,
            "encoding": plan.encoding,
            "num_classes": len(plan.classes),
            "classes": classes_json(plan.classes),
            "ignore_index": plan.ignore_index,
            "crop": {"height": h, "width": w},
            "crops_per_image": k,
            "seed": int(seed),
            "split_by": split_by,
            "ratios": dict(zip(SPLITS, ratio3)),
            "splits": splits_meta,
        }
        atomic_write_json(stage.path / "dataset_splits.json", metadata)
        _make_readable(stage.path / "dataset_splits.json")
        stage.publish()
    counts = ", ".join(f"{s} {splits_meta[s]['count']}" for s in SPLITS)
    log.info("wrote %s: %s crops; %d pair(s) skipped", out, counts, len(skipped))
    return PrepareResult(out, splits_file, metadata, False)


def prepare_synthetic(out: Union[str, os.PathLike], num_images: int = 40,
                      crop: Union[str, Sequence[int]] = (64, 96), seed: int = 42, jobs: int = 1,
                      force: bool = True, **kwargs) -> PrepareResult:
    """A small synthetic dataset for tests and demos (defaults: 40 scenes of 64x96, one job)."""
    return prepare(out, synthetic=True, num_images=num_images, crop=crop, seed=seed, jobs=jobs,
                   force=force, progress=kwargs.pop("progress", False), **kwargs)


def _plan_synthetic(n: int, encoding: str, palette, num_classes, class_names) -> Plan:
    if palette or (encoding not in (None, "auto", "index")) or class_names:
        log.warning("--encoding/--palette/--class-names do not apply to --synthetic; ignored")
    if num_classes not in (None, len(CARLA13)):
        raise UserError(f"--num-classes {num_classes}: the synthetic set has {len(CARLA13)} CARLA classes")
    source = {"kind": "synthetic", "location": "synthetic", "files_found": n}
    return Plan(source=source, items=list(range(n)), groups=[f"{i:06d}" for i in range(n)],
                encoding={"kind": "index", "detected": False}, classes=list(CARLA13), ignore_index=None,
                settings={"source": "synthetic", "n": n})


def _collect(job: Job, tasks: List[Task], jobs: int, skip_bad: bool, progress: bool, plan: Plan) -> dict:
    per_split = {s: {"results": [], "skipped": []} for s in SPLITS}
    with Progress(len(tasks), "images", enabled=progress) as bar:
        for result in run_tasks(job, tasks, jobs):
            task = result["task"]
            if result["error"] is not None:
                item = task.item
                entry = {"image": getattr(item, "image", str(item)), "mask": getattr(item, "mask", str(item)),
                         "reason": result["error"]}
                if not skip_bad:
                    raise UserError(f"{result['error']}\n  fix the file, remove the pair, or pass --skip-bad "
                                    "to skip bad pairs and list them in dataset_splits.json")
                log.warning("skipping a pair: %s", entry["reason"])
                per_split[task.split]["skipped"].append(entry)
            per_split[task.split]["results"].append(result)
            bar.update(1)
    return per_split


def _finish_split(folder: Path, split: str, collected: dict, rows: int, k: int, h: int, w: int,
                  plan: Plan) -> dict:
    img_path, lab_path = folder / f"{split}_images.npy", folder / f"{split}_labels.npy"
    samples: list = []
    counts = np.zeros(256, dtype=np.int64)
    good = [r for r in collected["results"] if r["error"] is None]
    if len(good) * k != rows:
        # --skip-bad dropped pairs: move the good rows down over the holes, then cut the files
        images, labels = np.load(img_path, mmap_mode="r+"), np.load(lab_path, mmap_mode="r+")
        dst = 0
        for r in good:
            src = r["task"].first_row
            if src != dst:
                images[dst:dst + k] = images[src:src + k]
                labels[dst:dst + k] = labels[src:src + k]
            dst += k
        images.flush()
        labels.flush()
        del images, labels
        try:
            shrink_rows(img_path, dst)
            shrink_rows(lab_path, dst)
        except OSError as err:
            raise explain_write_error(err, img_path) from None
        rows = dst
    for r in good:
        samples.extend(r["samples"])
        counts += r["counts"]
    try:
        img_sha, lab_sha = finish_file(img_path), finish_file(lab_path)
    except OSError as err:
        raise explain_write_error(err, img_path) from None
    n_classes = len(plan.classes)
    return {
        "count": rows,
        "images": {"file": img_path.name, "sha256": img_sha, "shape": [rows, h, w, 3], "dtype": "uint8"},
        "labels": {"file": lab_path.name, "sha256": lab_sha, "shape": [rows, h, w], "dtype": "uint8"},
        "samples": samples,
        "class_pixel_counts": [int(c) for c in counts[:n_classes]],
    }


def _make_readable(path: Path) -> None:
    """The atomic writer's temp file is 0600; a dataset is shared, so apply the usual umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _check_out_folder(out: Path) -> None:
    """Refuse to replace a folder that is not a prepared dataset (it would be deleted)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder; choose another path")
    if out.is_dir() and not (out / "dataset_splits.json").exists():
        try:
            entries = [p.name for p in out.iterdir()]
        except OSError as err:
            raise UserError(f"--out {out}: cannot list it ({err.strerror}); choose a readable folder") from None
        if entries:
            raise UserError(f"--out {out}: holds other files ({', '.join(sorted(entries)[:3])}...) and no "
                            "dataset_splits.json; it would be replaced, so choose an empty or new folder")


def _check_free_space(out: Path, needed: int) -> None:
    probe = out.parent if not out.exists() else out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if needed > free:
        raise UserError(f"not enough space for {out}: the arrays need {needed / 2**30:.2f} GiB and "
                        f"{probe} has {free / 2**30:.2f} GiB free; free space, choose another --out, "
                        "or use a smaller --crop / --num-images")
