"""Damaged .tflite files never crash tinyopt: a bounded fuzz campaign over what `analyze` and
`generate --backend aot` run, the native crash guard on files that do kill the TFLM runtime,
and the CLI's one-line refusals on a sample of damaged files."""
from __future__ import annotations

import random
import sys

import pytest
from conftest import assert_one_line_error, run_tinyopt

from tinyopt.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import fuzz_tflite  # noqa: E402


def test_bounded_campaign_has_no_crash_internal_error_or_hang(demo_int8_tflite, tmp_path):
    res = fuzz_tflite.run_campaign(demo_int8_tflite.read_bytes(), cases=2000, seed=11, save=tmp_path)
    assert res.cases == 2000
    assert res.failures == 0, res.findings[:10]
    # the campaign reached past the header: both outcomes occur, and every mutation kind ran
    assert res.outcomes["rejected"] > 100 and res.outcomes["accepted"] > 100
    assert set(res.by_mutation) == set(fuzz_tflite.MUTATIONS)


def _runtime_killers(model: bytes, want: int = 2, tries: int = 4000) -> list[bytes]:
    """Mutations that the Python flatbuffer parse accepts but that kill TFLM's C++ loader
    (about one in 500 mutations of the demo model)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from tinyopt.tflm_probe import NativeLoadError, check_loads
    rng, found = random.Random(0), []
    for _ in range(tries):
        _, data = fuzz_tflite.mutate(model, rng)
        try:
            schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        except Exception:
            continue
        try:
            check_loads(data)
        except NativeLoadError:
            found.append(data)
            if len(found) == want:
                break
    return found


def test_a_model_that_kills_the_runtime_is_one_error_and_this_process_lives(demo_int8_tflite, tmp_path):
    killers = _runtime_killers(demo_int8_tflite.read_bytes())
    assert killers, "no mutation killed the TFLM runtime: the guard is untested"
    from tinyopt.tflm_probe import NativeLoadError, check_loads
    with pytest.raises(NativeLoadError, match="crashed"):
        check_loads(killers[0])
    # the file itself through the CLI: rejected in one line (by the reader or the guard)
    path = tmp_path / "killer.tflite"
    path.write_bytes(killers[0])
    proc = run_tinyopt("analyze", path, timeout=120)
    assert_one_line_error(proc, "damaged")


@pytest.mark.parametrize("kind", fuzz_tflite.MUTATIONS)
def test_cli_refuses_damaged_files_in_one_line(demo_int8_tflite, tmp_path, kind):
    """The first damaged file of each mutation kind that tinyopt rejects, through the real CLI
    of both commands: exit 2 and one line (or, for a model TFLM cannot run, its audit exit 1)."""
    rng = random.Random(3)
    model = demo_int8_tflite.read_bytes()
    from tinyopt.analysis import read_tflite
    from tinyopt.errors import TinyoptError
    for _ in range(2000):
        got, data = fuzz_tflite.mutate(model, rng)
        if got != kind:
            continue
        try:
            read_tflite(data)
        except TinyoptError:
            break
    else:
        pytest.fail(f"no {kind} mutation was rejected by the reader")
    path = tmp_path / "damaged.tflite"
    path.write_bytes(data)
    assert_one_line_error(run_tinyopt("analyze", path, timeout=120))
    proc = run_tinyopt("generate", path, "--board", "qemu-m4", "--backend", "aot", "-o", tmp_path / "p",
                       timeout=120)
    assert_one_line_error(proc)
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob("p.*"))
