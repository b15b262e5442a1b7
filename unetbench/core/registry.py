"""The index of every backend, model, dataset and batch job the suite knows: one entry each.

    from unetbench.core.registry import BACKENDS, MODELS
    BACKENDS["cuda"].site_group                 # "CUDA": its site.env variables are CUDA_*
    python3 -m unetbench.scaffold               # regenerates submit_*.sh, unet_*.py, scripts/registry.sh

Everything else asks this module: the training entry points, run_benchmark.sh (through
unetbench.cluster.submit), the preflight, the device monitor, the report and the generated Bash.
Backends are not written here: each device folder (unetbench/devices/<device>/spec.py) defines
its own and devices/catalog.py collects them; adding one is a folder and ``python3 -m
unetbench.scaffold`` (README: "Adding a device or a model"). Models, datasets and the non-training
jobs are entries below. This module imports nothing heavy: the login node reads it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..devices.catalog import BACKENDS
from ..devices.spec import BackendSpec, SbatchDefaults

__all__ = ["BACKENDS", "BackendSpec", "SbatchDefaults", "PROFILES", "MODELS", "DATASETS", "JOBS"]

PROFILES = ("parity", "fast")
# Seconds before the time limit at which Slurm sends USR1 (sbatch --signal=B:USR1@N); a site
# may set SIGNAL_LEAD_S in site.env instead.
DEFAULT_SIGNAL_LEAD_S = 300


@dataclass(frozen=True)
class JobSpec:
    """A CPU job of the chain that is not a training: its site.env group falls back to CPU_*."""
    name: str
    title: str
    entry: str                    # the top-level script the job runs
    site_group: str
    site_fallback: str
    sbatch: SbatchDefaults


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str                    # what the results record as model.name
    builder: str                  # "module:Class(in_channels, num_classes, width) -> nn.Module"
    input_multiple: int           # crop sides must be multiples of this (downsampling depth)
    needs_torchvision: bool = False
    reference: str = ""           # where its architecture and parameter count come from
    min_batch: int = 1            # smallest per-device training batch it can take
    # FLOPs per sample are not declared: models/flops.py counts them with torch's FlopCounterMode.


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's preparation defaults; the class defaults are the generic ones (any other source).

    prepare_dataset.py applies an entry when ``--kaggle-dataset`` names its slug (or by default),
    or when a ``--source-dir`` folder/zip has its ``layout``; explicit flags always win.
    """
    name: str
    title: str
    kaggle_slug: str
    layout: Optional[Tuple[str, str]] = None   # (image folder, mask folder) that identify it (any case)
    palette: Optional[str] = None              # a built-in palette of prepare/classes.py; None: detect the encoding
    ignored_colours: Tuple[Tuple[int, int, int], ...] = ()   # mask colours labelled IGNORE_INDEX (with its palette)
    crop: Tuple[int, int] = (384, 512)
    crops_per_image: int = 1
    about: str = ""                            # one line for --help and the docs
    # For sources whose layout alone is generic (images/ + masks/) or whose masks need their own
    # decoding (prepare/datasets.py): the folder that holds the layout, the mask encoding, how
    # sources of different sizes are brought to the crop, official split lists, download.
    root_name: Optional[str] = None            # the layout's parent folder that identifies it (any case)
    encoding: Optional[str] = None             # a fixed mask encoding (threshold, trimap); None: palette/detect
    class_names: Tuple[str, ...] = ()          # with ``encoding``: the classes, id order
    resize: str = "none"                       # none | cover | stretch (prepare/resize.py)
    split_lists: Optional[Tuple[str, str]] = None   # (trainval list, test list) in the source
    urls: Tuple[str, ...] = ()                 # official downloads (not Kaggle), fetched on the login node
    sha256: Tuple[str, ...] = ()               # of each url's file, when published
    odd_files_skipped: bool = False            # undecodable images are skipped and reported, never fatal


