"""The `tinyopt` command group. Each command lives in tinyopt/commands/<name>.py and is
imported only when it runs, so `tinyopt --help` and `tinyopt boards` never load TensorFlow."""
import importlib
import os
import sys

import click

from tinyopt import __version__
from tinyopt.errors import TinyoptError

# name -> one-line summary (shown by --help without importing the command's module)
COMMANDS = {
    "build": "Run every stage: optimize, convert, analyze, generate, flash, measure.",
    "optimize": "Prune / cluster / QAT a Keras model, then convert it to int8.",
    "convert": "Convert a Keras model to a full-integer int8 .tflite and evaluate it.",
    "analyze": "Exact memory, MACs and TFLM compatibility of an int8 .tflite.",
    "generate": "Write a PlatformIO firmware project (TFLM or AOT backend) for a board.",
    "flash": "Build and upload a generated project (or start the emulated board).",
    "measure": "Measure latency and check outputs on the device over serial.",
    "search": "Find the fastest/smallest optimized model within an accuracy/latency/memory budget.",
    "boards": "List the supported boards and their budgets.",
    "doctor": "Check that the installed tools and versions agree.",
}

# Commands that live in a package of their own (default: tinyopt.commands.<name>)
MODULES = {"search": "tinyopt.search.cli"}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(MODULES.get(name, f"tinyopt.commands.{name}"))
        return module.command

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyopt")
def group():
    """tinyopt takes a trained Keras model to a measured microcontroller deployment.

    \b
    Typical use:
      tinyopt build --board qemu-m4              # bundled demo model, emulated board
      tinyopt build model.keras --data train.npz --prune 0.75 --board esp32
    Every stage is also a command of its own; run `tinyopt COMMAND --help`.
    """


def main(argv=None):
    try:
        # Without standalone mode click returns the exit code a command asked for.
        code = group.main(args=argv, prog_name="tinyopt", standalone_mode=False)
    except TinyoptError as err:
        click.echo(err.one_line(), err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("error: interrupted (nothing was written)", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except Exception as err:  # a bug of ours: still one line unless asked for more
        if os.environ.get("TINYOPT_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(err).__name__}: {err} "
                   "(rerun with TINYOPT_DEBUG=1 for a traceback and report it)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
