"""``medseg train DATASET --method NAME --out MODEL_DIR [--PARAM VALUE …]``."""
from __future__ import annotations

from medseg.errors import ConfigError

HELP = "train a trainable method (ML or deep learning) on a dataset"
DESCRIPTION = """Train a method on a dataset and write a model folder.

The method's parameters and training options are given as --name value; see
`medseg methods NAME`. Predict with `medseg predict MODEL_DIR INPUT OUTPUT`.
"""
ACCEPTS_EXTRA = True


def add_arguments(p) -> None:
    from medseg.cli.common import add_dataset_args

    add_dataset_args(p)
    p.add_argument("--method", "-m", required=True, help="a trainable method (see `medseg methods`)")
    p.add_argument("--out", "-o", required=True, metavar="MODEL_DIR", help="model folder to write")
    p.add_argument("--config", metavar="FILE", help="JSON/YAML with parameters (CLI flags override it)")


def run(args, extra) -> int:
    from medseg.cli.common import dataset_from_args, params_from_tokens
    from medseg.config import load_config
    from medseg.methods.base import get_method

    cls = get_method(args.method)
    if not cls.trainable:
        raise ConfigError(f"method '{args.method}' is not trainable; use `medseg segment IN OUT --method {args.method}`")
    base = load_config(args.config) if args.config else {}
    tcls = cls.TrainParams
    pnames = {f for f in cls.Params.__dataclass_fields__}
    pbase = {k: v for k, v in base.items() if k.replace("-", "_") in pnames}
    tbase = {k: v for k, v in base.items() if k.replace("-", "_") not in pnames}
    others = (tcls,) if tcls is not None else ()
    params, rest = params_from_tokens(cls.Params, extra, what=f"method '{args.method}'", base=pbase, other=others)
    if tcls is not None:
        topts, _ = params_from_tokens(tcls, rest, what=f"training of '{args.method}'", base=tbase)
    else:
        if tbase:
            raise ConfigError(f"unknown configuration keys for '{args.method}': {', '.join(tbase)}")
        topts = None
    dataset = dataset_from_args(args, require_labels=True)
    seg = cls(params)
    seg.train(dataset, args.out, options=topts)
    print(f"model written to {args.out}")
    return 0
