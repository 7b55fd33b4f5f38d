import click

from tinyopt.commands.common import console, emit_json, json_option


@click.command("flash")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option("--board", default=None, help="Board name (default: the one the project was generated for).")
@click.option("--port", default=None, help="Serial/upload port (default: found by the board's USB VID:PID).")
@click.option("--keep-running", is_flag=True,
              help="Emulated board: leave the emulator running and print its serial port.")
@click.option("--stop", "stop_", is_flag=True, help="Emulated board: stop the emulator started for PROJECT.")
@click.option("-v", "--verbose", is_flag=True, help="Show PlatformIO's output.")
@json_option
def command(project, board, port, keep_running, stop_, verbose, as_json):
    """Build PROJECT with PlatformIO and upload it (for qemu-m4: start the emulator).

    \b
    Examples:
      tinyopt flash fw/ --board esp32                  # port found by USB VID:PID
      tinyopt flash fw/ --port /dev/ttyUSB1
      tinyopt flash fw/ --board qemu-m4 --keep-running # prints the emulator's serial port
      tinyopt flash fw/ --stop                         # ends that emulator
    """
    from tinyopt import flash as stage
    if stop_:
        stopped = stage.stop(project)
        console.print("emulator stopped" if stopped else "no emulator was running for this project")
        if as_json:
            emit_json({"stopped": stopped})
        return
    on_line = (lambda line: console.print(line, markup=False, highlight=False)) if verbose else None
    with console.status("building and uploading with PlatformIO"):
        result = stage.flash(project, board, port, keep_running=keep_running, on_line=on_line)
    if as_json:
        emit_json(result.to_json())
    b = result.build
    if b and b.flash_bytes is not None:
        console.print(f"built: flash {b.flash_bytes} of {b.flash_max} bytes, RAM {b.ram_bytes} of {b.ram_max} bytes")
    if result.emulated:
        console.print(f"boot: {' '.join(result.banner) or '(no banner seen)'}")
        if result.running:
            console.print(f"emulator running (pid {result.pid}); serial port: [bold]{result.port}[/]")
            console.print(f"  written to {result.project}/.tinyopt/port; stop it with "
                          f"`tinyopt flash {project} --stop`")
            click.echo(result.port)
        else:
            console.print("emulator started, booted and stopped; use --keep-running to talk to it")
    else:
        console.print(f"uploaded to {result.board}" + (f" on {result.port}" if result.port else ""))