JOBS: dict[str, JobSpec] = {spec.name: spec for spec in (
    JobSpec(name="prepare", title="Dataset preparation as a CPU job (run_benchmark.sh --prepare-job)",
            entry="prepare_dataset.py", site_group="PREPARE", site_fallback="CPU",
            sbatch=SbatchDefaults(time="01:00:00", cpus=4, mem="16G")),
    JobSpec(name="compare", title="Comparison of all results, run after every training job ends (afterany)",
            entry="compare_results.py", site_group="COMPARE", site_fallback="CPU",
            sbatch=SbatchDefaults(time="00:20:00", cpus=1, mem="4G")),
)}

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(name="unet", title="UNet", builder="models.unet:UNet",
              input_multiple=16,    # four 2x2 poolings
              reference="the seed's UNet: 31,044,756 parameters at 20 classes"),
    ModelSpec(name="resunetpp", title="ResUNet++", builder="models.resunetpp:ResUNetPlusPlus",
              input_multiple=8,     # three stride-2 residual units
              reference="Jha et al. 2019, DebeshJha/ResUNetPlusPlus: 4,062,993 parameters at 1 class"),
    ModelSpec(name="deeplabv3_resnet101", title="DeepLabV3-ResNet101",
              builder="models.deeplab:DeepLabV3ResNet101",
              input_multiple=8,     # output stride 8 (dilated layer3/layer4)
              needs_torchvision=True, min_batch=2,
              reference="torchvision deeplabv3_resnet101, no aux head: 58,630,997 parameters at 21 classes"),
)}
DEFAULT_MODEL = "unet"

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    # The seed's dataset and settings: RGB frames in _out/, CityScapes-palette masks in
    # _out_seg_city/, its 20-colour table (CARLA 0.9.x without Unlabeled, Other and GuardRail,
    # whose pixels are ignored), 10 random crops per frame.
    DatasetSpec(name="carla-vd", title="CARLA Vision Dataset (the seed's, 20 classes)",
                kaggle_slug="maelstro/carla-vd-dataset", layout=("_out", "_out_seg_city"), palette="carla20",
                ignored_colours=((0, 0, 0), (55, 90, 80), (180, 165, 180)), crops_per_image=10,
                about="RGB frames _out/, CityScapes-palette masks _out_seg_city/"),
    DatasetSpec(name="lyft-udacity", title="Lyft/Udacity CARLA semantic segmentation (13 classes)",
                kaggle_slug="kumaresanmanickavelu/lyft-udacity-challenge", layout=("CameraRGB", "CameraSeg"),
                about="dataA..dataE/CameraRGB + CameraSeg, class id in the red channel"),
    # Polyps in colonoscopy frames of 332x487 to 1920x1072: masks are 3-channel JPEGs, white polyp
    # on black with compression noise, thresholded into 2 classes; every frame resized to 256x256
    # as in the ResUNet++ reference.
    DatasetSpec(name="kvasir-seg", title="Kvasir-SEG polyp segmentation (2 classes)", kaggle_slug="",
                layout=("images", "masks"), root_name="Kvasir-SEG", encoding="threshold",
                class_names=("background", "polyp"), resize="stretch", crop=(256, 256),
                urls=("https://datasets.simula.no/downloads/kvasir-seg.zip",),
                sha256=("03b30e21d584e04facf49397a2576738fd626815771afbbf788f74a7153478f7",),
                about="kvasir-seg.zip: Kvasir-SEG/images/*.jpg + Kvasir-SEG/masks/*.jpg (JPEG masks, thresholded)"),
    # Pets with trimaps (1 pet, 2 background, 3 border) and the official trainval/test lists; some
    # files named .jpg hold PNG, RGBA or greyscale data (converted) or cannot be decoded (skipped).
    DatasetSpec(name="oxford-pet", title="Oxford-IIIT Pet trimaps (3 classes)", kaggle_slug="",
                layout=("images", "annotations/trimaps"), encoding="trimap",
                class_names=("background", "pet", "border"), resize="cover", crop=(256, 256),
                split_lists=("annotations/trainval.txt", "annotations/test.txt"),
                urls=("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
                      "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz"),
                odd_files_skipped=True,
                about="images.tar.gz + annotations.tar.gz: images/*.jpg, annotations/trimaps/*.png"),
)}
DEFAULT_DATASET = "carla-vd"
# --dataset spellings besides the names: the and the short ones
DATASET_ALIASES = {"carla": "carla-vd", "kvasir_seg": "kvasir-seg", "oxford_pet": "oxford-pet",
                   "lyft_udacity": "lyft-udacity", "carla_vd": "carla-vd"}


def cluster_default_backends() -> list[str]:
    return [name for name, spec in BACKENDS.items() if spec.in_cluster_default]


def local_backends() -> list[str]:
    """The backends any machine can run: run_benchmark.sh --local and --demo use them."""
    return [name for name, spec in BACKENDS.items() if spec.runs_anywhere]


def first_backend() -> str:
    """The first backend in registry order: the benchmark's default and the report's baseline."""
    return next(iter(BACKENDS))


def site_groups(kind: str) -> list[str]:
    """site.env groups to look a setting up in, in order (PREPARE_* then CPU_*)."""
    if kind in BACKENDS:
        return [BACKENDS[kind].site_group]
    if kind in JOBS:
        return [JOBS[kind].site_group, JOBS[kind].site_fallback]
    raise KeyError(kind)


def resolve(ref: str):
    """``"models.unet:UNet"`` -> the object, importing ``unetbench.models.unet`` only now."""
    import importlib
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(f"unetbench.{module}"), attr)


def lookup(table: dict, name: str, what: str):
    """The entry, or the UserError a user sees for a name that is not registered."""
    if name not in table:
        from .errors import UserError
        raise UserError(f"unknown {what} {name!r}; choose one of: {', '.join(table)}")
    return table[name]
