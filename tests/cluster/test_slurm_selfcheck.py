"""./verify_enhanced.sh --on-device against a real single-node Slurm (the ``slurm_cluster`` fixture):
the self-check submitted as a job with the site's settings, waited for, its checklist printed.
The checks themselves, their failures and the stand-in devices: tests/cluster/test_selfcheck.py,
tests/devices/test_selfcheck_standins.py.
"""

from __future__ import annotations

import pytest
from helpers import REPO, run, script_env, write_site

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_the_self_check_runs_as_a_job_and_prints_its_checklist(slurm_cluster, tmp_path):
    site = write_site(tmp_path / "site.env", CPU_TIME="04:00:00")   # a training's limit: the check asks for less
    runs = tmp_path / "runs"
    proc = run([REPO / "verify_enhanced.sh", "--on-device", "--backends", "cpu", "--site", site,
                "--results-dir", runs], env=script_env(SLURM_CONF=slurm_cluster.conf), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "--partition=debug" in out and "--time=" not in out   # the job script's limit, not a training's
    # The job's log, printed whole: the job header, then one line per check in order.
    assert "================ unetbench cpu job ================" in out
    checks = [line for line in out.splitlines() if line.startswith("[") and "]" in line]
    names = [line[7:].split(":", 1)[0] for line in checks]
    start = names.index("software")
    assert names[start:start + 11] == ["software", "device", "environment", "synchronize", "events", "memory",
                                       "compile", "training step", "evaluation step", "energy", "monitor"]
    assert "selfcheck cpu: all 11 checks passed" in out
    verdict = [line for line in checks if line.startswith("[ OK ] on-device cpu: ")]
    assert len(verdict) == 1 and "(job " in verdict[0]
    job = verdict[0].split("(job ")[1].rstrip(")")
    state = slurm_cluster.wait_jobs([job], timeout=30)[job]
    assert (state["JobState"], state["TimeLimit"], state["Partition"]) == ("COMPLETED", "00:15:00", "debug")
    logs = list(runs.glob(f"selfcheck-*/unetbench_selfcheck_cpu_{job}.out"))
    assert len(logs) == 1 and "self-check exited with status 0" in logs[0].read_text()
    assert out.rstrip().endswith("verify: all checks passed")
