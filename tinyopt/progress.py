"""Progress display for long work: a rich progress bar fed by Keras training callbacks."""
from __future__ import annotations

import contextlib

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tinyopt.console import console


def make_progress(transient: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=transient,
                    # Bars are for people at a terminal; logs and pipes get the summary only.
                    disable=not console.is_terminal)


def keras_progress_callback(progress: Progress, description: str, epochs: int, steps: int):
    """A tf_keras Callback that advances one bar over epochs*steps batches."""
    import tf_keras

    class _Bar(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.task = progress.add_task(description, total=epochs * steps, status="")

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            progress.update(self.task, advance=1, status=f"loss {loss:.4f}" if loss is not None else "")

        def on_epoch_end(self, epoch, logs=None):
            # Keep the bar exact even when the last batch of an epoch is short or skipped.
            progress.update(self.task, completed=(epoch + 1) * steps)

    return _Bar()


@contextlib.contextmanager
def stage(progress: Progress | None, description: str):
    """An indeterminate one-step task for work without inner steps (conversion, evaluation)."""
    if progress is None:
        yield
        return
    task = progress.add_task(description, total=1, status="")
    yield
    progress.update(task, completed=1)
