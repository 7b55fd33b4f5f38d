import click

from tinyopt.commands.common import console, emit_json, json_option


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} kB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


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
    table = Table(title="tinyopt boards", show_lines=False)
    for col in ("board", "cpu", "MHz", "flash", "RAM", "timer", "baud", "TFLM library", "kernels"):
        table.add_column(col, justify="right" if col in ("MHz", "flash", "RAM", "baud") else "left",
                         no_wrap=col in ("board", "flash", "RAM"))
    for b in boards:
        table.add_row(b.name + (" (emulated)" if b.emulated else ""), b.cpu, str(b.clock_mhz),
                      _kb(b.flash_bytes), _kb(b.ram_bytes), b.timer, str(b.baud),
                      b.tflm.get("library", "-"), b.tflm.get("kernels", "-"))
    console.print(table)
