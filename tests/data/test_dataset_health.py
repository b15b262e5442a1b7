"""A prepared dataset that cannot serve a run is refused up front: empty splits at preparation,
split-file fields of the wrong type or range at load, arrays changed on disk after preparation
(hashed only when their size or mtime changed), truncated arrays not "up to date".

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/data/test_dataset_health.py
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import run_script

from unetbench.core.errors import UserError
from unetbench.data.array_stamps import STAMP, verify_changed_arrays
from unetbench.data.prepare.api import prepare_synthetic
from unetbench.data.prepared import load_splits


@pytest.fixture
def data(tiny_splits, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(tiny_splits.parent, folder)
    (folder / STAMP).unlink(missing_ok=True)
    return folder


def test_prepare_refuses_an_empty_split_and_writes_nothing(tmp_path):
    proc = run_script(["prepare_dataset.py", "--synthetic", "--num-images", "20", "--crop", "32x48",
                       "--split", "0.8,0,0.2", "--out", tmp_path / "d"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the val split would be empty" in proc.stderr and "--split" in proc.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("field,value,needle", [
    ("num_classes", True, "num_classes must be a whole number from 1 to 255"),
    ("num_classes", 300, "num_classes must be a whole number from 1 to 255"),
    ("ignore_index", 2, "ignore_index must be null or a label value"),
    ("crop", {"height": "32", "width": 48}, "crop.height must be a whole number"),
    ("classes", [], "classes must be a list of"),
])
def test_split_file_fields_of_the_wrong_type_are_named(data, field, value, needle):
    meta = json.loads((data / "dataset_splits.json").read_text())
    meta[field] = value
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=needle) as err:
        load_splits(data / "dataset_splits.json")
    assert "prepare_dataset.py --force" in str(err.value)


def test_split_entries_are_checked_too(data):
    meta = json.loads((data / "dataset_splits.json").read_text())
    meta["splits"]["val"]["count"] = "6"
    meta["splits"]["test"]["labels"]["file"] = "../elsewhere.npy"
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"splits\.val\.count must be a whole number"):
        load_splits(data / "dataset_splits.json")


def test_an_array_changed_after_preparation_is_hashed_and_refused(data):
    splits = load_splits(data / "dataset_splits.json")
    assert len(verify_changed_arrays(splits)) == 6      # first time: every array hashed
    assert verify_changed_arrays(splits) == []           # unchanged since: nothing hashed
    labels = np.load(data / "val_labels.npy", mmap_mode="r+")
    labels[0, 0, 0] = (int(labels[0, 0, 0]) + 1) % splits.num_classes   # same size, other content
    labels.flush()
    del labels
    with pytest.raises(UserError, match="val_labels.npy changed after preparation"):
        verify_changed_arrays(splits)


@pytest.mark.slow
def test_the_trainer_and_the_preflight_refuse_changed_labels(data, tmp_path):
    labels = np.load(data / "train_labels.npy", mmap_mode="r+")
    labels[0, 0, 0] = (int(labels[0, 0, 0]) + 1) % 2
    labels.flush()
    del labels
    train = run_script(["unet_cpu.py", "--splits", data / "dataset_splits.json", "--out", tmp_path / "out"])
    assert train.returncode == 2 and "train_labels.npy changed after preparation" in train.stderr, train.stderr
    verify = run_script(["-m", "unetbench.cluster.preflight", "--backends", "cpu", "--local", "--data", data])
    assert verify.returncode != 0 and "train_labels.npy changed after preparation" in verify.stdout + verify.stderr


def test_a_truncated_array_is_not_up_to_date(tmp_path):
    from unetbench.data.prepare.fingerprint import is_up_to_date
    out = tmp_path / "d"
    fingerprint = prepare_synthetic(out, num_images=20, crop=(32, 48), seed=5).metadata["fingerprint"]
    assert is_up_to_date(out, fingerprint)
    path = out / "test_images.npy"
    path.write_bytes(path.read_bytes()[:-100])
    assert not is_up_to_date(out, fingerprint)


def test_a_binary_file_given_as_the_split_file_is_named_not_a_traceback(data):
    with pytest.raises(UserError, match=r"train_images\.npy is not a text file .*dataset_splits\.json"):
        load_splits(data / "train_images.npy")


@pytest.mark.parametrize("content", ["[1, 2]", '{"fingerprint": "F", "splits": [1]}', '{"fingerprint": "F", "splits": {"train": 3}}',
                                     "\x89PNG\x00\xff"])
def test_a_split_file_of_another_shape_is_simply_not_up_to_date(tmp_path, content):
    from unetbench.data.prepare.fingerprint import is_up_to_date
    (tmp_path / "dataset_splits.json").write_bytes(content.encode("latin-1"))
    assert is_up_to_date(tmp_path, "F") is False


def test_labels_beyond_the_classes_are_refused_before_training_when_the_classes_were_edited(data):
    meta = json.loads((data / "dataset_splits.json").read_text())
    meta["num_classes"] -= 1
    meta["classes"] = meta["classes"][:-1]
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"splits\.train\.class_pixel_counts must be a list of \d+ pixel counts"):
        load_splits(data / "dataset_splits.json")


def test_labels_beyond_the_classes_in_arrays_written_by_hand_are_found_once(data):
    meta = json.loads((data / "dataset_splits.json").read_text())
    for split in meta["splits"].values():   # a dataset made by hand: no checksums, no class counts
        for kind in ("images", "labels"):
            split[kind].pop("sha256")
        split.pop("class_pixel_counts")
    (data / "dataset_splits.json").write_text(json.dumps(meta))
    labels = np.load(data / "val_labels.npy")
    labels[3, 0, 0] = meta["num_classes"] + 2
    np.save(data / "val_labels.npy", labels)
    splits = load_splits(data / "dataset_splits.json")
    with pytest.raises(UserError, match=rf"val_labels\.npy: sample 3 has label value\(s\) \[{meta['num_classes'] + 2}\]"):
        verify_changed_arrays(splits)
    labels[3, 0, 0] = 0
    np.save(data / "val_labels.npy", labels)
    assert "val_labels.npy" in verify_changed_arrays(splits)   # read once ...
    assert verify_changed_arrays(splits) == []                  # ... then trusted while unchanged
