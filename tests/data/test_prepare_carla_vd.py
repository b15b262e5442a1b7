"""The seed's dataset by default: the Kaggle "CARLA Vision Dataset" (maelstro/carla-vd-dataset) in its
real layout (_out/ RGB frames, _out_seg_city/ CityScapes-palette masks), its 20 classes in the seed's
order, 10 crops per image, ignored colours counted; the registry entries that say so; split by crop.

Run: .venv/bin/python -m pytest tests/data/test_prepare_carla_vd.py -q
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import (
    GUARDRAIL,
    OTHER,
    SEED20,
    UNLABELED,
    write_carla_vd,
    write_lyft,
    zip_folder,
)
from helpers import REPO
from PIL import Image

from unetbench.core import registry
from unetbench.core.errors import UserError, run_cli
from unetbench.core.parsing import check_crop_for_models
from unetbench.data.prepare import sources
from unetbench.data.prepare.api import prepare
from unetbench.data.prepare.classes import BUILTIN_PALETTES
from unetbench.data.prepare.cli import main
from unetbench.data.prepare.layouts import FOLDER_PAIRS
from unetbench.data.prepared import IGNORE_INDEX

SLUG = "maelstro/carla-vd-dataset"
LYFT = "kumaresanmanickavelu/lyft-udacity-challenge"
CROP = "32x48"
# the CARLA tag names, in the seed's order (class id = position)
NAMES = ["Vehicles", "Water", "Building", "Sky", "Ground", "Fence", "Wall", "Vegetation", "Static", "Road",
         "Terrain", "Bridge", "Pole", "RoadLine", "Dynamic", "Pedestrian", "TrafficSign", "RailTrack", "Sidewalk",
         "TrafficLight"]
IGNORED = (UNLABELED, OTHER, GUARDRAIL)


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def cli(argv, capsys):
    """prepare_dataset.py in-process: -> (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(a) for a in argv] + ["--jobs", "1"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return exc.value.code, out, err


def expected_labels(mask: np.ndarray) -> np.ndarray:
    """The seed's table applied independently of unetbench: colour -> its position, ignored -> 255."""
    out = np.full(mask.shape[:2], -1, dtype=np.int64)
    for cid, colour in enumerate(SEED20):
        out[(mask == colour).all(axis=-1)] = cid
    for colour in IGNORED:
        out[(mask == colour).all(axis=-1)] = IGNORE_INDEX
    assert (out >= 0).all(), "the fixture holds a colour outside the seed's table and the ignored ones"
    return out.astype(np.uint8)


def check_against_source(out: Path, read_mask) -> dict:
    """Every row's labels equal the seed's table applied to the source mask crop; counts agree."""
    meta = json.loads((out / "dataset_splits.json").read_text())
    for split in meta["splits"].values():
        labels = np.load(out / split["labels"]["file"])
        assert hashlib.sha256((out / split["labels"]["file"]).read_bytes()).hexdigest() == split["labels"]["sha256"]
        ignored = 0
        for row, s in enumerate(split["samples"]):
            t, l = s["top"], s["left"]
            want = expected_labels(read_mask(s["mask"])[t:t + 32, l:l + 48])
            assert np.array_equal(labels[row], want), (s, row)
            ignored += int((want == IGNORE_INDEX).sum())
        assert split["ignored_pixels"] == ignored
        assert split["class_pixel_counts"] == np.bincount(labels.ravel(), minlength=256)[:20].tolist()
        assert set(np.unique(labels).tolist()) <= set(range(20)) | {IGNORE_INDEX}
    return meta


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    """Fake credentials, a private HOME, and a download that copies the fixture's zip (as Kaggle serves it)."""
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "UNETBENCH_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret")
    calls = []
    served = {}

    def fake_download(slug, dest):
        calls.append(slug)
        shutil.copy(served["zip"], Path(dest) / f"{slug.split('/')[1]}.zip")

    monkeypatch.setattr(sources, "download", fake_download)
    return calls, served


# ------------------------------------------------------------------ by default

