import click

from tinyopt.commands.common import console, emit_json, json_option
from tinyopt.units import size


@click.command("boards")
@json_option
def command(as_json):
    """List the supported boards: CPU, clock, flash/RAM budgets, timer, TFLM library.

    Boards are data: each is one file boards/NAME.toml (see boards/README.md).
    """
    from rich.table import Table

    from tinyopt.boards import all_boards
    boards = all_boards()
    if as_json:
        emit_json([{"name": b.name, "description": b.description, "family": b.family, "cpu": b.cpu,
                    "clock_mhz": b.clock_mhz, "flash_bytes": b.flash_bytes, "ram_bytes": b.ram_bytes,
                    "runtime_flash_bytes": b.runtime_flash_bytes,
                    "runtime_ram_bytes": b.runtime_ram_bytes, "timer": b.timer, "baud": b.baud,
                    "backends": list(b.backends), "usb_ids": list(b.usb_ids),
                    "platformio": b.platformio, "tflm": b.tflm, "emulated": b.emulated}
                   for b in boards])
        return
    table = Table(title="tinyopt boards", title_justify="left")
    for col in ("board", "cpu", "flash", "RAM", "kernels"):
        # Only the CPU text may wrap; names and sizes must stay readable at 80 columns.
        table.add_column(col, justify="right" if col in ("flash", "RAM") else "left",
                         no_wrap=col != "cpu", min_width=None if col == "cpu" else len(col))
    for b in boards:
        cpu = f"{b.cpu} @ {b.clock_mhz} MHz" if b.clock_mhz else b.cpu
        table.add_row(b.name, cpu,
                      size(b.flash_bytes), size(b.ram_bytes), b.tflm.get("kernels", "-"))
    console.print(table)
    console.print("Backends, TFLM library, timer, baud, USB ids, PlatformIO platform: tinyopt boards --json")
