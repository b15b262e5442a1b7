"""compare_results.py where torch cannot be imported, as on a login node or a laptop without it.

The comparison job needs no device: the report (tables, plots, prediction overlays) must run in
a Python where ``import torch`` fails. The report runs in a subprocess whose import system
refuses torch and torchvision and logs every attempt with the line that made it, so a guarded
``try: import torch`` in a report module fails the test too. The overlays file is written here
with numpy alone, in the format unetbench/core/overlay_file.py documents.
"""

from __future__ import annotations

import numpy as np
from helpers import run_script
from results_fixtures import make_result, write_result

# Runs the script named by argv[1] (with the rest as its arguments) in a Python where every import
# of torch or torchvision fails as if it were not installed; each attempt is logged to $TORCH_IMPORT_LOG.
WITHOUT_TORCH = r'''
import os, runpy, sys, traceback

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in ("torch", "torchvision"):
            return None
        frames = [f for f in traceback.extract_stack() if not f.filename.startswith("<")
                  and "importlib" not in f.filename]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        with open(os.environ["TORCH_IMPORT_LOG"], "a") as fh:
            fh.write(f"import {name} from {where}\n")
        raise ImportError(f"No module named {name!r} (blocked by the test)", name=name)

sys.meta_path.insert(0, NoTorch())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''

COLOURS = [[0, 0, 0], [128, 64, 128], [0, 0, 142], [220, 20, 60], [70, 130, 180]]   # results_fixtures' 5 classes


def write_overlays_npz(folder, result: dict, flipped: float, seed: int) -> None:
    """overlays_<run>.npz with numpy only: two 32x48 test images, their labels, this run's predictions
    (the labels with a share of pixels changed), indices, per-image IoU, class colours, no ignore index."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((2, 32, 48), np.uint8)
    labels[:, 16:] = 1
    labels[:, :8] = 4
    labels[0, 16:24, 5:20], labels[1, 16:24, 25:40] = 2, 3
    images = (np.array(COLOURS, np.uint8)[labels] * 0.8 + 20).astype(np.uint8)
    predictions = labels.copy()
    changed = rng.random(labels.shape) < flipped
    predictions[changed] = rng.integers(0, len(COLOURS), int(changed.sum()))
    iou = [0.9 - flipped, float("nan")]                       # nan: an image with no IoU
    name = f"overlays_{result['run_name']}.npz"
    np.savez_compressed(folder / name, images=images, labels=labels, predictions=predictions,
                        indices=np.array([3, 7]), iou=np.array(iou), colours=np.array(COLOURS, np.uint8),
                        ignore_index=np.array(-1))
    result["overlays"] = {"file": name, "indices": [3, 7], "iou": [iou[0], None], "split_seed": 0}


def run_without_torch(args, tmp_path):
    log = tmp_path / "torch_imports.log"
    proc = run_script(["-c", WITHOUT_TORCH, *args], env={"TORCH_IMPORT_LOG": str(log)})
    return proc, (log.read_text() if log.exists() else "")


def test_the_stand_in_refuses_torch_and_names_who_asked(tmp_path):
    script = tmp_path / "wants_torch.py"
    script.write_text("try:\n    import torch\nexcept ImportError as err:\n    print('refused:', err)\n")
    proc, log = run_without_torch([script], tmp_path)
    assert proc.returncode == 0 and "refused: No module named 'torch'" in proc.stdout, proc.stderr
    assert log == f"import torch from {script}:2\n"


def test_the_report_and_its_overlays_are_drawn_without_torch(tmp_path):
    results, report = tmp_path / "results", tmp_path / "report"
    results.mkdir()
    for backend, flipped in (("cpu", 0.05), ("cuda", 0.2)):
        res = make_result(backend, crop=(32, 48))
        write_overlays_npz(results, res, flipped, seed=len(backend))
        write_result(results, res)
    proc, log = run_without_torch(["compare_results.py", results, "--report-dir", report, "-q"], tmp_path)
    assert log == "", "a report module imported torch:\n" + log
    assert proc.returncode == 0, proc.stdout + proc.stderr
    overlays = sorted(report.rglob("overlay_*.png"))
    assert [p.name for p in overlays] == ["overlay_1.png", "overlay_2.png"], sorted(report.rglob("*"))
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in overlays)
    html = (report / "report.html").read_text()
    assert "Prediction overlays" in html and html.count('alt="overlay ') == 2