def test_kaggle_default_is_the_seeds_dataset_with_its_settings(tmp_path, kaggle, capsys):
    calls, served = kaggle
    src = write_carla_vd(tmp_path / "carla", n=4)
    served["zip"] = zip_folder(src, tmp_path / "carla-vd-dataset.zip")
    out, cache = tmp_path / "data", tmp_path / "cache"
    code, stdout, err = cli(["--out", out, "--cache-dir", cache, "--crop", CROP], capsys)
    assert code == 0, err
    assert calls == [SLUG]
    assert (cache / "kaggle" / "maelstro" / "carla-vd-dataset" / "carla-vd-dataset.zip").is_file()

    meta = check_against_source(out, lambda rel: np.asarray(Image.open(src / rel).convert("RGB")))
    assert meta["source"]["kind"] == "kaggle" and meta["source"]["location"] == SLUG
    assert meta["num_classes"] == 20
    assert [c["name"] for c in meta["classes"]] == NAMES
    assert [tuple(c["color"]) for c in meta["classes"]] == SEED20
    assert [c["id"] for c in meta["classes"]] == list(range(20))
    assert meta["crops_per_image"] == 10 and meta["seed"] == 42 and meta["split_by"] == "image"
    assert meta["ratios"] == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert meta["ignore_index"] == IGNORE_INDEX
    assert [tuple(c) for c in meta["ignored_colours"]] == list(IGNORED)
    assert meta["encoding"] == {"kind": "palette", "detected": False}
    assert meta["dataset"]["name"] == "carla-vd"
    assert set(meta["dataset"]["defaults_used"]) == {"palette", "ignored_colours", "crops_per_image"}
    counts = {s: v["count"] for s, v in meta["splits"].items()}
    assert sum(counts.values()) == 40 and all(c % 10 == 0 for c in counts.values())
    for split in meta["splits"].values():   # 10 crops of each image, all in its split
        per_image = {}
        for s in split["samples"]:
            per_image[s["image"]] = per_image.get(s["image"], 0) + 1
        assert set(per_image.values()) <= {10}
        assert all(s["image"].startswith("_out/") and s["mask"].startswith("_out_seg_city/") for s in split["samples"])

    # the ignored pixels, computed from the fixture's masks crop by crop, are in the summary
    total = sum(v["ignored_pixels"] for v in meta["splits"].values())
    expected = 0
    for split in meta["splits"].values():
        for s in split["samples"]:
            mask = np.asarray(Image.open(src / s["mask"]).convert("RGB"))[s["top"]:s["top"] + 32, s["left"]:s["left"] + 48]
            expected += sum(int((mask == c).all(axis=-1).sum()) for c in IGNORED)
    assert total == expected > 0
    assert f"{total} pixel(s) labelled ignore (255)" in stdout
    assert "defaults from dataset entry carla-vd" in stdout and "crops_per_image 10" in stdout
    assert "s3cret" not in stdout + json.dumps(meta)


def test_local_folder_and_zip_prepare_like_the_kaggle_download(tmp_path, kaggle):
    calls, served = kaggle
    src = write_carla_vd(tmp_path / "carla", n=4)
    served["zip"] = zip_folder(src, tmp_path / "upstream.zip")
    nested = tmp_path / "copy" / "carla-vd" / "data"        # any depth
    shutil.copytree(src, nested)
    via_kaggle = prepare(tmp_path / "k", crop=CROP, cache_dir=tmp_path / "cache", jobs=2, progress=False).metadata
    via_folder = prepare(tmp_path / "f", source_dir=src, crop=CROP, jobs=1, progress=False).metadata
    via_zip = prepare(tmp_path / "z", source_dir=served["zip"], crop=CROP, jobs=1, progress=False).metadata
    via_nested = prepare(tmp_path / "n", source_dir=tmp_path / "copy", crop=CROP, jobs=1, progress=False).metadata
    for meta in (via_folder, via_zip):
        assert meta["dataset"]["name"] == "carla-vd" and meta["dataset"]["matched_by"].startswith("layout")
        for key in ("num_classes", "classes", "crops_per_image", "ignore_index", "ignored_colours", "encoding"):
            assert meta[key] == via_kaggle[key], key
        for s in ("train", "val", "test"):
            for kind in ("images", "labels"):
                assert meta["splits"][s][kind]["sha256"] == via_kaggle["splits"][s][kind]["sha256"]
            assert meta["splits"][s]["samples"] == via_kaggle["splits"][s]["samples"]
            assert meta["splits"][s]["ignored_pixels"] == via_kaggle["splits"][s]["ignored_pixels"]
    assert via_nested["crops_per_image"] == 10 and via_nested["num_classes"] == 20
    check_against_source(tmp_path / "f", lambda rel: np.asarray(Image.open(src / rel).convert("RGB")))


