"""`tinyopt search`: an Optuna study (multi-objective: quality up; cycles, flash, RAM down;
the budget as constraints) whose trials each run the real pipeline (trial.py).

Counting: the study holds N trials that ran (complete, or failed on their own account).
Trials interrupted by a dead process and trials a worker started after N were reached
("surplus") do not count and are never reported as results; nor do repeats of a finished
configuration, whose known result the sampler is told instead of running it again. A trial
number is assigned by the storage once, so no two workers run the same trial; when two
workers ask for the N-th trial at once, the one with the higher number stands down."""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tinyopt.errors import TinyoptError
from tinyopt.search import space
from tinyopt.search import storage as storage_mod
from tinyopt.search.trial import SearchConfig, run_trial

OBJECTIVES = ("quality", "cycles", "flash_bytes", "ram_bytes")


@dataclass(frozen=True)
class SearchOutcome:
    out: Path
    report: dict | None          # None for a worker
    ran: tuple[int, ...]         # trial numbers this process ran


def _states():
    from optuna.trial import TrialState
    return TrialState


def counted(study) -> list:
    """Trials that count towards --trials: complete, running, or failed on their own account."""
    S = _states()
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus") or t.user_attrs.get("interrupted") or "duplicate_of" in t.user_attrs:
            continue
        if t.state in (S.COMPLETE, S.RUNNING) or (t.state == S.FAIL and "error" in t.user_attrs):
            out.append(t)
    return out


def constraints_of(figures: dict, cfg: SearchConfig, baseline_quality: float) -> list[float]:
    """Optuna constraints (<= 0 is feasible): accuracy drop, latency, flash, RAM."""
    q = figures.get("quality")
    c = [(baseline_quality - q) - cfg.max_accuracy_drop if q is not None else 1e9]
    if cfg.max_latency_ms is not None:
        lat = figures.get("latency_ms")
        c.append(lat - cfg.max_latency_ms if lat is not None else 1e9)
    if cfg.max_flash_kb is not None:
        c.append(figures["flash_bytes"] / 1024.0 - cfg.max_flash_kb)
    if cfg.max_ram_kb is not None:
        c.append(figures["ram_bytes"] / 1024.0 - cfg.max_ram_kb)
    return [float(v) for v in c]


def _constraints_func(frozen):
    return frozen.user_attrs.get("constraints", [1e9])


def _sampler(seed: int, worker: bool):
    o = storage_mod.optuna()
    # Workers get their own stream, or two of them would propose the same points.
    s = seed if not worker else seed + 1 + os.getpid() % 100000
    import warnings
    with warnings.catch_warnings():
        # constraints_func is deprecated from optuna 5 (Trial.set_constraint), absent before it.
        warnings.simplefilter("ignore")
        return o.samplers.TPESampler(seed=s, n_startup_trials=6, constraints_func=_constraints_func,
                                     multivariate=True, group=True)


def open_study(cfg: SearchConfig, out: Path, storage: str | None, study_name: str, *, worker: bool,
               wait_s: float = 600.0):
    """Create (or load) the study. A worker waits for the study that the main process creates."""
    o = storage_mod.optuna()
    journal = storage_mod.journal_path(storage, out)
    deadline = time.monotonic() + wait_s
    while worker and journal is not None and not journal.is_file():
        # A worker creates nothing: it waits for the main process's journal.
        if time.monotonic() > deadline:
            raise TinyoptError(f"no study journal {journal} appeared within {wait_s:.0f} s",
                               "start the main `tinyopt search` (without --worker) first")
        time.sleep(1.0)
    st = storage_mod.open_storage(storage, out)
    directions = ["maximize", "minimize", "minimize", "minimize"]
    if worker:
        while True:
            try:
                study = o.load_study(study_name=study_name, storage=st, sampler=_sampler(cfg.seed, True))
                if study.user_attrs.get("config"):
                    break
            except KeyError:
                pass
            if time.monotonic() > deadline:
                raise TinyoptError(f"no study {study_name!r} appeared in the storage within {wait_s:.0f} s",
                                   "start the main `tinyopt search` (without --worker) on the same storage first")
            time.sleep(1.0)
    else:
        study = o.create_study(study_name=study_name, storage=st, directions=directions,
                               sampler=_sampler(cfg.seed, False), load_if_exists=True)
    stored = study.user_attrs.get("config")
    if stored is None:
        study.set_user_attr("config", cfg.to_json())
        study.set_user_attr("objectives", list(OBJECTIVES))
        for b in cfg.backends:
            study.enqueue_trial(space.baseline_params(b), user_attrs={"role": "baseline"})
    else:
        mine, theirs = cfg.identity(), {k: stored.get(k) for k in cfg.identity()}
        theirs["backends"] = tuple(theirs["backends"] or ())
        if mine != theirs:
            diff = ", ".join(f"{k}: {theirs[k]!r} here {mine[k]!r}" for k in mine if mine[k] != theirs[k])
            raise TinyoptError(f"the study {study_name!r} was started with other settings ({diff})",
                               "use the same MODEL, --data, --board, --backend and --epochs, or another "
                               "--study-name / output directory")
    return study


