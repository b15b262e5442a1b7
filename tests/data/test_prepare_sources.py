"""Real-data sources: every layout and encoding, zips, the Kaggle path (download swapped for a copy),
splits, checksums and determinism.

Run: .venv/bin/python -m pytest tests/data/test_prepare_sources.py -q
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import (
    PALETTE13,
    write_flat_palette,
    write_index,
    write_lyft,
    zip_folder,
)

from unetbench.core.errors import UserError
from unetbench.data.prepare import sources
from unetbench.data.prepare.api import prepare
from unetbench.data.prepare.layouts import find_pairs

CROP = (32, 48)


def _verify(out: Path) -> dict:
    meta = json.loads((out / "dataset_splits.json").read_text())
    for split in meta["splits"].values():
        for key in ("images", "labels"):
            path = out / split[key]["file"]
            arr = np.load(path, mmap_mode="r")
            assert list(arr.shape) == split[key]["shape"]
            assert arr.dtype == np.uint8
            assert hashlib.sha256(path.read_bytes()).hexdigest() == split[key]["sha256"]
        assert split["count"] == len(split["samples"])
    return meta


@pytest.fixture(scope="module")
def lyft(tmp_path_factory):
    return write_lyft(tmp_path_factory.mktemp("src") / "lyft", folders=("dataA", "dataB", "dataC"), per_folder=4)


@pytest.mark.parametrize("nested", [True, False])
def test_lyft_layout_red_channel(tmp_path, nested):
    src = write_lyft(tmp_path / "src", per_folder=3, nested=nested)
    meta = _verify(prepare(tmp_path / "out", source_dir=src, crop=CROP, jobs=1, progress=False).out)
    assert meta["encoding"] == {"kind": "red_channel", "detected": True}
    assert meta["source"]["kind"] == "local" and meta["source"]["files_found"] == 12
    assert meta["source"]["pairs_used"] == 6 and meta["num_classes"] == 13
    sample = meta["splits"]["train"]["samples"][0]
    assert "/CameraRGB/" in sample["image"] and "/CameraSeg/" in sample["mask"]


def test_labels_match_source_masks(tmp_path):
    src = write_index(tmp_path / "src", n=4)
    out = prepare(tmp_path / "out", source_dir=src, crop=CROP, jobs=1, progress=False).out
    meta = _verify(out)
    from PIL import Image
    for name, split in meta["splits"].items():
        images = np.load(out / split["images"]["file"])
        labels = np.load(out / split["labels"]["file"])
        for row, s in enumerate(split["samples"]):
            t, l = s["top"], s["left"]
            full_img = np.asarray(Image.open(src / s["image"]))
            full_lab = np.asarray(Image.open(src / s["mask"]))
            assert np.array_equal(images[row], full_img[t:t + CROP[0], l:l + CROP[1]])
            assert np.array_equal(labels[row], full_lab[t:t + CROP[0], l:l + CROP[1]])
        counts = np.bincount(labels.ravel(), minlength=13).tolist()
        assert split["class_pixel_counts"] == counts


def test_flat_palette_layout_and_zip(tmp_path):
    src = write_flat_palette(tmp_path / "flat", n=5)
    archive = zip_folder(src, tmp_path / "flat.zip")
    a = _verify(prepare(tmp_path / "a", source_dir=src, crop=CROP, jobs=1, progress=False).out)
    b = _verify(prepare(tmp_path / "b", source_dir=archive, crop=CROP, jobs=1, progress=False).out)
    assert a["encoding"] == {"kind": "palette", "detected": True}
    assert b["source"]["kind"] == "zip"
    for s in ("train", "val", "test"):  # same pixels whether zipped or not
        assert a["splits"][s]["labels"]["sha256"] == b["splits"][s]["labels"]["sha256"]
    labels = np.load(tmp_path / "a" / "train_labels.npy")
    assert labels.max() < 13 and len(np.unique(labels)) > 3


def test_forced_encoding_and_class_names(tmp_path):
    src = write_index(tmp_path / "src", n=4)
    names = [f"c{i}" for i in range(13)]
    meta = prepare(tmp_path / "out", source_dir=src, crop=CROP, encoding="index", class_names=names,
                   jobs=1, progress=False).metadata
    assert meta["encoding"] == {"kind": "index", "detected": False}
    assert [c["name"] for c in meta["classes"]] == names
    palette_file = tmp_path / "pal.txt"
    palette_file.write_text("".join(f"{r} {g} {b} k{i}\n" for i, (r, g, b) in enumerate(PALETTE13.tolist())))
    flat = write_flat_palette(tmp_path / "flat", n=4)
    meta = prepare(tmp_path / "out2", source_dir=flat, crop=CROP, palette=str(palette_file), jobs=1,
                   progress=False).metadata
    assert meta["encoding"]["kind"] == "palette" and meta["classes"][7]["name"] == "k7"


def test_splits_disjoint_by_image_and_by_folder(tmp_path, lyft):
    meta = prepare(tmp_path / "img", source_dir=lyft, crop=CROP, crops_per_image=3, jobs=2, progress=False).metadata
    seen = {s: {x["image"] for x in v["samples"]} for s, v in meta["splits"].items()}
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])
    assert sum(len(v) for v in seen.values()) == 12
    assert all(v["count"] == 3 * len(seen[s]) for s, v in meta["splits"].items())
    meta = prepare(tmp_path / "fold", source_dir=lyft, crop=CROP, split_by="folder", jobs=1, progress=False).metadata
    folders = {s: {x["image"].split("/")[0] for x in v["samples"]} for s, v in meta["splits"].items()}
    assert all(len(f) == 1 for f in folders.values())
    assert len(set().union(*folders.values())) == 3


def test_determinism_same_seed_same_bytes(tmp_path, lyft):
    a = prepare(tmp_path / "a", source_dir=lyft, crop=CROP, crops_per_image=2, jobs=1, progress=False).metadata
    b = prepare(tmp_path / "b", source_dir=lyft, crop=CROP, crops_per_image=2, jobs=2, progress=False).metadata
    c = prepare(tmp_path / "c", source_dir=lyft, crop=CROP, crops_per_image=2, seed=1, jobs=1, progress=False).metadata
    for s in ("train", "val", "test"):
        assert a["splits"][s]["images"]["sha256"] == b["splits"][s]["images"]["sha256"]
        assert a["splits"][s]["samples"] == b["splits"][s]["samples"]
    assert a["splits"]["train"]["samples"] != c["splits"]["train"]["samples"]
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]


def test_rerun_is_noop_until_source_changes(tmp_path):
    src = write_index(tmp_path / "src", n=4)
    first = prepare(tmp_path / "out", source_dir=src, crop=CROP, jobs=1, progress=False)
    assert prepare(tmp_path / "out", source_dir=src, crop=CROP, jobs=1, progress=False).up_to_date
    shutil.copy(src / "rgb" / "0000.png", src / "rgb" / "0009.png")
    shutil.copy(src / "seg" / "0000.png", src / "seg" / "0009.png")
    again = prepare(tmp_path / "out", source_dir=src, crop=CROP, jobs=1, progress=False)
    assert not again.up_to_date and again.metadata["fingerprint"] != first.metadata["fingerprint"]


def test_num_images_subset(tmp_path, lyft):
    meta = prepare(tmp_path / "out", source_dir=lyft, crop=CROP, num_images=5, jobs=1, progress=False).metadata
    assert meta["source"]["pairs_used"] == 5 and sum(v["count"] for v in meta["splits"].values()) == 5


def test_pairing_rules():
    files = ["a/images/x.png", "a/masks/x_mask.png", "a/images/sub/y.jpg", "a/masks/sub/y.png",
             "b/IMAGES/z.png", "b/Labels/z.png", "c/images/lonely.png", "c/masks/orphan.png", "notes/readme.png"]
    pairs, unmatched, found = find_pairs(files)
    assert [(p.image, p.mask, p.group) for p in pairs] == [
        ("a/images/sub/y.jpg", "a/masks/sub/y.png", "a"), ("a/images/x.png", "a/masks/x_mask.png", "a"),
        ("b/IMAGES/z.png", "b/Labels/z.png", "b")]
    assert {u["reason"].split(" (")[0] for u in unmatched} == {"image without mask", "mask without image"}


def test_two_images_of_one_name_are_both_named_not_one_dropped_silently():
    files = ["d/images/dup.png", "d/images/dup.jpg", "d/masks/dup.png", "d/images/ok.png", "d/masks/ok.png"]
    pairs, unmatched, _ = find_pairs(files)
    assert [p.image for p in pairs] == ["d/images/ok.png"]
    ambiguous = [u for u in unmatched if "ambiguous" in u["reason"]]
    assert sorted(u["image"] for u in ambiguous) == ["d/images/dup.jpg", "d/images/dup.png"]
    assert "2 images named d/images/dup.* (dup.jpg, dup.png)" in ambiguous[0]["reason"]


# ------------------------------------------------------------------ Kaggle, network swapped out

@pytest.fixture
def kaggle_env(tmp_path, monkeypatch):
    """Fake credentials and a private HOME/cache; the real `download` must not run."""
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "UNETBENCH_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_kaggle_downloads_once_into_cache(tmp_path, monkeypatch, kaggle_env, lyft):
    archive = zip_folder(lyft, tmp_path / "upstream.zip")
    calls = []

    def fake_download(slug, dest):
        calls.append(slug)
        shutil.copy(archive, Path(dest) / "lyft-udacity-challenge.zip")

    monkeypatch.setattr(sources, "download", fake_download)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret-key-value")
    cache = tmp_path / "cache"
    slug = "kumaresanmanickavelu/lyft-udacity-challenge"   # by name (the default is the seed's CARLA set)
    meta = prepare(tmp_path / "out", kaggle_dataset=slug, crop=CROP, cache_dir=cache, jobs=1, progress=False).metadata
    assert calls == [slug]
    assert meta["source"]["kind"] == "kaggle"
    assert meta["source"]["location"] == "kumaresanmanickavelu/lyft-udacity-challenge"
    assert meta["source"]["pairs_used"] == 12
    assert "s3cret" not in json.dumps(meta)
    prepare(tmp_path / "out2", kaggle_dataset=slug, crop=CROP, cache_dir=cache, jobs=1, progress=False)
    assert len(calls) == 1  # the cached zip is reused
    assert not list((cache / "kaggle" / "kumaresanmanickavelu" / "lyft-udacity-challenge").glob(".download-*"))


def test_kaggle_credentials_sources(monkeypatch, kaggle_env, tmp_path):
    assert sources.kaggle_credentials() is None
    token = kaggle_env / ".kaggle" / "kaggle.json"
    token.write_text('{"username": "u", "key": "k"}')
    token.chmod(0o600)
    assert sources.kaggle_credentials() == str(token)
    token.unlink()
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cfg))
    assert sources.kaggle_credentials() == str(cfg / "kaggle.json")
    monkeypatch.delenv("KAGGLE_CONFIG_DIR")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok")
    assert sources.kaggle_credentials() == "KAGGLE_API_TOKEN"


def test_kaggle_bad_slug(kaggle_env, tmp_path):
    with pytest.raises(UserError, match="OWNER/NAME"):
        prepare(tmp_path / "out", kaggle_dataset="not-a-slug", cache_dir=tmp_path / "c", progress=False)


def test_a_forked_worker_reads_the_zip_through_a_file_of_its_own(tmp_path):
    """The parent reads a mask before the pool forks; a worker that kept the parent's open
    archive would share its file offset, and concurrent reads interleave (Bad CRC-32)."""
    import os
    import zipfile
    members = {name: np.random.default_rng(i).bytes(1 << 20) for i, name in enumerate(["a.png", "b.png"])}
    with zipfile.ZipFile(tmp_path / "src.zip", "w") as archive:   # larger than any read buffer
        for name, data in members.items():
            archive.writestr(name, data)
    reader = sources.open_source(tmp_path / "src.zip")
    assert reader.read("a.png") == members["a.png"]   # the parent's archive is open now
    parent_fd = sources._OPEN_ZIPS[reader.root].fp.fileno()
    offset = os.lseek(parent_fd, 0, os.SEEK_CUR)
    pid = os.fork()
    if pid == 0:  # the worker: read, and report through the exit status only
        ok = False
        try:
            ok = reader.read("b.png") == members["b.png"]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.lseek(parent_fd, 0, os.SEEK_CUR) == offset, "the worker moved the parent's file offset: one shared file"


def test_symbolic_link_loops_in_the_source_are_walked_once_or_named(tmp_path, caplog):
    import logging
    import os
    src = write_flat_palette(tmp_path / "flat", n=3)
    folder = next(p for p in src.rglob("*") if p.is_dir())
    os.symlink(src, folder / "back")                     # a folder linking to an ancestor
    with caplog.at_level(logging.WARNING):
        files = sources.list_files(sources.open_source(src))
    assert files and not any("/back/" in f[0] for f in files)
    assert "a symbolic link to a folder already read" in caplog.text
    os.symlink("self.png", folder / "self.png")          # a file linking to itself
    with pytest.raises(UserError, match=r"self\.png: .*a symbolic link that loops or points nowhere"):
        sources.list_files(sources.open_source(src))
