import click

from tinyopt.commands.common import force_option, json_option
from tinyopt.commands.keras_options import (
    convert_options,
    data_option,
    make_convert_options,
    make_optimize_options,
    model_argument,
    optimize_options,
)
from tinyopt.commands.keras_summary import run_stage


@click.command("optimize")
@model_argument
@data_option
@optimize_options
@convert_options
@click.option("-o", "--out", "out", type=click.Path(), required=True, help="Output directory.")
@force_option
@json_option
def command(model, data, out, force, as_json, **kw):
    """Prune / cluster / QAT MODEL with tfmot, then convert it to int8 and evaluate.

    MODEL is a .keras, .h5 or SavedModel directory (default: the bundled demo CNN).
    Writes OUT/optimized.keras, OUT/model_int8.tflite, OUT/report.json and OUT/report.md.

    \b
    Examples:
      tinyopt optimize --prune 0.75 -o out/               # demo model, 75 % sparsity
      tinyopt optimize model.h5 --data d.npz --cluster 16 --qat -o out/
      tinyopt optimize model.keras --data d.npz --prune-pattern 2:4 -o out/
      tinyopt optimize model.h5 --data d.npz --channels 0.5 -o out/   # half the channels
    """
    opts = make_optimize_options(kw)
    opts.validate()
    if not opts.any:
        raise click.UsageError("nothing to optimize: give --channels, --prune, --prune-pattern or --cluster "
                               "(or use `tinyopt convert` for conversion alone)")
    run_stage("optimize", model, data, out, force, as_json, opts, make_convert_options(kw))
