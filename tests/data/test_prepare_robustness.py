"""Every failure preparation can meet: one clear line naming the file or setting, exit 2, no
traceback, and the previous dataset untouched; plus its progress lines and import structure.

Run: .venv/bin/python -m pytest tests/data/test_prepare_robustness.py -q
"""

from __future__ import annotations

import ast
import errno
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import write_index, write_lyft
from helpers import REPO, run_prepare_cli
from PIL import Image

from unetbench.core.errors import UserError
from unetbench.core.progress_bar import Progress
from unetbench.data.prepare import api, out_folder, sources, writer

CROP = "32x48"


run = run_prepare_cli  # prepare_dataset.py in-process


def fail(argv, capsys, *needles):
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, err
    return err


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def src(tmp_path):
    return write_index(tmp_path / "src", n=6)


def base(src, out):
    return ["--source-dir", src, "--out", out, "--crop", CROP]


def test_corrupt_image_keeps_previous_dataset(tmp_path, src, capsys):
    out = tmp_path / "data"
    assert run(base(src, out), capsys)[0] == 0
    before = digest(out)
    (src / "rgb" / "0003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not a png")
    fail(base(src, out) + ["--force"], capsys, "rgb/0003.png", "cannot decode image", "--skip-bad")
    assert digest(out) == before  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.")] == []  # staging removed


def test_truncated_image(tmp_path, src, capsys):
    path = src / "rgb" / "0002.png"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fail(base(src, tmp_path / "d"), capsys, "rgb/0002.png", "corrupt or truncated")


def test_zero_byte_mask(tmp_path, src, capsys):
    (src / "seg" / "0001.png").write_bytes(b"")
    fail(base(src, tmp_path / "d"), capsys, "seg/0001.png", "empty file")


def test_size_mismatch(tmp_path, src, capsys):
    Image.new("L", (40, 30)).save(src / "seg" / "0004.png")
    fail(base(src, tmp_path / "d"), capsys, "rgb/0004.png", "80x60", "40x30")


def test_image_without_mask_and_mask_without_image(tmp_path, src, capsys):
    (src / "seg" / "0000.png").rename(tmp_path / "moved.png")
    fail(base(src, tmp_path / "d"), capsys, "rgb/0000.png", "image without mask", "--skip-bad")
    (tmp_path / "moved.png").rename(src / "seg" / "0000.png")
    (src / "rgb" / "0005.png").unlink()
    fail(base(src, tmp_path / "d"), capsys, "seg/0005.png", "mask without image")


