"""What a run measured: its workload, the model x dataset pair the report never compares across.

    workload_of(results)      # "resunetpp x kvasir-seg"
    workloads(runs)           # the distinct workloads of the complete runs, sorted
"""

from __future__ import annotations


def workload_of(data: dict) -> str:
    """"MODEL x DATASET" of a results document (older files without names: unet, "unnamed data").
    Two preparations of one dataset (other checksums) are one workload, whose groups compare.py
    still refuses to compare ("dataset differs")."""
    model = (data.get("model") or {}).get("key") or "unet"
    name = (data.get("dataset") or {}).get("name") or "unnamed data"
    return f"{model} x {name}"


def workloads(runs) -> list[str]:
    return sorted({workload_of(r.data) for r in runs if r.complete})