def test_explicit_flags_win_over_the_dataset_defaults(tmp_path):
    src = write_carla_vd(tmp_path / "carla", n=3)
    meta = prepare(tmp_path / "a", source_dir=src, crop=CROP, crops_per_image=2, jobs=1, progress=False).metadata
    assert meta["crops_per_image"] == 2 and meta["num_classes"] == 20
    assert meta["dataset"]["defaults_used"] == ["palette", "ignored_colours"]
    # another palette: its own table, and the dataset's ignored colours (which belong to carla20) no longer apply
    meta = prepare(tmp_path / "b", source_dir=src, crop=CROP, palette="carla23", jobs=1, progress=False).metadata
    assert meta["num_classes"] == 23 and meta["ignore_index"] is None and meta["ignored_colours"] == []
    assert meta["crops_per_image"] == 10
    labels = np.load(tmp_path / "b" / "train_labels.npy")
    assert labels.max() < 23 and (labels == 0).any()          # black is carla23's Unlabeled, class 0
    # fewer classes than the table: ids beyond are refused unless --unknown-to-ignore
    meta = prepare(tmp_path / "c", source_dir=src, crop=CROP, num_classes=19, unknown_to_ignore=True, jobs=1,
                   progress=False).metadata
    assert meta["num_classes"] == 19 and meta["ignore_index"] == IGNORE_INDEX


def test_fingerprint_follows_the_resolved_settings(tmp_path):
    src = write_carla_vd(tmp_path / "carla", n=3)
    first = prepare(tmp_path / "d", source_dir=src, crop=CROP, jobs=1, progress=False)
    assert prepare(tmp_path / "d", source_dir=src, crop=CROP, jobs=1, progress=False).up_to_date
    # the same value given explicitly resolves to the same settings
    assert prepare(tmp_path / "d", source_dir=src, crop=CROP, crops_per_image=10, jobs=1, progress=False).up_to_date
    for changed in ({"crops_per_image": 3}, {"palette": "carla23"}, {"split_by": "crop"}, {"unknown_to_ignore": True}):
        again = prepare(tmp_path / "d", source_dir=src, crop=CROP, jobs=1, progress=False, **changed)
        assert not again.up_to_date, changed
        assert again.metadata["fingerprint"] != first.metadata["fingerprint"], changed


def test_unknown_kaggle_slug_gets_generic_defaults(tmp_path, kaggle):
    calls, served = kaggle
    served["zip"] = zip_folder(write_carla_vd(tmp_path / "carla", n=3), tmp_path / "mirror.zip")
    meta = prepare(tmp_path / "d", kaggle_dataset="someone/carla-mirror", crop=CROP, cache_dir=tmp_path / "c",
                   jobs=1, progress=False).metadata
    assert calls == ["someone/carla-mirror"]
    assert meta["dataset"] is None and meta["crops_per_image"] == 1
    assert meta["encoding"] == {"kind": "palette", "detected": True} and meta["num_classes"] == 23


def test_lyft_by_name_keeps_its_own_defaults(tmp_path, kaggle):
    calls, served = kaggle
    lyft = write_lyft(tmp_path / "lyft", folders=("dataA", "dataB"), per_folder=3)
    served["zip"] = zip_folder(lyft, tmp_path / "lyft.zip")
    meta = prepare(tmp_path / "d", kaggle_dataset=LYFT, crop=CROP, cache_dir=tmp_path / "c", jobs=1,
                   progress=False).metadata
    assert calls == [LYFT]
    assert meta["dataset"]["name"] == "lyft-udacity" and meta["crops_per_image"] == 1
    assert meta["encoding"] == {"kind": "red_channel", "detected": True} and meta["num_classes"] == 13
    assert meta["ignore_index"] is None and meta["ignored_colours"] == []
    assert sum(v["count"] for v in meta["splits"].values()) == 6
    local = prepare(tmp_path / "l", source_dir=lyft, crop=CROP, jobs=1, progress=False).metadata
    assert local["dataset"]["name"] == "lyft-udacity" and local["crops_per_image"] == 1


