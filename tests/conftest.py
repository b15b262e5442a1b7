"""Shared pytest fixtures. Keep this file small: fixtures only, helpers live in their own modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import in_process, script_env, stub_slurm
from slurm_cluster import SlurmCluster, missing_reason

from unetbench.data.prepare.api import prepare_synthetic


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm (munged, slurmctld, slurmd) for the whole session.

    Skipped where Slurm cannot run (not root, packages missing), except under CI, where a
    missing Slurm is a failure: `.ci/run` installs it, so the tests must run there.
    """
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the Slurm tests cannot run: {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tiny_splits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_data")
    return Path(prepare_synthetic(out, num_images=40, crop=(32, 48), seed=7).splits_file)


@pytest.fixture(scope="session")
def learn_splits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("learn_data")
    return Path(prepare_synthetic(out, num_images=120, crop=(64, 96), seed=3).splits_file)


@pytest.fixture
def stub(tmp_path):
    """Stand-ins for Slurm's tools that record their calls: {"env": an environment with them
    first on PATH, "log": the file they record to}."""
    log = tmp_path / "slurm_calls.log"
    return {"env": script_env(stub_slurm(tmp_path / "bin", log)), "log": log}


@pytest.fixture
def bench(capfd, monkeypatch):
    """run_benchmark.sh ARGS under ENV: its main (unetbench.cluster.submit) in this process, the
    2-3 tenths of a second each Python start costs saved; tests/cluster/test_submit.py runs the
    script itself too."""
    from unetbench.cluster import submit
    return in_process(submit.main, capfd, monkeypatch)
