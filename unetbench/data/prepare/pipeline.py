"""Parallel workers that decode, crop and write straight into the memory-mapped arrays.

Use (from api.py)::

    for result in run_tasks(job, tasks, jobs=8):
        ...   # small dicts in task order: samples, class pixel counts, or an error

Each task is one source item (a synthetic index or an image/mask pair), the crops of it that go
to one split (all of them unless --split-by crop) and the array rows it owns; the worker decodes
the pair once, and writes its crops into those rows itself, so only a few numbers travel back to
the parent, never pixels. Workers open each array once per process (``np.load(mmap_mode="r+")``).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from ...core.interrupts import ignore_stop_signals_in_worker
from .pair_error import PairError, UnreadableImage
from .synthetic import render_scene


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, sent to each worker once."""
    arrays: Dict[str, Tuple[str, str]]          # split -> (images.npy, labels.npy)
    crop: Tuple[int, int]                        # (height, width)
    crops_per_image: int
    seed: int
    synthetic: bool
    source: Optional[object] = None             # sources.SourceReader (picklable)
    decoder: Optional[object] = None            # encodings.MaskDecoder (picklable)
    resize: str = "none"                        # resize.RESIZE_POLICIES


@dataclass(frozen=True)
class Task:
    split: str
    first_row: int
    item: object            # int (synthetic index) or layouts.Pair
    crops: Tuple[int, ...] = (0,)   # which of the item's crops (0..crops_per_image-1), one row each


_JOB: Optional[Job] = None
_OPEN: Dict[str, np.ndarray] = {}


def _init_worker(job: Job) -> None:
    # Forked workers inherit the parent's Python signal handlers (a training's in the same
    # process, or the command's that raise): the parent alone decides; a worker leaves on
    # Pool.terminate()'s SIGTERM by exiting, releasing the task queue's lock (core/interrupts.py).
    ignore_stop_signals_in_worker()
    _init(job)


def _init(job: Job) -> None:
    global _JOB
    _JOB = job
    _OPEN.clear()


def _array(path: str) -> np.ndarray:
    arr = _OPEN.get(path)
    if arr is None:
        arr = _OPEN[path] = np.load(path, mmap_mode="r+")
    return arr


def run_task(task: Task) -> dict:
    job = _JOB
    images_path, labels_path = job.arrays[task.split]
    notes: list = []                # files converted on the way (decode._oddity)
    try:
        if job.synthetic:
            h, w = job.crop
            image, label = render_scene(job.seed, task.item, h, w)
            crops = [(0, 0, image, label)]
            name = f"synthetic/{task.item:06d}"
            sources = (name, name)
        else:
            from .decode import (
                crops_for_pair,  # Pillow only where real files are decoded
            )
            crops = crops_for_pair(job, task.item, task.crops, notes)
            sources = (task.item.image, task.item.mask)
    except PairError as err:
        return {"task": task, "error": str(err), "unreadable_image": isinstance(err, UnreadableImage)}
    images, labels = _array(images_path), _array(labels_path)
    counts = np.zeros(256, dtype=np.int64)
    samples = []
    for k, (top, left, image, label) in enumerate(crops):
        images[task.first_row + k] = image
        labels[task.first_row + k] = label
        counts += np.bincount(label.ravel(), minlength=256)
        samples.append({"image": sources[0], "mask": sources[1], "top": int(top), "left": int(left)})
    return {"task": task, "error": None, "samples": samples, "counts": counts, "notes": notes}


def _context():
    # fork: workers start in milliseconds and never re-import the caller's __main__ (spawn would,
    # and breaks scripts without a main guard). Workers use only numpy and Pillow, never torch,
    # so a torch already loaded (with its thread pools) in the parent is not touched by them.
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def run_tasks(job: Job, tasks: Sequence[Task], jobs: int) -> Iterator[dict]:
    """Yield results in task order; in-process for one job or a handful of tasks."""
    if jobs <= 1 or len(tasks) <= 8:
        _init(job)
        try:
            for task in tasks:
                yield run_task(task)
        finally:
            _OPEN.clear()
        return
    pool = _context().Pool(processes=jobs, initializer=_init_worker, initargs=(job,))
    try:
        chunk = max(1, min(16, len(tasks) // (jobs * 8)))
        yield from pool.imap(run_task, tasks, chunksize=chunk)
        pool.close()
    finally:
        pool.terminate()   # also on errors and Ctrl-C: no orphan workers writing on
        pool.join()


