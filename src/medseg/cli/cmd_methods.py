"""``medseg methods``: list every method (and recipe) with family, dimensions and parameters."""
from __future__ import annotations

import argparse
import json

from medseg.methods.base import METHODS, get_method
from medseg.recipes import RECIPES

HELP = "list the segmentation methods and their parameters"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg methods``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("name", nargs="?", help="show one method in detail")
    p.add_argument("--family", choices=["classical", "ml", "dl"], help="only this family")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _recipes() -> list[dict]:
    """What ``medseg methods`` lists of each recipe."""
    return [RECIPES.get(n).describe() for n in RECIPES.names()]


def _show_recipe(name: str, *, as_json: bool) -> int:
    """Print one recipe: its steps, its method and parameters, what it expects."""
    r = RECIPES.get(name).describe()
    if as_json:
        print(json.dumps({"recipes": [r]}, indent=2))
        return 0
    print(f"recipe {r['name']}: {r.get('summary', '')}")
    for key in ("preprocess", "method", "params", "post", "notes"):
        if r.get(key) not in (None, "", [], {}, ()):
            print(f"  {key:<11} {r[key]}")
    print(f"\n`medseg segment IN OUT --recipe {name} [--PARAM VALUE]`; `medseg methods {r['method']}` lists "
          "the parameters it can override.")
    return 0


def _print_params(params: list[dict]) -> None:
    """One line per parameter: flag, default, help."""
    for p in params:
        print(f"      --{p['name'].replace('_', '-'):<22} default {p['default']!r:<12} {p['help']}")


def _networks() -> list[dict]:
    """The ``--net`` choices of the ``unet`` method: dimensions, patch divisor, fixed input
    size, pretrainable encoder, size at the default width."""
    from medseg.nets import NETS, net_info  # deferred: imports torch

    rows = []
    for n in NETS.names():
        i = net_info(n)
        rows.append({"name": n, "dims": list(i.dims), "divisor": i.divisor or "2^(levels-1)",
                     "fixed_input": i.fixed_input, "pretrained_encoder": i.encoder, "params": i.params,
                     "onnx": not i.no_onnx, "summary": i.summary})
    return rows


def _print_networks(rows: list[dict]) -> None:
    """The networks as a table (``medseg methods unet``)."""
    print("    networks (--net NAME; `late-fusion-unet` is chosen by --fusion late):")
    print(f"      {'name':<26} {'dims':<6} {'divisor':<13} {'fixed size':<10} {'--pretrained':<12} {'params':>7}"
          f"  {'onnx':<4}  summary")
    for r in rows:
        dims = "/".join(f"{d}D" for d in r["dims"])
        size = f"{r['params'] / 1e6:.1f}M" if r["params"] else "?"
        print(f"      {r['name']:<26} {dims:<6} {str(r['divisor']):<13} {'yes' if r['fixed_input'] else 'no':<10} "
              f"{'yes' if r['pretrained_encoder'] else 'no':<12} {size:>7}  {'yes' if r['onnx'] else 'no':<4}  "
              f"{r['summary']}")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """List the methods (and recipes), or show one method.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    extra : list of str
        Unused (this command takes no extra options).

    Returns
    -------
    int
        The exit code: 0 (user errors raise a ``MedsegError``).
    """
    if args.name and args.name not in METHODS and args.name in RECIPES:
        return _show_recipe(args.name, as_json=args.json)
    if args.name:
        info = [get_method(args.name).describe()]
    else:
        info = [METHODS.get(n).describe() for n in METHODS.names()]
    if args.family:
        info = [i for i in info if i["family"] == args.family]
    recipes = [] if args.name or args.family else _recipes()
    nets = _networks() if args.name == "unet" else []
    if args.json:
        print(json.dumps({"methods": info, "recipes": recipes, **({"networks": nets} if nets else {})}, indent=2))
        return 0
    for fam in ("classical", "ml", "dl"):
        rows = [i for i in info if i["family"] == fam]
        if not rows:
            continue
        print({"classical": "Classical", "ml": "Machine learning", "dl": "Deep learning"}[fam])
        for i in rows:
            dims = "/".join(f"{d}D" for d in i["dims"])
            tr = " (trainable)" if i["trainable"] and "trainable" not in i["summary"] else ""
            print(f"  {i['name']:<24} {dims:<6} {i['summary']}{tr}")
            if args.name or len(info) == 1:
                _print_params(i["params"])
                if i.get("train_params"):
                    print(f"    training options (medseg train DATASET --method {i['name']} --out MODEL_DIR ...):")
                    _print_params(i["train_params"])
                if nets:
                    _print_networks(nets)
    if recipes:
        print("Recipes (medseg segment IN OUT --recipe NAME)")
        for r in recipes:
            print(f"  {r['name']:<24} {'/'.join(f'{d}D' for d in r.get('dims', []))} {r.get('summary', '')}")
    if not args.name:
        print("\n`medseg methods NAME` shows a method's parameters.")
    return 0
