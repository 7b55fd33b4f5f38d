"""The study loop on its own (no pipeline): trials are the figures of a fixed function of the
parameters, so that the bookkeeping is checked fast — repeats of a finished configuration
are not run or counted again, a failing configuration does not end the study, and the count
is exact. The real pipeline under the study is tests/test_search.py's."""
from __future__ import annotations

import pytest

from tinyopt.errors import TinyoptError
from tinyopt.search import space, study
from tinyopt.search.trial import SearchConfig


def _cfg(trials: int) -> SearchConfig:
    return SearchConfig(model=None, data=None, board="qemu-m4", measure_board="qemu-m4",
                        measured_on="qemu-m4 (emulated)", port=None, backends=("aot",),
                        max_accuracy_drop=1.0, max_latency_ms=None, max_flash_kb=None, max_ram_kb=None,
                        trials=trials)


def _figures(params: dict) -> dict:
    c = space.channels_of(params)
    keep = 1.0 - (sum(c) / 2 if isinstance(c, tuple) else c)
    return {"quality": 90.0 + 5 * keep, "cycles": 1e6 * keep, "flash_bytes": int(5e4 * keep) + 1000,
            "ram_bytes": int(4e3 * keep) + 100, "latency_ms": keep}


@pytest.fixture
def fake_pipeline(monkeypatch):
    ran = []

    def run_trial(cfg, params, folder, progress=None):
        ran.append(dict(params))
        if params.get("cluster") == 8 and params.get("qat"):
            raise RuntimeError("a bug of ours in this configuration")
        return _figures(params)

    monkeypatch.setattr(study, "run_trial", run_trial)
    return ran


def test_repeated_configurations_are_neither_run_nor_counted_twice(tmp_path, fake_pipeline):
    st, ran_here = study.run_search(_cfg(24), tmp_path / "s")
    counted = study.counted(st)
    assert len(counted) == 24 and len(ran_here) == 24 == len(fake_pipeline)
    keys = [tuple(sorted(t.params.items())) for t in counted]
    assert len(set(keys)) == len(keys), "a configuration ran twice"
    for t in st.get_trials(deepcopy=False):
        if "duplicate_of" in t.user_attrs:
            twin = st.trials[t.user_attrs["duplicate_of"]]
            assert twin.params == t.params and "duplicate_of" not in twin.user_attrs


def test_a_bug_in_one_configuration_is_a_failed_trial_not_the_end(tmp_path, fake_pipeline, monkeypatch):
    monkeypatch.setattr(space, "starting_points", lambda backends: [
        {"backend": "aot", "channels_mode": "global", "channels": 0.5, "sparsity": "none", "cluster": 8,
         "qat": True}])
    st, _ = study.run_search(_cfg(3), tmp_path / "s")
    failed = [t for t in study.counted(st) if "error" in t.user_attrs]
    assert failed and failed[0].number == 1                 # the starting point, right after the baseline
    assert all(t.user_attrs["error"].startswith("internal error: RuntimeError") for t in failed)
    assert len(study.counted(st)) == 3


def test_a_user_error_keeps_its_own_text(tmp_path, monkeypatch):
    def run_trial(cfg, params, folder, progress=None):
        if params.get("role") is None and space.channels_of(params) == 0.5:
            raise TinyoptError("trial stopped at: generated", "see the trial's report.md")
        return _figures(params)
    monkeypatch.setattr(study, "run_trial", run_trial)
    st, _ = study.run_search(_cfg(2), tmp_path / "s")
    errors = [t.user_attrs["error"] for t in study.counted(st) if "error" in t.user_attrs]
    assert errors and errors[0].startswith("trial stopped at: generated")
