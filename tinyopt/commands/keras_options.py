"""Click options shared by optimize, convert and build."""
import click

from tinyopt.convert import ConvertOptions


def model_argument(f):
    return click.argument("model", required=False, type=click.Path())(f)


def data_option(f):
    return click.option("--data", type=click.Path(), default=None,
                        help=".npz with x_train, x_val (and optional y_train, y_val). "
                             "Default with no MODEL: the demo's digits data.")(f)


def convert_options(f):
    f = click.option("--calibration", type=click.IntRange(1, 100000), default=500, show_default=True,
                     help="Representative samples used to choose int8 activation ranges.")(f)
    f = click.option("--int16x8", is_flag=True, help="16-bit activations, 8-bit weights.")(f)
    f = click.option("--calibrate-random", is_flag=True,
                     help="Without --data, calibrate on random inputs (accuracy unknown).")(f)
    f = click.option("--eval-samples", type=click.IntRange(1, 1000000), default=1000, show_default=True,
                     help="Validation samples scored in the TFLM runtime.")(f)
    return f


def optimize_options(f):
    f = click.option("--channels", default=None, metavar="FRACTION[,FRACTION...]",
                     help="Structured pruning: remove this fraction of whole channels (filters/units), "
                          "e.g. 0.5; a list gives one fraction per stage, e.g. 0.25,0.5.")(f)
    f = click.option("--channels-norm", type=click.Choice(["l1", "l2"]), default="l1", show_default=True,
                     help="Rank channels by the L1 or L2 norm of their filters.")(f)
    f = click.option("--prune", type=float, default=None,
                     help="Target fraction of zero weights (magnitude pruning), e.g. 0.75.")(f)
    f = click.option("--prune-pattern", default=None, help="Structured M:N sparsity, e.g. 2:4.")(f)
    f = click.option("--cluster", type=int, default=None, help="Weight clusters per layer, e.g. 16.")(f)
    f = click.option("--qat", is_flag=True,
                     help="Quantization-aware training that preserves sparsity/clusters (PQAT/CQAT/PCQAT).")(f)
    f = click.option("--epochs", type=int, default=8, show_default=True, help="Fine-tuning epochs per step.")(f)
    f = click.option("--batch-size", type=click.IntRange(1, 65536), default=32, show_default=True)(f)
    f = click.option("--learning-rate", type=float, default=1e-3, show_default=True)(f)
    f = click.option("--seed", type=int, default=0, show_default=True, help="Seed for reproducible runs.")(f)
    return f


def make_convert_options(kw) -> ConvertOptions:
    return ConvertOptions(calibration=kw["calibration"], int16x8=kw["int16x8"],
                          calibrate_random=kw["calibrate_random"], seed=kw.get("seed", 0),
                          eval_samples=kw["eval_samples"])


def make_optimize_options(kw):
    """tinyopt.optimize.OptimizeOptions from the optimize_options values (imported only here:
    the optimize package is not needed for --help)."""
    from tinyopt.optimize import OptimizeOptions
    return OptimizeOptions(prune=kw["prune"], prune_pattern=kw["prune_pattern"], cluster=kw["cluster"],
                           qat=kw["qat"], channels=kw.get("channels"), channels_norm=kw.get("channels_norm", "l1"),
                           epochs=kw["epochs"], batch_size=kw["batch_size"],
                           learning_rate=kw["learning_rate"], seed=kw["seed"])
