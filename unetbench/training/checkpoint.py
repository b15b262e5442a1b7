"""Checkpoints: ``best_unet_<run>.pth`` (weights) and a resumable ``last_<run>.pth``.

    save_checkpoint(path, state)                 # temp file + rename: never half-written
    state = load_checkpoint(path)                 # weights_only=True: no pickled code runs
    check_identity(state, path, identity)         # refuse another dataset's or other settings' run

Random-number states are stored as tensors and plain tuples so that ``weights_only`` loading
works (numpy's state array would otherwise need pickle).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..core.atomic import atomic_path
from ..core.errors import UserError
from ..models.weights import load_problem

# Settings that must match for a checkpoint to continue: anything else (workers, log
# frequency, output folder) may change between attempts without changing the result.
RESUME_SETTINGS = ("batch_size", "profile", "epochs", "lr", "seed", "model", "model_width")


def checkpoint_paths(out_dir: str | Path, run_name: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    return out / f"best_unet_{run_name}.pth", out / f"last_{run_name}.pth"


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} not found; run without --resume to start fresh") from None
    except IsADirectoryError:
        raise UserError(f"checkpoint {path} is a folder, not a file; move it away to start fresh") from None
    except Exception as err:  # truncated or foreign file: torch raises several types
        raise UserError(f"checkpoint {path} is unreadable ({load_problem(err)}); "
                        "delete it (or use another --run-name/--out) to start fresh") from None


# What a resumable checkpoint (Trainer._checkpoint) holds; energy is optional (older files).
RESUMABLE_KEYS = ("model", "optimizer", "scheduler", "progress", "timing", "rng", "identity")


def check_identity(state: dict, path: str | Path, identity: dict) -> None:
    """Refuse to resume ``state`` (a last_<run>.pth) into a run with ``identity``: another
    dataset split file or other settings would mix two experiments in one result; a file of
    another kind (best weights, a plain state dict) or one missing a part is named as such."""
    if not isinstance(state, dict) or "identity" not in state:
        kind = ("a best-weights file (best_unet_<run>.pth: for --weights)"
                if isinstance(state, dict) and "val_miou" in state else "not a checkpoint of this suite")
        raise UserError(f"{path} is {kind}, not a resumable last_<run>.pth; pass --weights to start from its "
                        "weights, or delete it (or use another --run-name/--out) to start fresh")
    missing = [key for key in RESUMABLE_KEYS if key not in state]
    if missing:
        raise UserError(f"checkpoint {path} lacks its {', '.join(missing)} (damaged or written by another "
                        "tool); delete it (or use another --run-name/--out) to start fresh")
    saved = state.get("identity", {})
    if saved.get("splits_sha256") != identity["splits_sha256"]:
        raise UserError(f"checkpoint {path} was trained on a different dataset split file; "
                        "delete it or use another --run-name/--out")
    for key in RESUME_SETTINGS:
        before, now = saved.get("settings", {}).get(key), identity["settings"][key]
        if before != now:
            raise UserError(f"checkpoint {path} used {key}={before!r}, this run {now!r}; "
                            "resume with the same settings or start fresh")


def restore(target, state, path: str | Path, part: str) -> None:
    """``target.load_state_dict(state)`` (a model, an optimiser, a scheduler), refused with one
    line naming the checkpoint and the part when they do not fit."""
    try:
        target.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint {path}: its {part} does not fit this run ({first}); delete it (or use "
                        "another --run-name/--out) to start fresh") from None


def host_rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}


def set_host_rng_state(state: dict) -> None:
    random.setstate(_tuplify(state["python"]))
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, (list, tuple)) else value
