"""What a batch job asks Python (unetbench/cluster/jobinfo.py): the resolved training flags and the log header."""

from __future__ import annotations

import pytest

from unetbench.cluster.jobinfo import header, train_args
from unetbench.core.errors import UserError


def test_train_args_resolve_outputs_with_the_training_parser_and_add_auto_resume(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"out: {tmp_path / 'from_config'}\nrun_name: nightly\n")
    out, run, last, *args = train_args("cuda", ["--config", str(config), "--epochs", "2"])
    assert (out, run) == (str(tmp_path / "from_config"), "nightly")     # a config file counts too
    assert last == str(tmp_path / "from_config" / "last_nightly.pth")
    assert args == ["--config", str(config), "--epochs", "2", "--auto-resume"]
    assert train_args("cpu", ["--resume"])[:2] == ["results", "cpu"]
    assert train_args("cpu", ["--resume"])[3:] == ["--resume"]          # no second resume flag


def test_train_args_refuse_a_bad_flag_with_its_message():
    with pytest.raises(UserError, match="epochs must be positive"):
        train_args("cpu", ["--epochs", "0"])
    with pytest.raises(UserError, match="unknown backend 'tpu'"):
        train_args("tpu", [])


def test_header_names_the_backend_variables_and_a_missing_tool(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("PT_HPU_LAZY_MODE", "1")
    monkeypatch.delenv("HABANA_VISIBLE_MODULES", raising=False)
    lines = header("gaudi_lazy")
    assert "PT_HPU_LAZY_MODE=1 HABANA_VISIBLE_MODULES=<unset>" in lines
    assert "devices   : hl-smi not found on this node" in lines
    assert header("compare")[-1] == "devices   : CPU only"


def test_header_shows_the_per_job_defaults_a_training_will_set_and_the_sites_own(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    for name in ("MIOPEN_USER_DB_PATH", "MIOPEN_CUSTOM_CACHE_DIR", "HIP_VISIBLE_DEVICES", "ZE_FLAT_DEVICE_HIERARCHY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "3")
    rocm = header("rocm")[1]
    assert rocm.startswith("ROCR_VISIBLE_DEVICES=3 MIOPEN_USER_DB_PATH=/tmp/ada-unetbench-miopen-77 ")
    assert "HIP_VISIBLE_DEVICES=<unset>" in rocm
    monkeypatch.setenv("MIOPEN_USER_DB_PATH", "/local/miopen")    # the site's SETUP chose
    assert "MIOPEN_USER_DB_PATH=/local/miopen " in header("rocm")[1]
    monkeypatch.setenv("ZE_AFFINITY_MASK", "1")
    assert header("xpu")[1] == "ZE_AFFINITY_MASK=1 ZE_FLAT_DEVICE_HIERARCHY=COMPOSITE ZE_ENABLE_PCI_ID_DEVICE_ORDER=1"
