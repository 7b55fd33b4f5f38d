import click

from tinyopt.backends import CHOICE_HELP
from tinyopt.backends import names as backend_names
from tinyopt.commands.common import console, emit_json, force_option, json_option, sparse_option


@click.command("generate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--board", required=True, help="Board name (boards/NAME.toml); `tinyopt boards` lists them.")
@click.option("--backend", type=click.Choice(backend_names()), default=None, help=CHOICE_HELP)
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Project directory to write.")
@click.option("--arena-placement", type=click.Choice(["static", "heap", "psram"]), default=None,
              help="ESP32 only: where the TFLM arena lives (default: the board file's choice).")
@sparse_option
@force_option
@json_option
def command(model, board, backend, out, arena_placement, sparse, force, as_json):
    """Write a PlatformIO firmware project for an int8 MODEL.tflite on a board.

    The project holds the model library (lib/tinyopt_model/), the MLPerf Tiny serial
    harness with a golden-vector check at boot, the board glue, and platformio.ini.
    A model that does not fit the board is refused with the numbers; --force generates
    it anyway (and replaces an existing -o directory).

    \b
    Examples:
      tinyopt generate model_int8.tflite --board esp32 -o fw/
      tinyopt generate model_int8.tflite --board nucleo_l4r5zi --backend aot -o fw/
      cd fw && pio run -t upload
    """
    from tinyopt.codegen.generate import generate
    options = {"arena_placement": arena_placement} if arena_placement else {}
    options["sparse"] = sparse
    project = generate(model, board, backend=backend, out=out, force=force, options=options)
    if as_json:
        emit_json(project.to_json())
    meta = project.metadata
    lib = meta["library"]
    console.print(f"[bold]{project.path}[/]: {project.backend} project for {project.board} "
                  f"({len(project.files)} files)")
    if "arena_bytes" in lib:
        console.print(f"  arena {lib['arena_bytes']} bytes ({lib.get('arena_placement', 'static')}), "
                      f"ops {', '.join(lib.get('ops', []))}")
    if meta.get("fit"):
        console.print(f"  {meta['fit']['verdict']}")
    if project.board == "host":
        console.print("  host build: tests/host_build.py in tinyopt's source tree (needs TINYOPT_TFLM_DIR for tflm)")
    else:
        console.print(f"  serial {meta['serial']['baud']} baud; next: cd {out} && pio run -t upload")
