"""The training jobs of one ./run_benchmark.sh invocation: backends x profiles x repeats.

    ./run_benchmark.sh --backends cuda,gaudi_lazy --repeats 5      # 10 jobs, seeds 42..46 per backend
    ./run_benchmark.sh --demo --local                              # cpu parity and cpu fast, side by side
    jobs = train_jobs(["cuda"], lambda b: b, profiles=["parity", "fast"], repeats=2, base_seed=42)

Each job is one results file. Names put a backend's runs side by side in the results folder:
<backend>[_<profile> when several profiles][_r<k> when repeated] (results_cuda_r1.json ...
results_cuda_r5.json). Repeat k trains with seed base_seed + k - 1 (new weights, shuffling and
flips), the same seed for every backend, so repeat k of two backends starts alike; the test
images of the overlays come from the split file's seed and stay the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..core.parsing import parse_names
from ..core.registry import PROFILES


@dataclass(frozen=True)
class TrainJob:
    backend: str
    run_name: str
    flags: tuple = ()      # training flags of this job alone (--profile, --seed), after the user's


def parse_profiles(text: str) -> list[str]:
    return parse_names(text, PROFILES, "profile", "--profiles")


def train_jobs(backends: Sequence[str], base_name: Callable[[str], str], profiles: Sequence[str],
               repeats: int, base_seed: int) -> list[TrainJob]:
    width = len(str(repeats))
    jobs = []
    for backend in backends:
        for profile in profiles or [None]:
            for k in range(1, repeats + 1):
                name, flags = base_name(backend), []
                if profile is not None:
                    flags += ["--profile", profile]
                    name += f"_{profile}" if len(profiles) > 1 else ""
                if repeats > 1:
                    flags += ["--seed", str(base_seed + k - 1)]
                    name += f"_r{k:0{width}d}"
                jobs.append(TrainJob(backend, name, tuple(flags)))
    return jobs
