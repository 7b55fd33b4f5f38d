"""Output directories are built in a temporary sibling and renamed into place at the end,
so a failure never leaves a half-written directory and never clobbers a user's files."""
import contextlib
import shutil
import tempfile
from pathlib import Path

from tinyopt.errors import TinyoptError


def check_writable(out: Path, force: bool) -> None:
    """Refuse early (before any long work) when OUT exists and --force was not given."""
    out = Path(out)
    if out.exists() and not force:
        raise TinyoptError(f"output path {out} already exists",
                           "choose another -o path or pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise TinyoptError(f"output path {out} exists and is not a directory",
                           "choose another -o path")


@contextlib.contextmanager
def staged_output(out: Path, force: bool = False):
    """Yield a temporary directory next to OUT; on success it replaces OUT atomically."""
    out = Path(out).resolve()
    check_writable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if out.exists():
        # Move the old tree aside first so OUT is never missing a valid version for long.
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(trash / out.name)
        stage.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        stage.rename(out)
