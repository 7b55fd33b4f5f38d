"""Where a study lives: a journal file in OUT (the default: every finished trial is one
appended record, so a search killed at any moment loses nothing that was finished) or an
RDB URL (postgresql://..., sqlite:///...) that workers on several machines share.

Workers record who they are (host, pid) on each trial they start. A trial left RUNNING by a
process of this host that no longer exists was interrupted: it is marked failed (not
counted) and its parameters are queued again, so the configuration is still tried."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from tinyopt.errors import TinyoptError

JOURNAL = "study.journal"
STUDY_NAME = "tinyopt"


def optuna():
    import logging

    import optuna as _optuna
    _optuna.logging.set_verbosity(_optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    return _optuna


def is_url(storage: str | None) -> bool:
    return bool(storage) and "://" in str(storage)


def journal_path(storage: str | None, out: Path) -> Path | None:
    return None if is_url(storage) else (Path(storage) if storage else Path(out) / JOURNAL)


def open_storage(storage: str | None, out: Path):
    """An optuna storage: the journal file OUT/study.journal, a journal file given as a path,
    or an RDB URL (heartbeats on, so a dead worker's trial is failed after a grace period)."""
    o = optuna()
    if is_url(storage):
        import time
        import warnings
        attempts = 5
        for attempt in range(attempts):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # heartbeat_interval is "experimental" in optuna
                    return o.storages.RDBStorage(rdb_url(str(storage)), heartbeat_interval=30, grace_period=120,
                                                 engine_kwargs={"pool_pre_ping": True})
            except ImportError as err:
                last = err
                break
            except Exception as err:
                # Two processes creating the schema of a new database at once: one of them loses
                # the race on a unique index; the schema exists afterwards, so try again.
                last = err
                if attempt + 1 < attempts:
                    time.sleep(1.0 + attempt)
        first = str(last).strip().splitlines()[0][:160] if str(last).strip() else type(last).__name__
        raise TinyoptError(f"cannot open the study storage {_redact(storage)}: {first}",
                           "check the URL (postgresql://user:password@host:port/db) and that the "
                           "server accepts connections")
    path = Path(storage) if storage else Path(out) / JOURNAL
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    # The open()-based lock works on every local file system (the symlink lock does not on some).
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return o.storages.JournalStorage(backend)


def rdb_url(url: str) -> str:
    """SQLAlchemy 2.1 maps postgresql:// to psycopg 3; tinyopt ships psycopg2 (binary wheels
    everywhere), so a plain PostgreSQL URL is given its driver explicitly."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def worker_id() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(study) -> list[int]:
    """Fail this host's trials whose process is gone and queue their parameters again."""
    o = optuna()
    from optuna.trial import TrialState
    storage = study._storage
    host = socket.gethostname()
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker") or {}
        if w.get("host") != host or _alive(int(w.get("pid", -1))) or w.get("pid") == os.getpid():
            continue
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        attrs = {k: v for k, v in t.user_attrs.items() if k in ("role",)}
        study.enqueue_trial(dict(t.params), user_attrs={**attrs, "retry_of": t.number},
                            skip_if_exists=False)
        recovered.append(t.number)
    if is_rdb(study):
        try:
            o.storages.fail_stale_trials(study)
        except Exception:
            pass
    return recovered


def is_rdb(study) -> bool:
    return type(study._storage).__name__ == "RDBStorage" or \
        type(getattr(study._storage, "_backend", None)).__name__ == "RDBStorage"