def test_skip_bad_skips_and_reports(tmp_path, capsys):
    src = write_index(tmp_path / "src", n=12)   # enough pairs that every split keeps some
    (src / "rgb" / "0001.png").write_bytes(b"not an image")
    (src / "seg" / "0004.png").unlink()
    Image.new("L", (80, 60), 40).save(src / "seg" / "0002.png")  # id 40 >= 13 classes
    out = tmp_path / "d"
    code, _, err = run(base(src, out) + ["--skip-bad"], capsys)
    assert code == 0, err
    meta = json.loads((out / "dataset_splits.json").read_text())
    reasons = {(s["image"] or s["mask"]): s["reason"] for s in meta["source"]["skipped"]}
    assert set(reasons) == {"rgb/0001.png", "rgb/0004.png", "rgb/0002.png"}
    assert meta["source"]["pairs_used"] == 9 and meta["source"]["pairs_skipped"] == 3
    total = 0
    for split in meta["splits"].values():  # holes compacted: shapes, counts and checksums agree
        for key in ("images", "labels"):
            path = out / split[key]["file"]
            assert list(np.load(path, mmap_mode="r").shape) == split[key]["shape"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == split[key]["sha256"]
        labels = np.load(out / split["labels"]["file"])
        assert split["class_pixel_counts"] == np.bincount(labels.ravel(), minlength=13).tolist()
        total += split["count"]
    assert total == 9


def test_no_pairs_found(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    fail(["--source-dir", folder, "--out", tmp_path / "d"], capsys, "no image/mask pairs", "CameraRGB/CameraSeg")


def test_unreadable_folder(tmp_path, src, capsys, monkeypatch):
    # root ignores chmod, so the permission error is injected where the listing happens
    real = os.scandir

    def scandir(path):
        if str(path).endswith("seg"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sources, "_scandir", scandir)
    fail(base(src, tmp_path / "d"), capsys, str(src / "seg"), "permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_real_chmod(tmp_path, src, capsys):
    (src / "seg").chmod(0)
    try:
        fail(base(src, tmp_path / "d"), capsys, "permission denied")
    finally:
        (src / "seg").chmod(0o755)


def test_crop_larger_than_image(tmp_path, src, capsys):
    fail(["--source-dir", src, "--out", tmp_path / "d", "--crop", "384x512"], capsys,
         "smaller than --crop 384x512", "choose a smaller --crop")


def test_label_out_of_range_and_ignore_flag(tmp_path, capsys):
    # pictures as large as the crop (a size the UNet takes): every bad pixel lands in the crop
    src = write_index(tmp_path / "src", n=6, size=(64, 80))
    label = np.zeros((64, 80), dtype=np.uint8)
    label[10:20, 10:20] = 77
    Image.fromarray(label, mode="L").save(src / "seg" / "0003.png")
    fail(["--source-dir", src, "--out", tmp_path / "d", "--crop", "64x80"], capsys,
         "seg/0003.png", "class id(s) 77", "--unknown-to-ignore")
    out = tmp_path / "ok"
    code, _, err = run(["--source-dir", src, "--out", out, "--crop", "64x80", "--unknown-to-ignore"], capsys)
    assert code == 0, err
    meta = json.loads((out / "dataset_splits.json").read_text())
    assert meta["ignore_index"] == 255
    all_labels = np.concatenate([np.load(out / f"{s}_labels.npy").ravel() for s in ("train", "val", "test")])
    assert (all_labels == 255).sum() == 100


def test_unknown_palette_colour(tmp_path, capsys):
    from dataset_fixtures import write_flat_palette
    flat = write_flat_palette(tmp_path / "flat", n=3)
    mask = np.array(Image.open(flat / "masks" / "frame_001.png"))
    mask[:, :] = (1, 2, 3)
    Image.fromarray(mask).save(flat / "masks" / "frame_001.png")
    fail(["--source-dir", flat, "--out", tmp_path / "d", "--crop", CROP, "--palette", "carla13"], capsys,
         "masks/frame_001.png", "(1,2,3)", "not in the palette")


@pytest.mark.parametrize("ratios,needle", [("0.5,0.2", "three ratios"), ("0.7,0.2,0.2", "sum to 1.1"),
                                           ("1.2,-0.1,-0.1", "non-negative"), ("a,b,c", "three numbers"),
                                           ("0,0.5,0.5", "train ratio")])
def test_bad_split_ratios(tmp_path, capsys, ratios, needle):
    fail(["--synthetic", "--num-images", "4", "--out", tmp_path / "d", f"--split={ratios}"], capsys, "--split", needle)


@pytest.mark.parametrize("crop", ["384", "0x5", "axb"])
def test_bad_crop(tmp_path, capsys, crop):
    fail(["--synthetic", "--num-images", "4", "--out", tmp_path / "d", "--crop", crop], capsys, "--crop")


def test_crop_the_unet_cannot_take_keeps_previous_dataset(tmp_path):
    out = tmp_path / "d"
    api.prepare_synthetic(out, num_images=6, crop=(32, 48))
    before = digest(out)
    done = subprocess.run([sys.executable, "prepare_dataset.py", "--synthetic", "--crop", "100x100", "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: --crop 100x100"), done.stderr
    assert "multiples of 16" in done.stderr and "Traceback" not in done.stderr
    assert digest(out) == before  # same bytes of dataset_splits.json and every array
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no staging folder either


def test_crop_is_checked_before_any_download(tmp_path, monkeypatch):
    def must_not_run(slug, dest):
        raise AssertionError("a crop no model can take must be refused before downloading")

    monkeypatch.setattr(sources, "download", must_not_run)
    with pytest.raises(UserError, match="multiples of 16"):  # the Python API is checked too
        api.prepare(tmp_path / "d", crop=(100, 100), cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "d").exists()


def test_zip_that_is_not_a_zip(tmp_path, capsys):
    fake = tmp_path / "data.zip"
    fake.write_bytes(b"<html>403 Forbidden</html>")
    fail(["--source-dir", fake, "--out", tmp_path / "d"], capsys, str(fake), "not a zip")


def test_missing_source(tmp_path, capsys):
    fail(["--source-dir", tmp_path / "nope", "--out", tmp_path / "d"], capsys, "does not exist")


def test_missing_credentials_no_import(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "UNETBENCH_CACHE"):
        monkeypatch.delenv(var, raising=False)

    def must_not_run(slug, dest):
        raise AssertionError("download must not be attempted without credentials")

    monkeypatch.setattr(sources, "download", must_not_run)
    fail(["--out", tmp_path / "d"], capsys, "no Kaggle credentials", "kaggle.json", "--source-dir")


def test_missing_credentials_subprocess_never_imports_kaggle(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env["HOME"] = str(tmp_path)
    code = ("import sys, runpy; sys.argv=['prepare_dataset.py','--out',%r,'--cache-dir',%r];\n"
            "try:\n runpy.run_path('prepare_dataset.py', run_name='__main__')\n"
            "except SystemExit as e:\n print('kaggle imported' if 'kaggle' in sys.modules else 'clean', e.code)\n"
            % (str(tmp_path / "d"), str(tmp_path / "c")))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "clean 2", done.stdout + done.stderr
    assert "no Kaggle credentials" in done.stderr and "Traceback" not in done.stderr


def test_failed_download(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key-123")

    def broken(slug, dest):
        (Path(dest) / "partial.zip").write_bytes(b"PK\x03\x04 half")
        raise ConnectionError("Max retries exceeded with url: /api/v1/datasets/download")

    monkeypatch.setattr(sources, "download", broken)
    cache = tmp_path / "cache"
    err = fail(["--out", tmp_path / "d", "--cache-dir", cache], capsys, "download of Kaggle dataset", "Max retries")
    assert "secret-key-123" not in err
    # nothing half-downloaded is kept as if it were the dataset
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_full_disk_while_allocating(tmp_path, src, capsys, monkeypatch):
    out = tmp_path / "data"
    assert run(base(src, out), capsys)[0] == 0
    before = digest(out)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "posix_fallocate", no_space)
    fail(base(src, out) + ["--force"], capsys, "no space left", "--out")
    assert digest(out) == before


def test_not_enough_free_space_checked_first(tmp_path, capsys, monkeypatch):
    class Usage:
        total, used, free = 10 ** 9, 10 ** 9, 1000

    monkeypatch.setattr(out_folder.shutil, "disk_usage", lambda path: Usage)
    err = fail(["--synthetic", "--num-images", "8", "--crop", CROP, "--out", tmp_path / "d"], capsys,
               "not enough space", "KiB and", "has 1000 bytes free")
    assert "0.00" not in err   # sizes in the unit that shows them, not "needs 0.00 GiB, has 0.00 GiB"


def test_out_folder_with_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    fail(["--synthetic", "--num-images", "4", "--crop", CROP, "--out", out], capsys, "choose an empty or new folder")
    assert (out / "thesis.tex").read_text() == "precious"


def test_cli_subprocess_exit_code_and_single_line(tmp_path):
    done = subprocess.run([sys.executable, "prepare_dataset.py", "--source-dir", str(tmp_path / "x"),
                           "--out", str(tmp_path / "d")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")


def test_split_by_folder_needs_enough_folders(tmp_path, capsys):
    src = write_lyft(tmp_path / "lyft", folders=("dataA", "dataB"), per_folder=2)
    fail(["--source-dir", src, "--out", tmp_path / "d", "--crop", CROP, "--split-by", "folder"], capsys,
         "2 folder(s)", "--split-by image")


# ------------------------------------------------------------------ progress lines in a batch log

def test_prepare_logs_a_line_every_tenth_in_a_batch_log(tmp_path):
    def progress_lines(num_images: int, out: Path) -> list:
        # a subprocess: pipes, not a terminal, as in a Slurm job's log
        done = subprocess.run([sys.executable, "prepare_dataset.py", "--synthetic", "--num-images", str(num_images),
                               "--crop", "16x16", "--out", str(out), "--jobs", "1"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return [line for line in done.stdout.splitlines() if line.startswith("progress: ")]

    lines = progress_lines(200, tmp_path / "d")
    assert len(lines) == 10, lines
    assert re.fullmatch(r"progress: 20/200 images \(10%\), [0-9.]+ images/s", lines[0]), lines[0]
    assert lines[-1].startswith("progress: 200/200 images (100%)")
    assert progress_lines(40, tmp_path / "e") == []  # a small run: the summary line is enough


def test_training_progress_lines_every_n_steps_and_at_the_end():
    stream = io.StringIO()
    progress = Progress(7, "epoch 1/2", 3, stream=stream)
    for _ in range(7):
        progress.update(4)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch 1/2: step 3/7", "epoch 1/2: step 6/7",
                                                      "epoch 1/2: step 7/7"]
    assert re.fullmatch(r"epoch 1/2: step 7/7, ~[0-9.]+ samples/s \(host clock\)", lines[-1]), lines[-1]
    quiet = io.StringIO()
    progress = Progress(7, "epoch 1/2", 3, stream=quiet, enabled=False)  # DDP ranks other than 0
    progress.update(4)
    assert quiet.getvalue() == ""


# ------------------------------------------------------------------ structure

def test_no_import_cycles_in_the_prepare_package():
    """No module of unetbench/data/prepare imports (even lazily, inside a function) one that imports it back."""
    package = REPO / "unetbench" / "prepare"
    names = {p.stem for p in package.glob("*.py")}
    graph = {}
    for path in package.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unetbench.data.prepare."):
                deps.add(node.module.split(".")[2])
        graph[path.stem] = deps & names

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    assert [name for name in sorted(graph) if name in reachable(name)] == []


def test_skip_bad_that_skips_every_pair_writes_nothing_and_fails(tmp_path, src, capsys):
    out = tmp_path / "d"
    for mask in (src / "seg").iterdir():
        mask.write_bytes(b"not a mask")
    err = fail(base(src, out) + ["--skip-bad", "--encoding", "index"], capsys, "splits would be empty",
               "--skip-bad skipped 6 bad pair(s)",
               "nothing was written")
    assert "Traceback" not in err
    assert not out.exists()


def test_a_training_set_of_one_class_is_warned_about(tmp_path, src, capsys):
    for mask in (src / "seg").iterdir():   # masks read as all background: the wrong dataset's settings
        Image.new("L", (80, 60), 0).save(mask)
    code, out, err = run(base(src, tmp_path / "d") + ["--encoding", "index", "--num-classes", "3"], capsys)
    assert code == 0, err
    assert "warning: every labelled training pixel is class 0" in out and "check --dataset and --encoding" in out


def test_a_full_cache_while_extracting_a_tar_names_the_cache_not_the_archive(tmp_path, src, monkeypatch):
    import tarfile
    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="src")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(UserError) as err:
        sources.open_source(archive, cache_dir=tmp_path / "cache")
    assert "no space left on the device holding" in str(err.value) and "--cache-dir" in str(err.value)
    assert "download it again" not in str(err.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], "nothing half-extracted is kept"


def test_a_failed_write_names_the_file_that_failed(tmp_path, src, capsys, monkeypatch):
    finish = writer.finish_file

    def labels_fail(path):
        if "labels" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return finish(path)

    monkeypatch.setattr(api, "finish_file", labels_fail)
    err = fail(base(src, tmp_path / "d"), capsys, "no space left on the device holding", "_labels.npy")
    assert "_images.npy" not in err


def test_an_out_path_under_a_file_says_what_is_in_the_way(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    err = fail(["--synthetic", "--num-images", "4", "--crop", CROP, "--out", tmp_path / "notes.txt" / "data"], capsys,
               "a part of that path is a file, not a folder", "--out")
    assert "File exists" not in err and "Not a directory" not in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("code, words", [(errno.EBUSY, "it is in use"), (errno.ENOENT, "disappeared while writing")])
def test_publishing_over_a_busy_or_vanished_folder_says_why(tmp_path, src, capsys, monkeypatch, code, words):
    out = tmp_path / "data"
    assert run(base(src, out), capsys)[0] == 0
    before = digest(out)
    rename = os.rename

    def failing(a, b):
        if Path(a) == out:
            raise OSError(code, os.strerror(code))
        return rename(a, b)

    monkeypatch.setattr(writer.os, "rename", failing)
    err = fail(base(src, out) + ["--force"], capsys, words, "--out")
    assert os.strerror(code) not in err
    assert digest(out) == before


@pytest.mark.parametrize("foreign", ["notes.txt", "results/", "kvasir-seg/"])
def test_re_preparing_never_deletes_what_prepare_did_not_write(tmp_path, src, capsys, foreign):
    out = tmp_path / "data"
    assert run(base(src, out), capsys)[0] == 0
    thing = out / foreign.rstrip("/")
    if foreign.endswith("/"):
        thing.mkdir()
        (thing / "kept.txt").write_text("mine")
    else:
        thing.write_text("mine")
    fail(base(src, out) + ["--force", "--seed", "9"], capsys, f"holds {foreign} beside the dataset",
         "move them out", "--out")
    assert thing.exists()


def test_a_second_prepare_into_a_folder_being_written_is_refused_naming_the_first(tmp_path, src, capsys):
    import json as _json
    import socket

    from unetbench.core.output_lock import lock_path
    out = tmp_path / "data"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:   # the first prepare, as its lock records it: alive, on this host
        lock_path(out).write_text(_json.dumps({"host": socket.gethostname(), "pid": alive.pid,
                                               "tool": "prepare_dataset.py", "started": "2026-12-04T10:00:00"}))
        fail(base(src, out), capsys, "is being written by prepare_dataset.py (pid", "choose another --out",
             str(lock_path(out)))
        assert not out.exists()
    finally:
        alive.kill()
        alive.wait()
    # its process gone (killed, never unlocked): the lock is taken over, and released after
    assert run(base(src, out), capsys)[0] == 0
    assert not lock_path(out).exists()
