import click

from tinyopt.commands.common import console, emit_json, json_option


def _fmt(summary, unit, scale=1.0, digits=1):
    if not summary:
        return "–"
    unit = f" {unit}" if unit else ""
    return (f"median {summary['median'] * scale:.{digits}f}{unit} (min {summary['min'] * scale:.{digits}f}, "
            f"p90 {summary['p90'] * scale:.{digits}f}, max {summary['max'] * scale:.{digits}f})")


def print_measurement(m) -> None:
    console.print(f"[bold]{m.board}[/] on {m.port}: {m.device.get('model', '?')} "
                  f"({m.device.get('backend', '?')}), timer {m.timer}")
    console.print(f"  {m.windows} windows x {m.runs} inferences (warm-up {m.warmup})")
    console.print(f"  latency: {_fmt(m.latency_us, 'µs')}")
    if m.cycles:
        label = "emulated cycles (instructions)" if m.emulated else "cycles"
        console.print(f"  {label}: {_fmt(m.cycles, '', digits=0)}")
    o = m.outputs
    if o and o.get("inputs"):
        console.print(f"  outputs vs TFLM runtime: {o['exact_matches']}/{o['inputs']} byte-exact, "
                      f"max |diff| {o['max_abs_diff']}, top-1 agreement {100 * o['top1_agreement']:.1f} %")
    elif o and o.get("skipped"):
        console.print(f"  outputs not checked: {o['skipped']}")
    if m.layers:
        print_layers(m)
    if m.emulated:
        console.print("  [dim]emulated board: QEMU -icount figures, not silicon timing[/]")


def print_layers(m) -> None:
    from rich.table import Table
    emulated = "emulated " if m.emulated else ""
    table = Table(title=f"per layer ({emulated}cycles per inference, timer overhead removed)",
                  title_justify="left", box=None, pad_edge=False)
    for col, justify in (("#", "right"), ("op", "left"), ("layer", "left"), ("MACs", "right"),
                         ("cycles", "right"), ("µs", "right"), ("cyc/MAC", "right"), ("share", "right")):
        table.add_column(col, justify=justify)
    for r in m.layers:
        table.add_row(str(r["index"]), r["op"], r["layer"] or "", f"{r['macs']:,}", f"{r['cycles']:,.0f}",
                      f"{r['us']:,.1f}", f"{r['cycles_per_mac']:.2f}" if r["cycles_per_mac"] else "",
                      f"{100 * r['share']:.1f} %")
    console.print(table)
    a, o = m.layer_agreement, m.layer_overhead
    if a and a.get("ratio") is not None:
        console.print(f"  layers sum to {100 * a['ratio']:.2f} % of the whole inference ({a['unit']}); "
                      f"timer overhead {o['cycles_per_event_pair']:.1f} cycles per layer, removed")


def print_side_by_side(compared: dict) -> None:
    from rich.table import Table

    from tinyopt.layer_compare import table as compared_table
    from tinyopt.layer_compare import title
    headers, cells = compared_table(compared)
    table = Table(title=f"per layer, {title(compared)}", title_justify="left", box=None, pad_edge=False)
    for col in headers:
        table.add_column(col, justify="left" if col in ("op", "layer") else "right")
    for row in cells:
        table.add_row(*row)
    console.print(table)


@click.command("measure")
@click.argument("project", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--board", default=None, help="Board name (default: the project's).")
@click.option("--port", default=None, help="Serial port (default: USB VID:PID of the board, or the emulator's).")
@click.option("--runs", type=click.IntRange(1, 100000), default=None,
              help="Inferences per window (default: enough for ~0.25 s of device time).")
@click.option("--warmup", type=click.IntRange(0, 10000), default=1, show_default=True)
@click.option("--windows", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--inputs", type=click.Path(dir_okay=False), default=None,
              help=".npz whose x_val (or x) rows are sent for the output check (default: random int8).")
@click.option("--count", type=click.IntRange(0, 100000), default=20, show_default=True,
              help="Inputs compared with the TFLM runtime (0: skip the output check).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="The project's .tflite, if it moved since generation.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per serial answer.")
@click.option("--layers", "layers", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Also time every layer on the device over this many inferences (try 5; 0: off). "
                   "The whole-inference figures come from firmware code the profiler never touches.")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the measurement as JSON to this file.")
@json_option
def command(project, board, port, runs, warmup, windows, inputs, count, model_path, timeout, layers, out,
            as_json):
    """Measure latency and check outputs on a device running tinyopt firmware (MLPerf Tiny protocol).

    \b
    Examples:
      tinyopt measure fw/                                 # board and model from the project
      tinyopt measure fw/ --port /dev/ttyACM0 --runs 50 --windows 5
      tinyopt measure --board esp32 --count 0             # latency only, any tinyopt firmware
      tinyopt measure fw/ --layers 5                      # plus cycles, µs and MACs per layer
    """
    import json
    from pathlib import Path

    from tinyopt.measure import MeasureError, measure
    try:
        with console.status("measuring over serial"):
            m = measure(project, board, port, runs=runs, warmup=warmup, windows=windows, inputs=inputs,
                        count=count, model_path=model_path, check_outputs=count > 0, timeout=timeout,
                        layers=layers)
    except MeasureError as err:
        if err.partial.latency_us:
            print_measurement(err.partial)
        raise
    if out:
        Path(out).write_text(json.dumps(m.to_json(), indent=2) + "\n")
    if as_json:
        emit_json(m.to_json())
    print_measurement(m)
