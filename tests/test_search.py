"""`tinyopt search` on the demo and the emulated Cortex-M4, for real (training, conversion,
PlatformIO builds, QEMU measurements): a search killed mid-trial resumes without losing a
finished trial; two workers share one study (journal file; PostgreSQL server started here)
and run N trials between them, none twice; the report and the chosen export."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, run_tinyopt

pytestmark = pytest.mark.slow

# Small trials: one epoch per step, a few validation samples; the pipeline is the real one.
FAST = ("--board", "qemu-m4", "--epochs", "1", "--eval-samples", "120")


def _popen(*args, log: Path) -> subprocess.Popen:
    f = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "tinyopt", *map(str, args)], stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def _trials(storage, name="tinyopt"):
    import optuna

    from tinyopt.search.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = open_storage(str(storage), Path(storage).parent if "://" not in str(storage) else Path("."))
    try:
        return optuna.load_study(study_name=name, storage=st).get_trials(deepcopy=True)
    except KeyError:
        return []


def _stop_leftover_emulators(out: Path) -> None:
    from tinyopt import flash
    for state in out.glob("trials/.*/project/.tinyopt"):
        flash.stop(state.parent)


def _check_report(report: dict, n: int) -> None:
    for key in ("baseline", "chosen"):
        assert report[key] is not None, key
        for fig in ("accuracy", "cycles", "flash_bytes", "ram_bytes"):
            assert report[key][fig] is not None and report[key][fig] > 0, (key, fig)
    assert len(report["trials"]) == n
    for t in report["trials"]:
        assert {"number", "params", "accuracy", "cycles", "flash_bytes", "ram_bytes", "feasible"} <= set(t)
    assert report["pareto"] and set(report["pareto"]) <= {t["number"] for t in report["trials"]}
    assert report["baseline"]["cycles"] == report["trials"][0]["cycles"]   # trial 0 is the dense model
    assert "emulated" in report["measured_on"]


def test_search_killed_mid_trial_resumes(tmp_path):
    out = tmp_path / "s"
    args = ("search", *FAST, "--trials", "3", "--max-accuracy-drop", "100", "-o", out)
    proc = _popen(*args, log=tmp_path / "first.log")
    journal = out / "study.journal"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            ts = _trials(journal) if journal.exists() else []
            done = [t for t in ts if t.state.name == "COMPLETE"]
            running = [t for t in ts if t.state.name == "RUNNING"]
            if done and running:
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(1)
        else:
            pytest.fail("the first trial did not finish in 10 minutes")
        time.sleep(4)                       # inside the second trial (training or building)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _stop_leftover_emulators(out)
    before = {t.number: t.values for t in _trials(journal) if t.state.name == "COMPLETE"}
    killed = [t.number for t in _trials(journal) if t.state.name == "RUNNING"]
    assert before and killed

    # Starting again without --resume is refused; with it the study finishes.
    assert_one_line_error(run_tinyopt(*args), "already exists", "--resume")
    res = run_tinyopt(*args, "--resume", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    _check_report(report, 3)
    after = {t.number: t.values for t in _trials(journal) if t.state.name == "COMPLETE"}
    for number, values in before.items():            # every finished trial kept, unchanged
        assert after[number] == values
    assert report["interrupted"] == killed
    # The interrupted configuration was queued again and ran.
    retried = [t for t in _trials(journal) if t.user_attrs.get("retry_of") == killed[0]]
    assert retried and retried[0].state.name == "COMPLETE"
    assert not list((out / "trials").glob(".*tmp*"))
    chosen = out / "chosen"
    assert (chosen / "model_int8.tflite").is_file() and (chosen / "project" / "platformio.ini").is_file()
    assert (out / "pareto.png").stat().st_size > 10000 and "Pareto front" in (out / "report.md").read_text()

    # A budget nothing meets: the study is complete, so no new trial; a one-line answer.
    none = run_tinyopt(*args, "--resume", "--max-accuracy-drop", "0", "--max-flash-kb", "1")
    assert_one_line_error(none, "no trial of 3 meets the budget", "closest")
    assert json.loads((out / "report.json").read_text())["chosen"] is None


def _workers(tmp_path, storage: str | None, outs: tuple[Path, Path], n: int) -> dict:
    main_args = ["search", *FAST, "--trials", n, "--max-accuracy-drop", "100", "-o", outs[0]]
    worker_args = ["search", *FAST, "--trials", n, "--max-accuracy-drop", "100", "-o", outs[1], "--worker"]
    if storage:
        main_args += ["--storage", storage]
        worker_args += ["--storage", storage]
    else:
        worker_args += ["--storage", outs[0] / "study.journal"]
    procs = [_popen(*main_args, log=tmp_path / "main.log"), _popen(*worker_args, log=tmp_path / "worker.log")]
    try:
        for p in procs:
            p.wait(timeout=900)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    for p, name in zip(procs, ("main", "worker")):
        assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    report = json.loads((outs[0] / "report.json").read_text())
    _check_report(report, n)
    numbers = [t["number"] for t in report["trials"]]
    assert len(set(numbers)) == n
    workers = {t["number"]: (t["worker"]["host"], t["worker"]["pid"]) for t in report["trials"]}
    assert set(pid for _, pid in workers.values()) == {procs[0].pid, procs[1].pid}, workers
    # None run twice: each counted trial's files exist in exactly one worker's directory.
    ran = sorted(int(d.name) for o in set(outs) for d in (o / "trials").glob("[0-9]*"))
    assert sorted(ran) == sorted(numbers), ran
    assert "trial" in (tmp_path / "worker.log").read_text()
    return report


def test_two_workers_share_a_journal_study(tmp_path):
    out = tmp_path / "shared"
    _workers(tmp_path, None, (out, out), 3)


def _pg_binaries():
    found = {}
    for tool in ("initdb", "pg_ctl"):
        path = shutil.which(tool) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))), None)
        if path is None:
            return None
        found[tool] = str(path)
    return found


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL cluster in a temporary folder (initdb + pg_ctl), as the
    `postgres` user when the tests run as root (initdb refuses root)."""
    tools = _pg_binaries()
    if tools is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="tinyopt-pg-"))
    prefix = []
    if os.geteuid() == 0:
        import pwd
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        # runuser lives in /usr/sbin, which a minimal PATH (cron, env -i) leaves out
        runuser = shutil.which("runuser") or next((p for p in ("/usr/sbin/runuser", "/sbin/runuser")
                                                   if os.access(p, os.X_OK)), None)
        if runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root and runuser (util-linux) is not found to start the server as postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    try:
        subprocess.run(prefix + [tools["initdb"], "-D", str(data), "-A", "trust", "-U", "tinyopt", "-N",
                                 "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run(prefix + [tools["pg_ctl"], "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
                                 "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                                 "start"], check=True, capture_output=True, timeout=120)
    except subprocess.CalledProcessError as err:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server here: {err.stderr.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://tinyopt@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    """Two machines in effect: each worker has its own OUT; the study lives in PostgreSQL."""
    report = _workers(tmp_path, postgres_url, (tmp_path / "a", tmp_path / "b"), 3)
    assert (tmp_path / "a" / "chosen" / "model_int8.tflite").is_file()
    assert report["storage"] == "rdb"
    assert not (tmp_path / "a" / "study.journal").exists()


def test_a_real_board_is_searched_on_the_emulated_core_of_its_cpu_class(tmp_path):
    """No nano33ble is attached: cycles come from qemu-m4 (its Cortex-M4F class), flash and RAM
    from `analyze` against the nano33ble board file, and chosen/ holds a nano33ble project."""
    out = tmp_path / "nano"
    proc = run_tinyopt("search", "--board", "nano33ble", "--epochs", "1", "--eval-samples", "120",
                       "--trials", "2", "--max-accuracy-drop", "100", "-o", out, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["measured_on"].startswith("qemu-m4 (emulated core of nano33ble")
    assert all(t["state"] == "COMPLETE" for t in report["trials"]), report["trials"]
    ini = (out / "chosen" / "project" / "platformio.ini").read_text()
    assert "board = nano33ble" in ini
    from tinyopt.analysis import analyze
    fit = analyze(out / "chosen" / "model_int8.tflite", "nano33ble").fit
    assert report["chosen"]["flash_bytes"] == fit.flash_used and report["chosen"]["ram_bytes"] == fit.ram_used


def test_a_latency_budget_needs_the_board_itself(tmp_path):
    proc = run_tinyopt("search", "--board", "nano33ble", "--max-latency-ms", "5", "-o", tmp_path / "s")
    assert_one_line_error(proc, "--max-latency-ms", "attached")
    assert not (tmp_path / "s").exists()


def test_ctrl_c_says_how_to_continue(tmp_path):
    out = tmp_path / "s"
    # Enough trials that one is always running when the signal comes (a search that has
    # already finished has nothing left to interrupt).
    args = ("search", *FAST, "--trials", "12", "--max-accuracy-drop", "100", "-o", out)
    proc = subprocess.Popen([sys.executable, "-m", "tinyopt", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = {t.state.name for t in (_trials(out / "study.journal")
                                             if (out / "study.journal").exists() else [])}
            if {"COMPLETE", "RUNNING"} <= states:
                break
            assert proc.poll() is None
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _stop_leftover_emulators(out)
    assert proc.returncode == 130, stderr[-2000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "every finished trial is kept" in lines[0] and "--resume" in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr
