"""Kvasir-SEG and Oxford-IIIT Pet prepared from their real layouts (zip, tar.gz pair, plain tar),
their mask encodings (noisy JPEG threshold, trimaps), resize policies, official split lists, odd
files, and bad input: one line, exit 2, the earlier dataset intact.
Run: .venv/bin/python -m pytest tests/data/test_prepare_workloads.py -q
"""

from __future__ import annotations

import hashlib
import posixpath
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from helpers import run_prepare_cli as run
from PIL import Image
from workload_fixtures import (
    KVASIR_NAMES,
    PET_ODD,
    PET_STRAYS,
    PET_TEST,
    PET_UNREADABLE,
    kvasir_clean_mask,
    write_kvasir_folder,
    write_kvasir_zip,
    write_oxford_archives,
)

from unetbench.core.errors import UserError
from unetbench.data.prepare import official
from unetbench.data.prepare.api import prepare


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def arrays(out: Path, split: str):
    return np.load(out / f"{split}_images.npy"), np.load(out / f"{split}_labels.npy")


def test_kvasir_zip_prepares_two_classes_thresholded_and_resized(tmp_path):
    result = prepare(tmp_path / "data", source_dir=write_kvasir_zip(tmp_path), jobs=1, progress=False)
    meta = result.metadata
    assert meta["dataset"]["name"] == "kvasir-seg" and meta["num_classes"] == 2
    assert [c["name"] for c in meta["classes"]] == ["background", "polyp"]
    assert meta["resize"]["policy"] == "stretch" and meta["crop"] == {"height": 256, "width": 256}
    assert sum(meta["splits"][s]["count"] for s in meta["splits"]) == len(KVASIR_NAMES)
    for split in meta["splits"]:
        images, labels = arrays(tmp_path / "data", split)
        assert images.shape[1:] == (256, 256, 3) and set(np.unique(labels)) <= {0, 1}
        for sample, label in zip(meta["splits"][split]["samples"], labels):
            # the noisy JPEG mask thresholded and stretched = the clean ellipse stretched, up to its edge
            index = KVASIR_NAMES.index(posixpath.splitext(posixpath.basename(sample["image"]))[0])
            clean = np.asarray(Image.fromarray(kvasir_clean_mask(index).astype(np.uint8)).resize((256, 256),
                                                                                                Image.NEAREST))
            assert (label == clean).mean() > 0.98 and label.sum() > 1000


def test_kvasir_image_without_mask_is_refused_and_the_earlier_dataset_kept(tmp_path, capsys):
    good, out = write_kvasir_folder(tmp_path / "good"), tmp_path / "data"
    assert run(["--source-dir", good, "--out", out], capsys)[0] == 0
    before = digest(out)
    bad = write_kvasir_folder(tmp_path / "bad", drop_mask=KVASIR_NAMES[2])
    code, _, err = run(["--source-dir", bad, "--out", out, "--force"], capsys)
    assert code == 2 and f"Kvasir-SEG/images/{KVASIR_NAMES[2]}.jpg" in err and "image without mask" in err
    assert digest(out) == before


def test_images_and_masks_outside_a_kvasir_folder_are_not_taken_for_kvasir(tmp_path):
    root = write_kvasir_folder(tmp_path / "src")
    (root / "Kvasir-SEG").rename(root / "polyps")
    with pytest.raises(UserError):   # generic defaults: no threshold, the grey noise is not a class table
        prepare(tmp_path / "data", source_dir=root, jobs=1, progress=False)
    meta = prepare(tmp_path / "data2", source_dir=root, dataset="kvasir_seg", jobs=1, progress=False).metadata
    assert meta["dataset"]["name"] == "kvasir-seg" and meta["dataset"]["matched_by"] == "--dataset kvasir-seg"