# ------------------------------------------------------------------ bad input

def test_colour_missing_from_the_table_fails_and_keeps_the_earlier_dataset(tmp_path, capsys):
    src = write_carla_vd(tmp_path / "carla", n=4)
    out = tmp_path / "data"
    assert cli(["--source-dir", src, "--out", out, "--crop", CROP, "--quiet"], capsys)[0] == 0
    before = digest(out)
    path = src / "_out_seg_city" / "000002.png"
    mask = np.array(Image.open(path))
    mask[40, 90] = (190, 153, 153)          # CityScapes' fence colour: not one of the seed's 20, not ignored
    Image.fromarray(mask).save(path)
    code, _, err = cli(["--source-dir", src, "--out", out, "--crop", CROP, "--force", "--quiet"], capsys)
    assert code == 2 and err.startswith("error: ")
    assert "_out_seg_city/000002.png" in err and "(190,153,153)" in err
    assert "carla20" in err and "--unknown-to-ignore" in err
    assert digest(out) == before                                    # same bytes
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.")] == []
    # asked for: the colour is labelled ignore and counted with the rest
    code, _, err = cli(["--source-dir", src, "--out", tmp_path / "ok", "--crop", CROP, "--unknown-to-ignore",
                        "--quiet"], capsys)
    assert code == 0, err


