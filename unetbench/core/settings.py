"""Training settings: one dataclass, defaults = the seed's, config file < command line.

    python3 unet_cpu.py --config my.yaml --epochs 3     # the file sets the rest, the flag wins

Every field is a flag (``--batch-size``), and may appear in a YAML or JSON config file under
the same name (``batch_size: 16``). The resolved settings are written into the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence

from .errors import UserError
from .parsing import RaisingArgumentParser, plain_name
from .registry import BACKENDS, DEFAULT_MODEL, MODELS, PROFILES


@dataclass
class Settings:
    splits: str = "data/dataset_splits.json"
    out: str = "results"
    run_name: Optional[str] = None          # default: the backend name (results_cuda.json)
    profile: str = "parity"
    model: str = DEFAULT_MODEL
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-4
    lr_patience: int = 3                    # ReduceLROnPlateau on validation loss
    lr_factor: float = 0.5
    nonfinite_patience: int = 0             # training steps with a NaN/inf loss tolerated (health.py)
    workers: int = 4
    seed: int = 42
    warmup_steps: int = 5                   # per process; excluded from steady-state figures
    max_steps_per_epoch: Optional[int] = None
    log_every: int = 50
    model_width: int = 64                   # 64 = the seed's UNet; smaller only for smoke tests
    weights: Optional[str] = None           # local state dict to start from (models/weights.py)
    compile_mode: Optional[str] = None      # torch.compile mode for CUDA fast (None = default)
    compile_cache: Optional[str] = None     # inductor cache folder (default: OUT/compile_cache)
    allow_tf32: bool = False                # CUDA parity: permit TF32 convolutions/matmuls
    resume: bool = False                    # continue from last_<run>.pth (must exist)
    auto_resume: bool = False               # continue if last_<run>.pth exists, else start fresh
    restart: bool = False                   # start over although an unfinished last_<run>.pth exists
    target_miou: Optional[float] = None     # time to quality: validation mIoU to reach (training/time_to_target.py)
    eval_every: Optional[int] = None        # also evaluate every N training steps (time to target)
    stop_at_target: bool = False            # end training once target_miou is reached
    overlay_images: int = 6                 # test images predicted at the end (training/overlays.py); 0: none
    trace_steps: int = 0                    # steps after warm-up under torch.profiler (trace.py); 0: none
    cooldown_s: float = 0.0                 # idle wait before the idle baseline and warm-up (energy_windows.py)
    idle_s: float = 2.0                     # idle baseline read before warm-up, where a meter reads; 0: none
    no_peak: bool = False                   # skip the device's matmul peak before warm-up (training/peak.py)


HELP = {
    "splits": "dataset_splits.json written by prepare_dataset.py",
    "out": "folder for results_<run>.json and checkpoints",
    "run_name": "name in output files (default: the backend name)",
    "profile": "parity: identical fp32 math on every device; fast: each device at its best",
    "model": "network to train (unetbench/core/registry.py)",
    "epochs": "training epochs", "batch_size": "samples per step per device", "lr": "Adam learning rate",
    "lr_patience": "epochs without validation-loss improvement before the LR drops",
    "lr_factor": "LR multiplier on plateau", "workers": "data-loader worker processes",
    "seed": "seed for weights, shuffling and flips", "warmup_steps": "steps excluded from steady-state timing",
    "max_steps_per_epoch": "cap on training steps per epoch (smoke runs)",
    "log_every": "steps between plain progress lines in batch logs",
    "model_width": "model width: 64 = every model at its published size (the UNet's first level has 64 "
                   "channels; ResUNet++ scales by width/64; DeepLabV3 takes only 64); smaller for smoke tests",
    "weights": "local state dict to start from (transfer learning), e.g. ImageNet ResNet-101 or COCO "
               "DeepLabV3 weights fetched on the login node; strict about which tensors load",
    "compile_mode": "torch.compile mode in the CUDA fast profile, e.g. max-autotune-no-cudagraphs",
    "compile_cache": "compiled-kernel cache reused across runs (default: OUT/compile_cache)",
    "allow_tf32": "allow TF32 in the CUDA parity profile (recorded in the results)",
    "resume": "continue from OUT/last_<run>.pth; error if it is missing",
    "auto_resume": "continue from OUT/last_<run>.pth when it exists (what batch jobs use)",
    "restart": "start over although OUT/last_<run>.pth holds an unfinished run (it is replaced)",
    "nonfinite_patience": "training steps with a NaN or infinite loss tolerated before the run fails",
    "target_miou": "validation mIoU (between 0 and 1) whose first reaching is timed: time to quality",
    "eval_every": "also evaluate on the validation split every N training steps (time counted)",
    "stop_at_target": "stop training once --target-miou is reached (then test)",
    "overlay_images": "test images predicted with the best checkpoint for the report's overlays (0: none)",
    "trace_steps": "steps after warm-up run under torch.profiler: a trace in OUT and the top operations in the results; not in the throughput (0: none)",
    "cooldown_s": "seconds the device idles before the idle baseline and warm-up, so that a device still hot from "
                  "an earlier job does not inflate the energy figures (hotter silicon leaks more); 0: none",
    "idle_s": "seconds of idle power read before warm-up (only where an energy meter reads): the baseline of "
              "net J/sample; 0: none",
    "no_peak": "skip measuring the device's dense matmul peak (a few seconds before warm-up, the yardstick of "
               "the results' share of peak); the results then record why there is none",
}

POSITIVE = {"model_width", "epochs", "batch_size", "lr", "lr_factor", "log_every", "max_steps_per_epoch", "eval_every"}
NON_NEGATIVE = {"nonfinite_patience", "lr_patience", "workers", "seed", "warmup_steps", "overlay_images", "trace_steps",
                "cooldown_s", "idle_s"}


SEED_MAX = 2**32 - 1   # numpy's seeds are 32-bit; a larger one fails deep inside the run


def _check(name: str, value) -> None:
    if name == "run_name" and value is not None:
        plain_name(value, "--run-name")   # it names files: results_<run>.json
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name.replace('_', '-')} must be a finite number, got {value}")
    if name == "seed" and value > SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX}, got {value}")
    if name in POSITIVE and not value > 0:
        raise ValueError(f"{name.replace('_', '-')} must be positive, got {value}")
    if name in NON_NEGATIVE and value < 0:
        raise ValueError(f"{name.replace('_', '-')} must not be negative, got {value}")
    if name == "lr_factor" and not value < 1:
        raise ValueError(f"lr-factor must be below 1, got {value}")
    if name == "target_miou" and not 0 < value <= 1:
        raise ValueError(f"target-miou is a mIoU, between 0 and 1 (e.g. 0.5), got {value}")


def _typed(name: str, kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        try:
            _check(name, value)
        except (ValueError, UserError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value
    return parse


def _field_type(f: dataclasses.Field) -> type:
    text = str(f.type)
    return int if "int" in text else float if "float" in text else bool if "bool" in text else str


CHOICES = {"profile": PROFILES, "model": tuple(MODELS)}


def build_parser(prog: str | None = None, description: str | None = None, backend_choice: bool = False,
                 raising: bool = False) -> argparse.ArgumentParser:
    parser = (RaisingArgumentParser if raising else argparse.ArgumentParser)(prog=prog, description=description)
    if backend_choice:
        parser.add_argument("--backend", required=True, choices=tuple(BACKENDS))
    parser.add_argument("--config", help="YAML or JSON file of settings; command-line flags win")
    for f in fields(Settings):
        option = flag(f.name)
        kind = _field_type(f)
        text = HELP[f.name] if f.default in (None, False) else f"{HELP[f.name]} (default: {f.default})"
        if kind is bool:
            parser.add_argument(option, action="store_true", default=None, help=text)
        elif f.name in CHOICES:
            parser.add_argument(option, choices=CHOICES[f.name], default=None, help=text)
        else:
            parser.add_argument(option, type=_typed(f.name, kind), default=None, metavar=kind.__name__.upper(), help=text)
    return parser


def load_config_file(path: str) -> dict:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read config file {p}: {err.strerror}; check the --config path") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml  # only needed for YAML configs
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as err:  # yaml.YAMLError / json.JSONDecodeError: both user errors here
        raise UserError(f"config file {p} is not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must hold a mapping of setting names to values")
    return data


def resolve(args: argparse.Namespace) -> Settings:
    """Defaults < config file < command line; every value validated."""
    values = {}
    if getattr(args, "config", None):
        known = {f.name: f for f in fields(Settings)}
        for key, value in load_config_file(args.config).items():
            name = key.replace("-", "_")
            if name not in known:
                raise UserError(f"config file {args.config}: unknown setting {key!r}; "
                                f"known settings: {', '.join(sorted(known))}")
            values[name] = _coerce(name, value, _field_type(known[name]), args.config)
    for f in fields(Settings):
        cli_value = getattr(args, f.name, None)
        if cli_value is not None:
            values[f.name] = cli_value
    settings = Settings(**values)
    if settings.resume and settings.auto_resume:
        raise UserError("choose one of --resume and --auto-resume")
    if settings.restart and (settings.resume or settings.auto_resume):
        raise UserError("--restart starts over; it cannot be combined with --resume or --auto-resume")
    if settings.stop_at_target and settings.target_miou is None:
        raise UserError("--stop-at-target needs --target-miou X (the validation mIoU to stop at)")
    for name, allowed in CHOICES.items():
        if getattr(settings, name) not in allowed:
            raise UserError(f"{name} must be one of {', '.join(allowed)}, got {getattr(settings, name)!r}")
    return settings


def _coerce(name: str, value, kind: type, source: str):
    if value is None:
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise UserError(f"config file {source}: {name} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or (kind is str) != isinstance(value, str):   # YAML true is no 1
        what = "a text" if kind is str else "a number"
        raise UserError(f"config file {source}: {name} must be {what}, got {value!r}")
    try:
        typed = kind(value)
        if kind is int and typed != value:
            raise ValueError
        _check(name, typed)
    except UserError as err:
        raise UserError(f"config file {source}: {err}") from None
    except (TypeError, ValueError) as err:
        detail = str(err) or f"expected {kind.__name__}, got {value!r}"
        raise UserError(f"config file {source}: {name}: {detail}") from None
    return typed


def parse_settings(argv: Sequence[str] | None, prog: str | None = None, description: str | None = None,
                   backend_choice: bool = False, raising: bool = False) -> tuple[Settings, argparse.Namespace]:
    """``raising=True``: a bad flag raises UserError instead of printing usage and exiting."""
    args = build_parser(prog, description, backend_choice, raising).parse_args(argv)
    return resolve(args), args


def flag(name: str) -> str:
    """The command-line spelling of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")
