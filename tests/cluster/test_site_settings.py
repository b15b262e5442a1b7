"""site.env as Python reads it (unetbench/cluster/site_settings.py): Bash sources the real file, Python asks."""

from __future__ import annotations

import pytest

from unetbench.cluster.site_settings import Site, SiteError, scale_gres, scale_mem
from unetbench.core.errors import UserError


@pytest.mark.parametrize("gres, per_node, expected", [
    ("gpu:1", 4, "gpu:4"), ("gpu:a100:1", 4, "gpu:a100:4"), ("gpu", 2, "gpu:2"), ("gpu:a100", 3, "gpu:a100:3"),
    ("gpu:2,tmpdisk:10", 2, "gpu:4,tmpdisk:10"),
])
def test_gres_scales_its_first_count(gres, per_node, expected):
    assert scale_gres(gres, per_node) == expected


@pytest.mark.parametrize("mem, expected", [("16G", "64G"), ("3000M", "12000M"), ("0", "0"), ("7", "28")])
def test_mem_scales_and_keeps_its_unit(mem, expected):
    assert scale_mem(mem, 4) == expected


@pytest.mark.parametrize("bad", ["gpu:0", "gpu:-1"])
def test_a_gres_without_a_positive_count_is_refused(bad):
    with pytest.raises(UserError, match="cannot be scaled to 2 devices per node"):
        scale_gres(bad, 2, "CUDA_GRES")


def test_bash_reads_the_file_so_arrays_expansions_and_fallbacks_work(tmp_path):
    site = tmp_path / "site.env"
    site.write_text(
        'BASE=/scratch/me\n'
        'CPU_PARTITION=batch; CPU_ACCOUNT=""; CPU_QOS=""; CPU_GRES=""; CPU_CPUS=2; CPU_MEM=4G\n'
        'CPU_TIME=00:10:00; CPU_SETUP="source $BASE/venv/bin/activate"\n'
        'COMPARE_PARTITION=short\n'
        'CPU_SBATCH_EXTRA=(--constraint="cpu&big" --exclusive)\n'
        'echo this output is ignored\n')
    loaded = Site.load(site)
    assert loaded.get("cpu", "SETUP") == "source /scratch/me/venv/bin/activate"
    assert loaded.sbatch_options("cpu") == ["--partition=batch", "--cpus-per-task=2", "--mem=4G",
                                            "--time=00:10:00", "--constraint=cpu&big", "--exclusive"]
    # COMPARE_* falls back to CPU_* key by key; COMPARE_SBATCH_EXTRA does not fall back.
    assert loaded.sbatch_options("compare") == ["--partition=short", "--cpus-per-task=2", "--mem=4G", "--time=00:10:00"]
    assert loaded.problems(["cpu", "compare", "prepare"]) == []
    assert loaded.problems(["cuda"])[0] == "CUDA_PARTITION is not set (set it, empty if your cluster does not use it)"


def test_a_file_bash_cannot_source_is_named(tmp_path):
    site = tmp_path / "site.env"
    site.write_text("CPU_PARTITION=(unclosed\n")
    with pytest.raises(SiteError, match="does not source cleanly"):
        Site.load(site)
    with pytest.raises(SiteError, match="not found"):
        Site.load(tmp_path / "missing.env")
