"""Bad flag values are refused once, in the parser, with one line naming the flag and the rule;
the comparison's report folder is replaced whole. Cases and messages: docs/bad_input.md.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/core/test_bad_input_flags.py
"""

from __future__ import annotations

import pytest
from helpers import run_main, run_script, write_site
from results_fixtures import make_result, write_result

from unetbench.core.errors import UserError
from unetbench.core.settings import parse_settings
from unetbench.report.staging import StagedDir


@pytest.mark.parametrize("argv,needle", [
    (["--seed", "-1"], "seed must not be negative"),
    (["--seed", "4294967296"], "seed must be between 0 and 4294967295"),
    (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr-factor=-inf"], "lr-factor must be a finite number"),
    (["--nonfinite-patience", "-1"], "nonfinite-patience must not be negative"),
    (["--run-name", "../elsewhere"], "use a plain name"),
    (["--run-name", "a/b"], "use a plain name"),
    (["--run-name", ".hidden"], "use a plain name"),
    (["--epochs", "--dry-run"], "expected one argument"),
    (["--restart", "--auto-resume"], "--restart starts over"),
])
def test_bad_training_flags_name_the_flag_and_the_rule(argv, needle):
    with pytest.raises(UserError, match=needle.replace(".", r"\.")):
        parse_settings(argv, raising=True)


@pytest.mark.parametrize("text,needle", [
    ("seed: true\n", "seed must be a number, got True"),
    ("epochs: false\n", "epochs must be a number"),
    ("lr: .inf\n", "lr must be a finite number"),
    ("lr: .nan\n", "lr must be a finite number"),
    ("splits: [a, b]\n", "splits must be a text"),
    ("run_name: ../up\n", "use a plain name"),
    ("seed: 1.5\n", "seed"),
])
def test_bad_config_file_values_name_the_file_and_the_setting(tmp_path, text, needle):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(UserError, match=needle.replace(".", r"\.").replace("[", r"\[")) as err:
        parse_settings(["--config", str(config)], raising=True)
    assert str(config) in str(err.value)


def test_good_values_still_pass():
    settings, _ = parse_settings(["--seed", "4294967295", "--run-name", "cuda_fast.r2", "--lr", "1e-3"], raising=True)
    assert (settings.seed, settings.run_name, settings.lr) == (4294967295, "cuda_fast.r2", 1e-3)


def test_an_unknown_backend_in_expect_is_refused_before_anything_is_read(tmp_path):
    write_result(tmp_path, make_result("cpu"))
    proc = run_script(["compare_results.py", tmp_path, "--expect", "cpu,cdua", "--quiet"])
    assert proc.returncode == 2 and "unknown backend 'cdua'" in proc.stderr and "Traceback" not in proc.stderr
    ok = run_script(["compare_results.py", tmp_path, "--expect", "cpu,cpu_fast", "--quiet"])
    assert ok.returncode == 0, ok.stderr   # run names <backend>_... are accepted too


def test_the_report_folder_is_swapped_in_whole(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "report.md").write_text("old")
    (final / "stale.png").write_text("old plot")
    stage = StagedDir(final)
    target = stage.redirect(final / "report.md")
    assert target.parent != final
    target.write_text("new")
    assert (final / "report.md").read_text() == "old"     # until commit, the old report stands whole
    assert stage.shown(target) == final / "report.md"
    stage.commit()
    assert (final / "report.md").read_text() == "new" and not (final / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]   # no temp folders left


def test_an_interrupted_comparison_leaves_the_old_report_and_its_temp_folder_is_cleaned(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "report.md").write_text("old")
    StagedDir(final).redirect(final / "x").write_text("half")   # killed before commit
    assert (final / "report.md").read_text() == "old"
    StagedDir(final).discard()                                  # the next comparison cleans up
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_report_dir_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "report").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        StagedDir(tmp_path / "report")


@pytest.mark.parametrize("key,bad,good", [
    ("TIME", "2h", "1-00:00:00"), ("TIME", "4:00:00:00", "90"), ("CPUS", "four", "8"), ("CPUS", "0", "1"),
    ("MEM", "3GB", "3000M"), ("MEM", "-1G", "0"),
])
def test_site_formats_slurm_would_refuse_fail_the_preflight(tmp_path, key, bad, good, capsys):
    # The preflight's main in process (verify_enhanced.sh only hands over to it: tests/cluster/test_submit.py).
    from unetbench.cluster.preflight import main as preflight
    site = write_site(tmp_path / "site.env", **{f"CPU_{key}": bad})
    code, out, err = run_main(preflight, ["--backends", "cpu", "--site", site, "--no-data",
                                          "--results-dir", tmp_path / "runs"], capsys)
    assert code != 0 and f"CPU_{key}={bad!r} is not" in out + err
    assert (out + err).count(f"CPU_{key}={bad!r}") == 1
    site = write_site(tmp_path / "site.env", **{f"CPU_{key}": good})
    _, out, err = run_main(preflight, ["--backends", "cpu", "--site", site, "--no-data",
                                       "--results-dir", tmp_path / "runs"], capsys)
    assert f"CPU_{key}=" not in out + err and "[FAIL] site.env" not in out


# ---- messages that name the real problem ---------------------------------------------------
def test_a_file_where_a_folder_belongs_is_named(tmp_path):
    from unetbench.core.atomic import atomic_write_text
    (tmp_path / "plots").write_text("")
    with pytest.raises(UserError, match="plots is a file, not a folder") as err:
        atomic_write_text(tmp_path / "plots" / "a.png", "x")
    assert "File exists" not in str(err.value)


def test_the_wrong_kind_of_file_as_splits_is_named(tmp_path):
    import json

    from unetbench.data.prepared import load_splits
    results = write_result(tmp_path, make_result("cpu"))
    with pytest.raises(UserError, match="is a training results file, not a dataset split file"):
        load_splits(results)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_splits.json").write_text(json.dumps({}))
    with pytest.raises(UserError, match="is a folder; .* pass .*dataset_splits.json"):
        load_splits(tmp_path / "data")


@pytest.mark.parametrize("content", [b"{}\n", b"junk", b"PK\x03\x04truncated"])
def test_a_file_that_is_no_checkpoint_gets_no_weights_only_advice(tmp_path, content):
    from unetbench.training.checkpoint import load_checkpoint
    path = tmp_path / "last_cpu.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match="is unreadable .truncated, or not a PyTorch file|is unreadable .not a file of tensors") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "delete it" in str(err.value)


def test_a_missing_dependency_is_not_reported_as_the_package_missing():
    from unetbench.core.import_errors import import_failure
    own = import_failure(ModuleNotFoundError("No module named 'kaggle'", name="kaggle"), "kaggle", "pip install kaggle")
    assert own == "the kaggle package is not installed: pip install kaggle"
    dep = import_failure(ModuleNotFoundError("No module named 'six.moves'", name="six.moves"), "kaggle", "pip install kaggle")
    assert "kaggle package is installed but cannot be imported" in dep and "'six.moves'" in dep
    assert "pip install six" in dep
