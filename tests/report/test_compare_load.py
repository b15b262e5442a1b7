"""Loading and classifying result files: python -m pytest tests/report/test_compare_load.py"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from helpers import REPO
from results_fixtures import make_result, write_result

from unetbench.core.registry import BACKENDS, PROFILES
from unetbench.report.load import load_run, load_runs
from unetbench.report.validate import load_schema, validate
from unetbench.training.results import SCHEMA_PATH, SCHEMA_VERSION, clean_for_json

SCHEMA = load_schema()  # the file with its version and backend/profile names filled in


@pytest.mark.parametrize("kwargs", [
    {}, {"profile": "fast"}, {"status": "interrupted"}, {"status": "failed"}, {"status": "running"},
    {"backend": "gaudi_lazy", "world_size": 8, "nodes": 2},
    {"energy": {"energy_j": 1000.0, "avg_power_w": 300.0, "source": "nvml"}},
])
def test_fixtures_are_schema_valid(kwargs):
    result = make_result(**kwargs)
    jsonschema.validate(result, SCHEMA)          # the reference implementation
    assert validate(result, load_schema()) == []  # and ours agrees


def _mutations():
    base = make_result()
    cases = []
    for desc, edit in [
        ("missing timing", lambda r: r.pop("timing")),
        ("bad backend", lambda r: r.update(backend="tpu")),
        ("string throughput", lambda r: r["timing"].update(steady_samples_per_s="fast")),
        ("crop of three", lambda r: r["dataset"].update(crop=[1, 2, 3])),
        ("epoch zero", lambda r: r["history"][0].update(epoch=0)),
        ("test metrics missing miou", lambda r: r["test"].pop("miou")),
        ("bool as integer", lambda r: r["distributed"].update(world_size=True)),
        ("per_class row without name", lambda r: r["test"]["per_class"][0].pop("name")),
    ]:
        r = copy.deepcopy(base)
        edit(r)
        cases.append(pytest.param(r, id=desc))
    return cases


@pytest.mark.parametrize("broken", _mutations())
def test_validator_agrees_with_jsonschema_on_broken_results(broken):
    reference = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))
    assert reference, "the mutation should break the schema"
    assert validate(broken, load_schema()), "our validator missed what jsonschema found"


@pytest.mark.parametrize("status,state", [("completed", "complete"), ("interrupted", "interrupted"),
                                          ("failed", "failed"), ("running", "running")])
def test_status_classification(tmp_path, status, state):
    rec = load_run(write_result(tmp_path, make_result(status=status)))
    assert rec.state == state
    assert rec.complete == (state == "complete")
    assert (rec.problem is None) == (state == "complete")


@pytest.mark.parametrize("text,state,words", [
    ('{"schema_version": 1, "stat', "corrupt", "not valid JSON"),
    ("", "corrupt", "not valid JSON"),
    ('[1, 2]', "schema-mismatch", "JSON object"),
    ('{"schema_version": 2}', "schema-mismatch", "schema_version 2"),
    ('{"status": "completed"}', "schema-mismatch", "no schema_version"),
    ('{"schema_version": 1}', "invalid", "missing required key"),
])
def test_broken_files_are_classified_not_raised(tmp_path, text, state, words):
    path = tmp_path / "results_x.json"
    path.write_text(text)
    rec = load_run(path)
    assert rec.state == state
    assert words in rec.problem


def test_undecodable_bytes_are_corrupt(tmp_path):
    path = tmp_path / "results_bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert load_run(path).state == "corrupt"


def test_load_runs_folders_files_missing_and_expected(tmp_path):
    a = write_result(tmp_path, make_result("cuda"))
    write_result(tmp_path, make_result("cpu"))
    (tmp_path / "notes.json").write_text("{}")  # not a results_*.json: ignored in a folder
    runs = load_runs([tmp_path, a, tmp_path / "results_gone.json"], expect=["cuda", "gaudi_lazy"])
    states = sorted((r.name, r.state) for r in runs)
    assert ("cuda_parity_0", "complete") in states and ("cpu_parity_0", "complete") in states
    assert ("gone", "missing") in states
    assert ("gaudi_lazy", "missing") in states
    assert len(runs) == 4  # the file named twice counts once


def test_schema_facts_come_from_their_one_definition():
    """The schema file names no version, backend or profile; load_schema() fills them in."""
    raw = json.loads(SCHEMA_PATH.read_text())["properties"]
    assert "const" not in raw["schema_version"] and "enum" not in raw["backend"] and "enum" not in raw["profile"]
    filled = load_schema()["properties"]
    assert filled["schema_version"]["const"] == SCHEMA_VERSION
    assert filled["backend"]["enum"] == list(BACKENDS) and filled["profile"]["enum"] == list(PROFILES)


def test_clean_for_json_turns_undefined_numbers_into_null():
    import numpy as np
    cleaned = clean_for_json({"a": float("nan"), "b": [float("inf"), 1.5, (2, np.float32(0.5))], 3: np.int64(4)})
    assert cleaned == {"a": None, "b": [None, 1.5, [2, 0.5]], "3": 4}
    assert json.dumps(cleaned, allow_nan=False)


def test_results_and_report_loading_do_not_import_torch():
    # The report runs where importing torch is slow or impossible (a login node, a laptop).
    import subprocess
    import sys
    code = ("import sys, unetbench.training.results, unetbench.report.load, unetbench.report.export; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    assert out.strip() == "False"
