"""The benchmark matrix on the cluster: which models and prepared datasets run_benchmark.sh trains.

    ./run_benchmark.sh --models unet,resunetpp,deeplabv3_resnet101 --backends cuda,gaudi_lazy
    ./run_benchmark.sh --models resunetpp --datasets kvasir-seg,oxford-pet --data /scratch/data
    workloads = plan_workloads("unet,resunetpp", "", data_dir)    # [Workload(...), ...]

One training job per backend x workload (x profile x repeat, training_jobs.py), named
<backend>_<model>[_<dataset>] so that a backend's runs sit side by side in the results folder
(results_cuda_resunetpp_kvasir-seg.json); the comparison job runs after all of them and prints
one matrix (report/matrix.py). With --datasets each dataset is read from DATA/<name> (prepared
beforehand with prepare_dataset.py --dataset NAME --out DATA/NAME); without it every model trains
on the one dataset in DATA. Every model is checked against every dataset's crop before anything
is submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.errors import UserError
from ..core.parsing import check_crop_for_models, parse_names
from ..core.registry import DATASETS, MODELS
from ..data.prepared import SPLITS_FILE


@dataclass(frozen=True)
class Workload:
    model: Optional[str]          # None: the training flags' --model (default unet), run names unchanged
    dataset: Optional[str]        # None: the one dataset in --data
    data_dir: Path

    def suffix(self) -> str:
        return "".join(f"_{part}" for part in (self.model, self.dataset) if part)

    def flags(self) -> tuple:
        return (("--model", self.model) if self.model else ()) + \
               (("--splits", str(self.data_dir / SPLITS_FILE)) if self.dataset else ())


def _names(text: str, table: dict, what: str, aliases: dict | None = None) -> list[str]:
    return parse_names(text, table, what, f"--{what}s", aliases)


def plan_workloads(models_text: str, datasets_text: str, data_dir: Path) -> list[Workload]:
    """The workloads of --models/--datasets ([one plain workload] when neither is given)."""
    from ..core.registry import DATASET_ALIASES
    models = _names(models_text, MODELS, "model") if models_text else [None]
    datasets = _names(datasets_text, DATASETS, "dataset", DATASET_ALIASES) if datasets_text else [None]
    workloads = [Workload(m, d, data_dir / d if d else data_dir) for d in datasets for m in models]
    if datasets != [None]:
        for d in datasets:
            splits = data_dir / d / SPLITS_FILE
            if not splits.is_file():
                raise UserError(f"--datasets: {d} is not prepared ({splits} not found); prepare it first: "
                                f"python3 prepare_dataset.py --dataset {d} --out {data_dir / d}")
    return workloads


def check_crops(workloads: list[Workload]) -> None:
    """Refuse a model that cannot take a dataset's crop, naming both (before anything is submitted)."""
    from ..data.prepared import load_splits
    for w in workloads:
        splits = w.data_dir / SPLITS_FILE
        if w.model and splits.is_file():
            check_crop_for_models(load_splits(splits).crop, f"dataset {splits} has crops of", models=[w.model])


def check_dependencies(workloads: list[Workload]) -> None:
    """A model that needs torchvision (deeplabv3_resnet101) with none installed: refused here, not on
    a compute node after a wait in the queue. Looked up without importing torch."""
    import importlib.util
    needing = sorted({w.model for w in workloads if w.model and MODELS[w.model].needs_torchvision})
    if needing and importlib.util.find_spec("torchvision") is None:
        raise UserError(f"--models {','.join(needing)} needs torchvision, which is not installed in this Python; "
                        "install torch and torchvision together (make venv, or pip install torch torchvision of "
                        "one release)")
