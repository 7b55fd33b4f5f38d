"""Options and output helpers shared by the commands."""
import json
import sys

import click

from tinyopt.console import console  # noqa: F401 (the commands' console)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the report as JSON on stdout (human summary goes to stderr).")(f)


def force_option(f):
    return click.option("--force", is_flag=True,
                        help="Replace the output directory if it exists.")(f)


def sparse_option(f):
    # the choices are sparse.MODES, written out so that --help does not import the code generator
    return click.option("--sparse", type=click.Choice(["auto", "size", "off"]), default="auto", show_default=True,
                        help="aot backend: how pruned layers are stored. auto: sparse (zeros skipped) where that is "
                             "smaller and not slower than dense - convolutions as non-zero lists from 72 % zeros, "
                             "fully connected layers as bitmaps from 93 % (cores with the DSP extension: "
                             "M4/M7/M33/M55) or 90 % (others); size: the smallest form wherever at least half the "
                             "weights are zero; off: dense.")(f)


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
