"""Synthetic source: the tiny datasets other tests and the demo build.

Run: .venv/bin/python -m pytest tests/data/test_prepare_synthetic.py -q
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from unetbench.data.prepare.api import prepare_synthetic
from unetbench.data.prepare.synthetic import render_scene


def _check_dataset(out: Path) -> dict:
    meta = json.loads((out / "dataset_splits.json").read_text())
    assert meta["format"] == "unetbench-dataset" and meta["format_version"] == 1
    n_classes = meta["num_classes"]
    for name, split in meta["splits"].items():
        for key in ("images", "labels"):
            path = out / split[key]["file"]
            arr = np.load(path, mmap_mode="r")
            assert list(arr.shape) == split[key]["shape"] and arr.dtype == np.uint8
            assert hashlib.sha256(path.read_bytes()).hexdigest() == split[key]["sha256"]
        assert split["count"] == len(split["samples"]) == split["images"]["shape"][0]
        labels = np.load(out / split["labels"]["file"])
        assert labels.max(initial=0) < n_classes
        assert split["class_pixel_counts"] == np.bincount(labels.ravel(), minlength=n_classes).tolist()
    return meta


def test_cli_synthetic_small(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, str(REPO / "prepare_dataset.py"), "--synthetic", "--num-images", "40",
           "--crop", "64x96", "--out", str(out), "--jobs", "2"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    meta = _check_dataset(out)
    assert [meta["splits"][s]["count"] for s in ("train", "val", "test")] == [28, 6, 6]
    assert meta["crop"] == {"height": 64, "width": 96}
    assert [c["name"] for c in meta["classes"]][:3] == ["Unlabeled", "Buildings", "Fences"]
    # a second identical run is a no-op
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_same_seed_same_bytes_any_jobs(tmp_path):
    a = prepare_synthetic(tmp_path / "a", num_images=24, crop=(48, 64), seed=7, jobs=1)
    b = prepare_synthetic(tmp_path / "b", num_images=24, crop=(48, 64), seed=7, jobs=2)
    for s in ("train", "val", "test"):
        for key in ("images", "labels"):
            assert a.metadata["splits"][s][key]["sha256"] == b.metadata["splits"][s][key]["sha256"]
    c = prepare_synthetic(tmp_path / "c", num_images=24, crop=(48, 64), seed=8, jobs=1)
    assert c.metadata["splits"]["train"]["images"]["sha256"] != a.metadata["splits"]["train"]["images"]["sha256"]


def test_force_rebuilds_and_rerun_is_noop(tmp_path):
    first = prepare_synthetic(tmp_path / "d", num_images=12, force=False)
    assert not first.up_to_date
    second = prepare_synthetic(tmp_path / "d", num_images=12, force=False)
    assert second.up_to_date
    third = prepare_synthetic(tmp_path / "d", num_images=12, force=True)
    assert not third.up_to_date
    changed = prepare_synthetic(tmp_path / "d", num_images=13, force=False)
    assert not changed.up_to_date and changed.metadata["source"]["files_found"] == 13


def test_files_get_the_umask_mode_for_a_shared_folder(tmp_path):
    # the split file goes through unetbench.core.atomic (a 0600 temporary file renamed into place),
    # which must apply the umask like the arrays' plain creation does
    old = os.umask(0o027)
    try:
        out = prepare_synthetic(tmp_path / "d", num_images=6, crop=(32, 48)).out
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {name: 0o640 for name in modes} and "dataset_splits.json" in modes, modes


def test_scene_has_all_main_classes_and_is_deterministic():
    counts = np.zeros(13, dtype=np.int64)
    for i in range(30):
        image, label = render_scene(3, i, 96, 128)
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8 and label.shape == (96, 128)
        counts += np.bincount(label.ravel(), minlength=13)
    assert (counts > 0).all(), counts  # every CARLA class appears somewhere in 30 scenes
    a, b = render_scene(3, 5, 96, 128), render_scene(3, 5, 96, 128)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (384, 512)])
def test_scene_any_size(hw):
    image, label = render_scene(0, 0, *hw)
    assert image.shape == (*hw, 3) and label.shape == hw
