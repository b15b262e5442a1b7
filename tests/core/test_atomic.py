"""Atomic writes: old or new content, never half; normal permissions; clear errors."""

import errno
import json
import os

import pytest

from unetbench.core.atomic import atomic_path, atomic_write_json
from unetbench.core.errors import UserError


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(UserError, match="no space left"):
        atomic_write_json(tmp_path / "r.json", {"v": 1})
    assert list(tmp_path.iterdir()) == []


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "r.json", {"v": float("nan")})


def test_results_writer_turns_undefined_numbers_into_null(tmp_path):
    import numpy as np

    from unetbench.training.results import write_results
    write_results(tmp_path / "r.json", {"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": np.int64(3)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [1.5, None], "c": 3}