def baseline_quality(study, cfg: SearchConfig, wait: bool = True) -> float:
    """The dense int8 model's quality (trial of role baseline), waiting while it runs elsewhere."""
    S = _states()
    while True:
        base = [t for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get("role") == "baseline" and not t.user_attrs.get("interrupted")
                and not t.user_attrs.get("surplus")]
        done = [t for t in base if t.state == S.COMPLETE or "figures" in t.user_attrs]
        if done:
            return float(done[0].user_attrs["figures"]["quality"])
        if any(t.state == S.FAIL and "error" in t.user_attrs for t in base) and \
                not any(t.state in (S.RUNNING, S.WAITING) for t in base):
            err = next(t.user_attrs["error"] for t in base if "error" in t.user_attrs)
            raise TinyoptError(f"the dense model itself did not get through the pipeline: {err}",
                               "run `tinyopt build` with the same MODEL and board to see why")
        if not wait:
            raise TinyoptError("the dense baseline is not measured yet", "wait for the study's first trial")
        time.sleep(2.0)


def run_search(cfg: SearchConfig, out: Path, *, storage: str | None = None, study_name: str = "tinyopt",
               worker: bool = False, progress=None, on_trial=None, stop=None) -> tuple[object, list[int]]:
    """Run trials until the study holds cfg.trials of them; return (study, numbers run here).
    STOP (a threading.Event, set on Ctrl-C) ends the loop before the next trial even when the
    KeyboardInterrupt itself was swallowed by library code (a bare `except:`) inside a trial."""
    S = _states()
    out = Path(out)
    if not worker:
        out.mkdir(parents=True, exist_ok=True)
    study = open_study(cfg, out, storage, study_name, worker=worker)
    out.mkdir(parents=True, exist_ok=True)
    _clean_interrupted(out, storage_mod.recover_interrupted(study))
    ran: list[int] = []
    bar = progress.add_task("search", total=cfg.trials, status="") if progress is not None else None

    def advance():
        if bar is not None:
            finished = sum(1 for t in counted(study) if t.state != S.RUNNING)
            progress.update(bar, completed=min(cfg.trials, finished))

    advance()
    repeats = 0
    while len(counted(study)) < cfg.trials:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        _queue_next_start(study, cfg)
        trial = study.ask()
        trial.set_user_attr("worker", storage_mod.worker_id())
        numbers = sorted(t.number for t in counted(study))
        if trial.number in numbers and numbers.index(trial.number) >= cfg.trials:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=S.FAIL)
            break
        params = space.suggest(trial, cfg.backends)
        twin = _completed_twin(study, trial)
        if twin is not None:
            # The sampler proposed a configuration that already ran (categorical spaces make
            # TPE do so): tell it the known result at no cost, do not count it, ask again.
            trial.set_user_attr("duplicate_of", twin.number)
            if twin.state == S.COMPLETE:
                study.tell(trial, twin.values)
            else:
                study.tell(trial, state=S.FAIL)
            repeats += 1
            if repeats >= MAX_REPEATS:   # the sampler is stuck on known points: a fresh one
                study.enqueue_trial(space.random_params(cfg.backends, seed=cfg.seed + trial.number),
                                    user_attrs={"role": "random"})
                repeats = 0
            continue
        repeats = 0
        role = trial.user_attrs.get("role", "sampled")
        folder = out / "trials" / f"{trial.number:04d}"
        if folder.exists():
            shutil.rmtree(folder)  # left by an interrupted attempt of this very trial number
        if bar is not None:
            progress.update(bar, status=f"trial {trial.number}: {space.describe(params)}")
        before = set(progress.task_ids) if progress is not None else set()
        try:
            figures = run_trial(cfg, params, folder, progress)
        except Exception as err:   # one configuration failing must not end the study
            if not isinstance(err, TinyoptError) and os.environ.get("TINYOPT_DEBUG"):
                raise
            why = _trial_error(err)
            trial.set_user_attr("error", why)
            study.tell(trial, state=S.FAIL)
            ran.append(trial.number)
            _drop_tasks(progress, before)
            advance()
            if on_trial:
                on_trial(trial.number, params, None, why)
            continue
        _drop_tasks(progress, before)
        trial.set_user_attr("figures", figures)
        trial.set_user_attr("describe", space.describe(params))
        trial.set_user_attr("path", str(folder.resolve()))
        base_q = figures["quality"] if role == "baseline" else baseline_quality(study, cfg)
        trial.set_user_attr("constraints", constraints_of(figures, cfg, base_q))
        values = [figures["quality"] if figures["quality"] is not None else 0.0,
                  figures["cycles"] if figures["cycles"] is not None else 1e18,
                  float(figures["flash_bytes"]), float(figures["ram_bytes"])]
        study.tell(trial, values)
        ran.append(trial.number)
        advance()
        if on_trial:
            on_trial(trial.number, params, figures, None)
    if not worker:
        # The report waits for trials still running in other workers.
        while any(t.state == S.RUNNING for t in counted(study)):
            storage_mod.recover_interrupted(study)
            time.sleep(2.0)
            advance()
    advance()
    return study, ran


