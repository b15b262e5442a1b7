"""The Python entry point of dataset preparation.

Use::

    from unetbench.data.prepare.api import prepare, prepare_synthetic
    result = prepare_synthetic("/tmp/data", num_images=40, crop=(64, 96))    # tiny, for tests
    result = prepare("data", source_dir="/scratch/lyft.zip", split_by="folder", jobs=16)
    result.metadata["splits"]["train"]["count"]

``prepare`` is what ``python3 prepare_dataset.py`` runs; it raises ``UserError`` for every
failure the user can fix. Settings left at None (crop, crops per image, palette...) take the
defaults of the registered dataset that applies (prepare/defaults.py), else the generic ones;
the log says which came from where. The written format is docs/dataset_format.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from ...core.atomic import atomic_write_json
from ...core.errors import UserError
from ...core.output_lock import output_lock
from ...core.parsing import (
    check_crop_for_models,
    non_negative_int,
    parse_crop,
    positive_int,
)
from ...core.progress_bar import PREPARE_LINE, Progress
from ...core.registry import DATASETS, DEFAULT_DATASET
from ..prepared import FORMAT, FORMAT_VERSION, IGNORE_INDEX, SPLITS, SPLITS_FILE
from .classes import classes_json
from .defaults import GENERIC, spec_for_name
from .fingerprint import fingerprint, is_up_to_date
from .out_folder import check_free_space, check_out_folder
from .pipeline import Job, Task, run_tasks
from .plan import Plan
from .resize import RESIZE_POLICIES, describe_resize
from .splits import (
    DEFAULT_RATIOS,
    SPLIT_BY,
    assign_crops,
    parse_ratios,
    refuse_empty_splits,
)
from .synthetic import SYNTHETIC_CLASSES
from .writer import Staging, create_array, explain_write_error, finish_file, shrink_rows

log = logging.getLogger("unetbench.data.prepare")

DEFAULT = DATASETS[DEFAULT_DATASET]      # the Kaggle download when no source is given, and its defaults
DEFAULT_SYNTHETIC_IMAGES = 1000
DEFAULT_SEED = 42


@dataclass
class PrepareResult:
    out: Path                 # the dataset folder
    splits_file: Path         # out / SPLITS_FILE
    metadata: dict            # its content
    up_to_date: bool          # True when nothing was written: same fingerprint, no force


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # honours Slurm's CPU binding
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def prepare(out: Union[str, os.PathLike] = "data", **options) -> PrepareResult:
    """Prepare a dataset into ``out`` (keywords: :func:`prepare_unlocked`'s), as its only writer:
    a second prepare into the same folder meanwhile is refused (core/output_lock.py), so two runs
    never both report success while one replaced the other's dataset."""
    with output_lock(Path(out), "prepare_dataset.py", "--out"):
        return prepare_unlocked(out, **options)


def prepare_unlocked(out: Union[str, os.PathLike] = "data", *,
            synthetic: bool = False,
            num_images: Optional[int] = None,
            source_dir: Union[str, os.PathLike, None] = None,
            kaggle_dataset: Optional[str] = None,
            cache_dir: Union[str, os.PathLike, None] = None,
            crop: Union[str, Sequence[int], None] = None,
            crops_per_image: Optional[int] = None,
            seed: int = DEFAULT_SEED,
            ratios: Union[str, Sequence[float]] = DEFAULT_RATIOS,
            split_by: Optional[str] = None,
            dataset: Optional[str] = None,
            resize: Optional[str] = None,
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
    (``kaggle_dataset``, the default dataset's slug when neither of the others is given).
    ``crop`` and ``crops_per_image`` None: the applying dataset entry's (unetbench/core/registry.py).
    """
    out = Path(out)
    # Every setting given is checked here, before any listing, download or write: a mistake costs
    # nothing and an earlier dataset in ``out`` stays as it was. (Defaults come from the registry,
    # whose entries tests/data/test_prepare_carla_vd.py checks the same way.)
    crop_hw = None
    if crop is not None:
        crop_hw = parse_crop(crop, "--crop")
        check_crop_for_models(crop_hw, "--crop")   # one dataset serves every registered model
    ratio3 = parse_ratios(ratios)
    k = positive_int(crops_per_image, "--crops-per-image") if crops_per_image is not None else None
    seed = non_negative_int(seed, "--seed")
    if num_images is not None:
        num_images = positive_int(num_images, "--num-images")
    if split_by is not None and split_by not in SPLIT_BY:
        raise UserError(f"--split-by {split_by!r}: choose {' or '.join(SPLIT_BY)}")
    if resize is not None and resize not in RESIZE_POLICIES:
        raise UserError(f"--resize {resize!r}: choose {' or '.join(RESIZE_POLICIES)}")
    spec = spec_for_name(dataset) if dataset else None
    if spec is not None and synthetic:
        raise UserError("--dataset names a real dataset; leave it out with --synthetic")
    jobs = positive_int(jobs, "--jobs") if jobs else default_jobs()
    if sum(bool(x) for x in (synthetic, source_dir, kaggle_dataset)) > 1:
        raise UserError("choose one source: --synthetic, --source-dir or --kaggle-dataset")

    if synthetic:
        if k not in (None, 1):
            log.warning("--crops-per-image is ignored with --synthetic: scenes are rendered at the crop size")
        k = 1
        plan = _plan_synthetic(num_images or DEFAULT_SYNTHETIC_IMAGES, encoding, palette, num_classes, class_names)
    else:
        from .plan_files import plan_files  # imports PIL-heavy modules only when needed
        slug = kaggle_dataset or (spec.kaggle_slug if spec is not None and spec.kaggle_slug else DEFAULT.kaggle_slug)
        plan = plan_files(source_dir=source_dir, kaggle_dataset=slug,
                          cache_dir=cache_dir, num_images=num_images, seed=seed, encoding=encoding,
                          palette=palette, num_classes=num_classes, class_names=class_names,
                          unknown_to_ignore=unknown_to_ignore, skip_bad=skip_bad, dataset=spec)
    crop_hw, k = _resolve_defaults(plan, crop_hw, k, synthetic)
    resize, split_by = _resolve_resize_split(plan, resize, split_by)

    settings = {"crop": crop_hw, "crops_per_image": k, "seed": seed,
                "ratios": ratio3, "split_by": split_by, "num_images": num_images,
                "encoding": plan.encoding, "classes": plan.classes, "ignore_index": plan.ignore_index,
                "skip_bad": bool(skip_bad), "resize": resize, **plan.settings}
    fp = fingerprint(settings, plan.files)
    splits_file = out / SPLITS_FILE
    if not force and is_up_to_date(out, fp):
        log.info("%s is up to date (same sources and settings); nothing to do (use --force to rebuild)", out)
        return PrepareResult(out, splits_file, json.loads(splits_file.read_text()), True)
    check_out_folder(out)

    h, w = crop_hw
    rows = {s: 0 for s in SPLITS}
    tasks = []
    for i, split, crops in assign_crops(len(plan.items), k, plan.groups, ratio3, seed, split_by):
        tasks.append(Task(split, rows[split], plan.items[i], crops))
        rows[split] += len(crops)
    refuse_empty_splits(rows, len(plan.items), ratio3)   # before anything is written
    check_free_space(out, sum(rows.values()) * h * w * 4)

    with Staging(out) as stage:
        arrays = {}
        for s in SPLITS:
            img_path, lab_path = stage.path / f"{s}_images.npy", stage.path / f"{s}_labels.npy"
            create_array(img_path, (rows[s], h, w, 3))
            create_array(lab_path, (rows[s], h, w))
            arrays[s] = (str(img_path), str(lab_path))
        job = Job(arrays=arrays, crop=crop_hw, crops_per_image=k, seed=seed, synthetic=synthetic,
                  source=plan.reader, decoder=plan.decoder, resize=resize)
        log.info("preparing %d source %s into %d crops of %dx%d (split by %s) with %d job(s)", len(plan.items),
                 "scenes" if synthetic else "pairs", sum(rows.values()), h, w, split_by, jobs)
        odd_skipped = plan.dataset is not None and plan.dataset.odd_files_skipped
        per_split, bad, converted = _collect(job, tasks, len(plan.items), jobs, skip_bad, progress, odd_skipped)
        splits_meta = {}
        for s in SPLITS:
            splits_meta[s] = _finish_split(stage.path, s, per_split[s], rows[s], h, w, plan)
        _refuse_emptied_splits(splits_meta, bad)
        _warn_if_one_class(splits_meta, plan.classes)
        skipped = plan.skipped + bad
        source = dict(plan.source)
        source["pairs_used"] = len(plan.items) - len(bad)
        source["pairs_skipped"] = len(skipped)
        source["skipped"] = skipped
        source["converted"] = converted
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
            "ignored_colours": [list(c) for c in plan.ignored_colours],
            "dataset": _dataset_json(plan),
            "crop": {"height": h, "width": w},
            "crops_per_image": k,
            "resize": describe_resize(resize),
            "seed": seed,
            "split_by": split_by,
            "ratios": dict(zip(SPLITS, ratio3)),
            "splits": splits_meta,
        }
        atomic_write_json(stage.path / SPLITS_FILE, metadata)   # with the umask's mode, like the arrays
        stage.publish()
    counts = ", ".join(f"{s} {splits_meta[s]['count']}" for s in SPLITS)
    log.info("wrote %s: %s crops; %s; %d pair(s) skipped", out, counts, ignored_summary(metadata), len(skipped))
    return PrepareResult(out, splits_file, metadata, False)


def _refuse_emptied_splits(splits_meta: dict, bad: list) -> None:
    """--skip-bad must not turn a source of bad pairs into an empty dataset that reports success."""
    empty = [s for s in SPLITS if splits_meta[s]["count"] == 0]
    if empty and bad:
        raise UserError(f"the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} would be empty: --skip-bad "
                        f"skipped {len(bad)} bad pair(s), every one of {'their' if len(empty) > 1 else 'its'} pairs "
                        f"(first: {bad[0]['reason']}); fix the source (wrong --source-dir, --dataset or --encoding?); "
                        "nothing was written")


def _warn_if_one_class(splits_meta: dict, classes) -> None:
    """A training set of one class trains nothing: most often masks read with the wrong encoding or
    dataset (Kvasir-SEG's settings on Oxford-IIIT Pet's trimaps give all background)."""
    counts = splits_meta["train"]["class_pixel_counts"]
    present = [c for c, n in enumerate(counts) if n]
    if len(present) <= 1 and sum(counts):
        name = classes[present[0]][1]   # (id, name, colour)
        log.warning("every labelled training pixel is class %d (%s): the model has nothing to learn; check "
                    "--dataset and --encoding against the source's masks (the split file records what was used)",
                    present[0], name)


def _resolve_resize_split(plan: Plan, resize: Optional[str], split_by: Optional[str]):
    """The resize policy and split method: the user's, else the dataset entry's (official lists)."""
    spec = plan.dataset or GENERIC
    if resize is None:
        resize = spec.resize
        if spec.resize != GENERIC.resize:
            plan.defaults_used.append("resize")
    if split_by is None:
        split_by = "official" if plan.official_split else "image"
    elif split_by == "official" and not plan.official_split:
        raise UserError("--split-by official: this source has no official split lists (only "
                        + ", ".join(s.name for s in DATASETS.values() if s.split_lists) + " has); use image")
    if split_by != "official" and plan.official_split:
        plan.groups[:] = [getattr(p, "group", "") for p in plan.items]   # folders again, not the lists
    log.info("resize: %s; split by %s", resize, split_by)
    return resize, split_by


def ignored_summary(metadata: dict) -> str:
    """"N ignored pixels (x.x%: train a, val b, test c)", or that none can be, for the log and the CLI."""
    if metadata.get("ignore_index") is None:
        return "no ignore label"
    splits = metadata["splits"]
    ignored = {s: splits[s].get("ignored_pixels", 0) for s in splits}
    total = sum(splits[s]["count"] for s in splits) * metadata["crop"]["height"] * metadata["crop"]["width"]
    share = 100.0 * sum(ignored.values()) / total if total else 0.0
    return (f"{sum(ignored.values())} pixel(s) labelled ignore ({metadata['ignore_index']}), {share:.2f}% "
            f"(" + ", ".join(f"{s} {n}" for s, n in ignored.items()) + ")")


def _resolve_defaults(plan: Plan, crop_hw, k, synthetic: bool):
    """Crop and crops per image: the user's, else the dataset entry's, else generic; logs the origin."""
    spec = plan.dataset or GENERIC
    used = plan.defaults_used            # the split file's dataset.defaults_used
    if crop_hw is None:
        crop_hw = tuple(spec.crop)
        check_crop_for_models(crop_hw, "--crop")   # a registry entry no model can take
        used.append("crop")
    if k is None:
        k = spec.crops_per_image
        used.append("crops_per_image")
    if synthetic:
        return crop_hw, k
    values = {"palette": lambda: str(plan.settings.get("palette")), "encoding": lambda: plan.encoding["kind"],
              "ignored_colours": lambda: " ".join(f"({r},{g},{b})" for r, g, b in plan.ignored_colours),
              "crop": lambda: f"{crop_hw[0]}x{crop_hw[1]}", "crops_per_image": lambda: str(k)}
    shown = ", ".join(f"{name} {values[name]()}" for name in used) or "none (all given)"
    if plan.dataset is not None:
        log.info("defaults from dataset entry %s of unetbench/core/registry.py (matched by %s): %s; flags given "
                 "override the rest", plan.dataset.name, plan.dataset_reason, shown)
    else:
        log.info("generic defaults (%s): %s", plan.dataset_reason, shown)
    return crop_hw, k


def _dataset_json(plan: Plan):
    """The split file's "dataset": which registry entry supplied defaults, and which ones."""
    if plan.dataset is None:
        return None
    return {"name": plan.dataset.name, "title": plan.dataset.title, "matched_by": plan.dataset_reason,
            "defaults_used": list(plan.defaults_used)}


def prepare_synthetic(out: Union[str, os.PathLike], num_images: int = 40,
                      crop: Union[str, Sequence[int]] = (64, 96), seed: int = DEFAULT_SEED, jobs: int = 1,
                      force: bool = True, **kwargs) -> PrepareResult:
    """A small synthetic dataset for tests and demos (defaults: 40 scenes of 64x96, one job)."""
    return prepare(out, synthetic=True, num_images=num_images, crop=crop, seed=seed, jobs=jobs,
                   force=force, progress=kwargs.pop("progress", False), **kwargs)


def _plan_synthetic(n: int, encoding: str, palette, num_classes, class_names) -> Plan:
    if palette or (encoding not in (None, "auto", "index")) or class_names:
        log.warning("--encoding/--palette/--class-names do not apply to --synthetic; ignored")
    if num_classes not in (None, len(SYNTHETIC_CLASSES)):
        raise UserError(f"--num-classes {num_classes}: the synthetic set has {len(SYNTHETIC_CLASSES)} CARLA classes")
    source = {"kind": "synthetic", "location": "synthetic", "files_found": n}
    return Plan(source=source, items=list(range(n)), groups=[f"{i:06d}" for i in range(n)],
                encoding={"kind": "index", "detected": False}, classes=list(SYNTHETIC_CLASSES), ignore_index=None,
                settings={"source": "synthetic", "n": n})


def _collect(job: Job, tasks: List[Task], n_items: int, jobs: int, skip_bad: bool, progress: bool,
             odd_skipped: bool = False):
    """-> (results per split in row order, skipped pairs [{"image", "mask", "reason"}] once each,
    images converted on the way [{"image", "note"}]). ``odd_skipped``: a dataset known to ship
    undecodable images (Oxford-IIIT Pet) skips those pairs without --skip-bad."""
    per_split = {s: {"results": []} for s in SPLITS}
    bad: dict = {}
    converted: dict = {}
    # A pair's tasks are consecutive (one per split it has crops in): the bar counts a pair at its last.
    last = {t.item: n for n, t in enumerate(tasks)}
    # The bar on stderr: stdout holds the log and the summary line. In a batch log (no terminal)
    # a line every 10% or 15 s instead.
    with Progress(n_items, "images", stream=sys.stderr, enabled=progress, unit=" images",
                  every_fraction=0.1, every_s=15.0, min_total=200, line=PREPARE_LINE, log=log) as bar:
        for n, result in enumerate(run_tasks(job, tasks, jobs)):
            task = result["task"]
            if result["error"] is not None:
                item = task.item
                entry = {"image": getattr(item, "image", str(item)), "mask": getattr(item, "mask", str(item)),
                         "reason": result["error"]}
                if not (skip_bad or (odd_skipped and result.get("unreadable_image"))):
                    raise UserError(f"{result['error']}\n  fix the file, remove the pair, or pass --skip-bad "
                                    f"to skip bad pairs and list them in {SPLITS_FILE}")
                if (entry["image"], entry["mask"]) not in bad:
                    log.warning("skipping a pair: %s", entry["reason"])
                    bad[(entry["image"], entry["mask"])] = entry
            for note in result.get("notes") or ():
                converted.setdefault(note["image"], note)
            per_split[task.split]["results"].append(result)
            if last[task.item] == n:
                bar.update(1)
    if converted:
        log.warning("converted %d image(s) with an odd format (first: %s); listed in the split file",
                    len(converted), next(iter(converted.values()))["note"])
    return per_split, list(bad.values()), list(converted.values())


def _finish_split(folder: Path, split: str, collected: dict, rows: int, h: int, w: int, plan: Plan) -> dict:
    img_path, lab_path = folder / f"{split}_images.npy", folder / f"{split}_labels.npy"
    samples: list = []
    counts = np.zeros(256, dtype=np.int64)
    good = [r for r in collected["results"] if r["error"] is None]
    if sum(len(r["task"].crops) for r in good) != rows:
        # --skip-bad dropped pairs: move the good rows down over the holes, then cut the files
        images, labels = np.load(img_path, mmap_mode="r+"), np.load(lab_path, mmap_mode="r+")
        dst = 0
        for r in good:
            src, k = r["task"].first_row, len(r["task"].crops)
            if src != dst:
                images[dst:dst + k] = images[src:src + k]
                labels[dst:dst + k] = labels[src:src + k]
            dst += k
        images.flush()
        labels.flush()
        del images, labels
        for path in (img_path, lab_path):
            try:
                shrink_rows(path, dst)
            except OSError as err:   # named by the file that failed, not the first of the two
                raise explain_write_error(err, path) from None
        rows = dst
    for r in good:
        samples.extend(r["samples"])
        counts += r["counts"]
    digests = []
    for path in (img_path, lab_path):
        try:
            digests.append(finish_file(path))
        except OSError as err:
            raise explain_write_error(err, path) from None
    img_sha, lab_sha = digests
    n_classes = len(plan.classes)
    return {
        "count": rows,
        "images": {"file": img_path.name, "sha256": img_sha, "shape": [rows, h, w, 3], "dtype": "uint8"},
        "labels": {"file": lab_path.name, "sha256": lab_sha, "shape": [rows, h, w], "dtype": "uint8"},
        "samples": samples,
        "class_pixel_counts": [int(c) for c in counts[:n_classes]],
        "ignored_pixels": int(counts[IGNORE_INDEX]),
    }
