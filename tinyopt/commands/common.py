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


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