@pytest.mark.parametrize("gzip", [True, False], ids=["tar.gz", "plain-tar-named-tar.gz"])
def test_oxford_pet_archive_pair_prepares_with_the_official_test_list(tmp_path, gzip):
    source = write_oxford_archives(tmp_path / "download", gzip=gzip)
    result = prepare(tmp_path / "data", source_dir=source, cache_dir=tmp_path / "cache", jobs=1, progress=False)
    meta = result.metadata
    assert meta["dataset"]["name"] == "oxford-pet" and meta["split_by"] == "official"
    assert [c["name"] for c in meta["classes"]] == ["background", "pet", "border"]
    assert meta["resize"]["policy"] == "cover"
    test_names = {posixpath.splitext(posixpath.basename(s["image"]))[0] for s in meta["splits"]["test"]["samples"]}
    assert test_names == set(PET_TEST) - set(PET_UNREADABLE)
    for split in ("train", "val"):
        assert not {s["image"] for s in meta["splits"][split]["samples"]} & {f"images/{n}.jpg" for n in PET_TEST}
    skipped = {posixpath.basename(s["image"]) for s in meta["source"]["skipped"]}
    assert skipped == {f"{n}.jpg" for n in PET_UNREADABLE} | set(PET_STRAYS)
    converted = {posixpath.splitext(posixpath.basename(c["image"]))[0]: c["note"] for c in meta["source"]["converted"]}
    assert set(converted) == set(PET_ODD) and all(PET_ODD[n] in converted[n] for n in PET_ODD)
    labels = np.concatenate([arrays(tmp_path / "data", s)[1].ravel() for s in meta["splits"]])
    assert set(np.unique(labels)) == {0, 1, 2}           # trimap 2, 1, 3 -> background, pet, border
    # a second run reuses the extraction and is up to date
    again = prepare(tmp_path / "data", source_dir=source, cache_dir=tmp_path / "cache", jobs=1, progress=False)
    assert again.up_to_date


def test_a_trimap_value_outside_1_to_3_is_refused_and_the_earlier_dataset_kept(tmp_path, capsys):
    out = tmp_path / "data"
    good = write_oxford_archives(tmp_path / "good")
    assert run(["--source-dir", good, "--out", out, "--cache-dir", tmp_path / "cache"], capsys)[0] == 0
    before = digest(out)
    bad = write_oxford_archives(tmp_path / "bad", bad_trimap="Bengal_14")
    code, _, err = run(["--source-dir", bad, "--out", out, "--cache-dir", tmp_path / "cache", "--force"], capsys)
    assert code == 2 and "annotations/trimaps/Bengal_14.png" in err and "outside 1-3" in err
    assert digest(out) == before


def test_resize_none_keeps_the_old_rule_for_small_images(tmp_path, capsys):
    code, _, err = run(["--source-dir", write_kvasir_zip(tmp_path), "--out", tmp_path / "d", "--resize", "none",
                        "--crop", "384x512"], capsys)
    assert code == 2 and "smaller than --crop" in err and "--resize cover" in err


def test_without_internet_the_message_says_where_to_fetch_the_files(tmp_path, monkeypatch, capsys):
    def offline(url, dest):   # stand-in for the network: what urllib raises without a route
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(official, "download", offline)
    code, _, err = run(["--dataset", "oxford_pet", "--out", tmp_path / "d", "--cache-dir", tmp_path / "c"], capsys)
    assert code == 2 and "images.tar.gz" in err and "annotations.tar.gz" in err and "--source-dir" in err
    code, _, err = run(["--dataset", "kvasir-seg", "--out", tmp_path / "d", "--cache-dir", tmp_path / "c"], capsys)
    assert code == 2 and "https://datasets.simula.no/downloads/kvasir-seg.zip" in err
    assert not (tmp_path / "d").exists()


def test_a_download_is_checked_against_the_published_sha256(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(official, "download", lambda url, dest: Path(dest).write_bytes(b"not the zip"))
    code, _, err = run(["--dataset", "kvasir_seg", "--out", tmp_path / "d", "--cache-dir", tmp_path / "c"], capsys)
    assert code == 2 and "SHA256" in err
    assert not list((tmp_path / "c" / "official" / "kvasir-seg").iterdir())   # nothing half-kept


def test_an_unknown_dataset_name_lists_the_registered_ones(tmp_path, capsys):
    code, _, err = run(["--dataset", "pets", "--out", tmp_path / "d"], capsys)
    assert code == 2 and "oxford-pet" in err and "kvasir-seg" in err
