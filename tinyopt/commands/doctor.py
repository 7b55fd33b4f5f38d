import click
from rich.table import Table

from tinyopt.commands.common import console, emit_json, json_option


@click.command("doctor")
@json_option
def command(as_json):
    """Check installed versions and tools, and say how to fix what disagrees.

    Exits non-zero when a required piece is missing or versions disagree.
    """
    from dataclasses import asdict

    from tinyopt.doctor import run_checks
    checks = run_checks()
    if as_json:
        emit_json([asdict(c) for c in checks])
    table = Table(title="tinyopt doctor", title_justify="left")
    for col in ("check", "version", "status", "fix"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, c.version or "–", ("[green]ok[/] " if c.ok else "[red]problem[/] ") + c.detail, c.fix)
    console.print(table)
    if not all(c.ok for c in checks):
        raise SystemExit(1)
