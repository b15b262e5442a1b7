"""--weights PATH: start a model from a local state dict (transfer learning), strict about what loads.

    python3 unet_cuda.py --model deeplabv3_resnet101 --weights ~/weights/resnet101-cd907fc2.pth
    report = load_weights(model, "best_unet_cpu.pth", "unet", num_classes=2)   # -> one line for the log

Accepted files: a plain state dict (torch.save(model.state_dict())), a checkpoint of this suite
(best_unet_<run>.pth / last_<run>.pth: its "model"), a {"state_dict": ...} file; keys may carry
DDP's "module." or torch.compile's "_orig_mod." prefix. The file's keys are matched to the model
directly, or under the model's own wrappers: torchvision's DeepLabV3 weights (COCO: backbone.*,
classifier.*) and ResNet-101 ImageNet weights (conv1.*, layer1.*..., whose fc.* is dropped) both
load into deeplabv3_resnet101. Strict: every tensor of the file must land in the model with its
shape, except an output layer sized for another class count (re-initialised, said so) and heads
the model does not have (fc.*, aux_classifier.*, named in the report). A file for another model is
refused with one line that names the model it belongs to.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..core.errors import UserError

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# where a file's keys may sit inside the model: whole model, torchvision's model in our wrapper,
# an ImageNet classifier's body as the segmentation backbone
PLACEMENTS = ("", "net.", "net.backbone.")
# heads of the source network that the models here do not have
FOREIGN_HEADS = ("fc.", "aux_classifier.")


def read_state_dict(path: str) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--weights {p}: no such file; give a state dict saved with torch.save (fetch "
                        "pretrained weights on the login node, compute nodes have no internet)")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:   # pickle, zip or version errors: all mean "not a usable weights file"
        raise UserError(f"--weights {p}: cannot be read as PyTorch weights ({load_problem(err)}); "
                        "give a file saved with torch.save(model.state_dict())") from None
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserError(f"--weights {p}: holds no state dict (a mapping of names to tensors); give a file saved "
                        "with torch.save(model.state_dict())")
    clean = {}
    for key, value in data.items():
        for prefix in WRAPPER_PREFIXES:
            key = key[len(prefix):] if key.startswith(prefix) else key
        clean[key] = value
    return clean


def _owner(keys: set, this: str) -> str | None:
    """The registered model (other than ``this``) whose parameters the keys are, if any."""
    from ..core.registry import MODELS, resolve
    for name, spec in MODELS.items():
        if name == this:
            continue
        try:
            with torch.device("meta"):
                own = set(resolve(spec.builder)(3, 2, 64).state_dict())
        except Exception:   # e.g. torchvision missing: that model cannot be the owner we name
            continue
        if any(keys <= {k[len(p):] for k in own if k.startswith(p)} for p in PLACEMENTS):
            return name
    return None


def load_weights(model: nn.Module, path: str, model_name: str, num_classes: int) -> str:
    """Copy the file's tensors into ``model`` in place; returns what was loaded, for the log."""
    source = read_state_dict(path)
    target = model.state_dict()
    placement = max(PLACEMENTS, key=lambda p: sum(p + k in target for k in source))
    used = {k: v for k, v in source.items() if not k.startswith(FOREIGN_HEADS)}
    dropped = sorted({k.split(".")[0] for k in source if k.startswith(FOREIGN_HEADS)})
    unknown = [k for k in used if placement + k not in target]
    if unknown:
        owner = _owner(set(used), model_name)
        whose = f"a {owner} model's weights" if owner else "weights of another network"
        raise UserError(f"--weights {path}: holds {whose}, not the {model_name} model's: {len(unknown)} of its "
                        f"{len(used)} tensors have no place in it (first: {', '.join(unknown[:3])}); pass a "
                        f"file saved from --model {model_name}, or choose --model {owner or 'for that file'}")
    fresh, loaded = [], {}
    for key, value in used.items():
        name = placement + key
        shape = target[name].shape
        if shape == value.shape:
            loaded[name] = value
        elif len(shape) >= 1 and value.dim() == len(shape) and shape[0] == num_classes and shape[1:] == value.shape[1:]:
            fresh.append(name)            # the output layer of a model trained for another class count
        else:
            raise UserError(f"--weights {path}: tensor {key} is {tuple(value.shape)} but the {model_name} "
                            f"model's is {tuple(target[name].shape)} (another --model-width or variant?); "
                            "pass weights of the same model and width")
    missing = [k for k in target if k not in loaded and k not in fresh and k.startswith(placement)
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"--weights {path}: lacks {len(missing)} of the {model_name} model's tensors (first: "
                        f"{', '.join(missing[:3])}); pass a complete state dict of that model")
    model.load_state_dict(loaded, strict=False)
    parts = [f"loaded {len(loaded)} tensors from {path}"]
    if placement:
        parts.append(f"into {placement.rstrip('.')}")
    outside = sum(1 for k in target if not k.startswith(placement))
    if outside:
        parts.append(f"{outside} tensors outside it initialised randomly")
    if fresh:
        parts.append(f"output layer re-initialised for {num_classes} classes ({', '.join(fresh)})")
    if dropped:
        parts.append(f"ignored the file's {', '.join(dropped)} head(s)")
    return "; ".join(parts)


def load_problem(err: Exception) -> str:
    """Why torch.load failed, in a few words: its weights_only advice (load with
    weights_only=False, i.e. run the file's pickled code) is not one to give for a file that
    should hold tensors only."""
    text = str(err)
    if "weights_only" in text or "Unsupported global" in text:
        return "not a file of tensors saved by torch.save: another kind of file, or one holding code"
    return f"truncated, or not a PyTorch file ({type(err).__name__})"