def test_frame_without_its_mask_fails_and_keeps_the_earlier_dataset(tmp_path, capsys, kaggle):
    calls, served = kaggle
    src = write_carla_vd(tmp_path / "carla", n=4)
    out, cache = tmp_path / "data", tmp_path / "cache"
    served["zip"] = zip_folder(src, tmp_path / "good.zip")
    assert cli(["--out", out, "--cache-dir", cache, "--crop", CROP, "--quiet"], capsys)[0] == 0
    before = digest(out)
    (src / "_out_seg_city" / "000001.png").unlink()
    code, _, err = cli(["--source-dir", src, "--out", out, "--crop", CROP, "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "_out/000001.png" in err and "image without mask" in err and "_out_seg_city/000001" in err
    assert "--skip-bad" in err
    assert digest(out) == before
    # the same through the Kaggle cache (a zip with a missing mask)
    bad_cache = tmp_path / "cache2"
    served["zip"] = zip_folder(src, tmp_path / "bad.zip")
    code, _, err = cli(["--out", out, "--cache-dir", bad_cache, "--crop", CROP, "--quiet"], capsys)
    assert code == 2 and "_out/000001.png" in err and "image without mask" in err
    assert digest(out) == before
    code, _, err = cli(["--source-dir", src, "--out", tmp_path / "skip", "--crop", CROP, "--skip-bad", "--quiet"],
                       capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "skip" / "dataset_splits.json").read_text())
    assert meta["source"]["pairs_used"] == 3 and sum(v["count"] for v in meta["splits"].values()) == 30


# ------------------------------------------------------------------ split by crop (the seed's way)

def test_split_by_crop_leaks_and_split_by_image_never_does(tmp_path):
    src = write_carla_vd(tmp_path / "carla", n=8)

    def where(meta):
        places = {}
        for name, split in meta["splits"].items():
            for s in split["samples"]:
                places.setdefault(s["image"], set()).add(name)
        return places

    by_image = prepare(tmp_path / "i", source_dir=src, crop=CROP, jobs=1, progress=False).metadata
    by_crop = prepare(tmp_path / "c", source_dir=src, crop=CROP, split_by="crop", jobs=2, progress=False).metadata
    assert by_image["split_by"] == "image" and by_crop["split_by"] == "crop"
    assert all(len(v) == 1 for v in where(by_image).values())
    assert sum(len(v) > 1 for v in where(by_crop).values()) >= 4
    counts = {s: v["count"] for s, v in by_crop["splits"].items()}
    assert counts == {"train": 56, "val": 12, "test": 12}            # 80 crops split 70/15/15
    # the same 80 crops (file and offsets) either way, only their splits differ
    crops = lambda meta: sorted((s["image"], s["top"], s["left"]) for v in meta["splits"].values() for s in v["samples"])
    assert crops(by_image) == crops(by_crop)
    check_against_source(tmp_path / "c", lambda rel: np.asarray(Image.open(src / rel).convert("RGB")))
    again = prepare(tmp_path / "c2", source_dir=src, crop=CROP, split_by="crop", jobs=1, progress=False).metadata
    for s in ("train", "val", "test"):
        assert again["splits"][s]["labels"]["sha256"] == by_crop["splits"][s]["labels"]["sha256"]
        assert again["splits"][s]["images"]["sha256"] == by_crop["splits"][s]["images"]["sha256"]


def test_split_by_crop_with_skip_bad_lists_a_bad_pair_once(tmp_path):
    src = write_carla_vd(tmp_path / "carla", n=6)
    (src / "_out" / "000003.png").write_bytes(b"not a png")
    meta = prepare(tmp_path / "d", source_dir=src, crop=CROP, split_by="crop", skip_bad=True, jobs=1,
                   progress=False).metadata
    assert [s["image"] for s in meta["source"]["skipped"]] == ["_out/000003.png"]
    assert meta["source"]["pairs_used"] == 5 and sum(v["count"] for v in meta["splits"].values()) == 50
    check_against_source(tmp_path / "d", lambda rel: np.asarray(Image.open(src / rel).convert("RGB")))


# ------------------------------------------------------------------ help, credentials, registry

def test_help_names_the_seeds_dataset():
    done = subprocess.run([sys.executable, "prepare_dataset.py", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "Default source: Kaggle maelstro/carla-vd-dataset" in " ".join(done.stdout.split())
    assert "CARLA Vision Dataset" in done.stdout and "--split-by {image,folder,crop,official}" in done.stdout


def test_missing_credentials_say_how_to_get_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "UNETBENCH_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sources, "download", lambda slug, dest: pytest.fail("no download without credentials"))
    code, _, err = cli(["--out", tmp_path / "d"], capsys)
    assert code == 2 and err.count("\n") == 1
    for needle in (SLUG, "Settings > API", str(tmp_path / "home" / ".kaggle" / "kaggle.json"), "chmod 600",
                   "KAGGLE_USERNAME", "KAGGLE_KEY", "--source-dir"):
        assert needle in err, needle


def test_registry_entries():
    assert registry.DEFAULT_DATASET == "carla-vd"
    carla = registry.DATASETS["carla-vd"]
    assert carla.kaggle_slug == SLUG and carla.crops_per_image == 10 and carla.crop == (384, 512)
    assert [tuple(c) for c in carla.ignored_colours] == list(IGNORED)
    table = BUILTIN_PALETTES[carla.palette]
    assert [(cid, name, tuple(colour)) for cid, name, colour in table] == list(zip(range(20), NAMES, SEED20))
    for spec in registry.DATASETS.values():     # every entry is usable as it stands
        check_crop_for_models(spec.crop, "--crop")
        assert spec.palette is None or spec.palette in BUILTIN_PALETTES
        assert not spec.ignored_colours or spec.palette
        if spec.palette:
            assert not set(map(tuple, spec.ignored_colours)) & {tuple(c) for _, _, c in BUILTIN_PALETTES[spec.palette]}
        assert spec.layout is None or tuple(n.lower() for n in spec.layout) in FOLDER_PAIRS
    assert registry.DATASETS["lyft-udacity"].crops_per_image == 1


def test_explicit_crops_per_image_is_checked_before_listing(tmp_path):
    with pytest.raises(UserError, match="--crops-per-image"):
        prepare(tmp_path / "d", source_dir=tmp_path, crops_per_image=0, progress=False)
