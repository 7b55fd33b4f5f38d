import click

from tinyopt.commands.common import force_option, json_option
from tinyopt.commands.keras_options import convert_options, data_option, make_convert_options, model_argument
from tinyopt.commands.keras_summary import run_stage


@click.command("convert")
@model_argument
@data_option
@convert_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sample selection.")
@click.option("-o", "--out", "out", type=click.Path(), required=True, help="Output directory.")
@force_option
@json_option
def command(model, data, out, force, as_json, **kw):
    """Convert MODEL to a full-integer int8 .tflite and evaluate it in the TFLM runtime.

    MODEL is a .keras, .h5 or SavedModel directory (default: the bundled demo CNN).
    Inputs and outputs are int8 with batch size 1, as microcontrollers want them.

    \b
    Examples:
      tinyopt convert -o out/                                # the demo model
      tinyopt convert model.h5 --data d.npz -o out/
      tinyopt convert model.h5 --calibrate-random -o out/    # no data: accuracy unknown
    """
    run_stage("convert", model, data, out, force, as_json, None, make_convert_options(kw))