MAX_REPEATS = 8


def _completed_twin(study, trial):
    """A finished, counted trial (complete, or failed on its own account) with exactly
    TRIAL's parameters, if any."""
    for t in counted(study):
        if t.number != trial.number and t.state != _states().RUNNING and t.params == trial.params:
            return t
    return None


def _trial_error(err: Exception) -> str:
    """One line for the report: the user's kind of error as it is, a bug of ours marked so."""
    if isinstance(err, TinyoptError):
        return err.one_line().removeprefix("error: ")
    first = (str(err).strip().splitlines() or [""])[0][:300]
    return (f"internal error: {type(err).__name__}: {first} (rerun the trial's configuration with "
            f"`tinyopt build` and TINYOPT_DEBUG=1 for a traceback, and report it)")


def _drop_tasks(progress, before: set) -> None:
    if progress is None:
        return
    for task in list(progress.task_ids):
        if task not in before:
            progress.remove_task(task)


def _clean_interrupted(out: Path, numbers: list[int]) -> None:
    """Stop the emulator an interrupted trial may have left running and drop its staged files."""
    from tinyopt import flash
    for n in numbers:
        for staged in (out / "trials").glob(f".{n:04d}.tmp-*"):
            if (staged / "project" / ".tinyopt").is_dir():
                try:
                    flash.stop(staged / "project")
                except Exception:
                    pass
            shutil.rmtree(staged, ignore_errors=True)


def _queue_next_start(study, cfg: SearchConfig) -> None:
    """Queue the next starting point when nothing else waits: one at a time, so that an
    interrupted trial queued again on resume runs first."""
    S = _states()
    trials = study.get_trials(deepcopy=False)
    if any(t.state == S.WAITING for t in trials):
        return
    queued = sum(1 for t in trials if t.user_attrs.get("role") == "start" and "retry_of" not in t.user_attrs)
    points = space.starting_points(cfg.backends)
    if queued < len(points):
        study.enqueue_trial(points[queued], user_attrs={"role": "start"}, skip_if_exists=True)
