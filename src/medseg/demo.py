"""``medseg demo``: the whole pipeline on synthetic data with exact ground truth.

Makes a small fundus-like 2D dataset (RGB photographs, vessel trees, field-of-view masks)
and an MRI-like 3D head dataset, runs every method family that is installed — classical
(the ``retina-vessels`` recipe in 2D, the ``brain-mask`` recipe in 3D), machine learning
(``random-forest`` trained on the training cases) and deep learning (a self-configuring
``unet`` trained for a short time budget) — evaluates each against the ground truth and
writes a side-by-side comparison.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.errors import InputError
from medseg.io import load_dataset
from medseg.methods.base import METHODS
from medseg.metrics.compare import load_runs, write_comparison
from medseg.metrics.evaluation import evaluate
from medseg.metrics.report import write_evaluation
from medseg.recipes import get_recipe
from medseg.run import segment_paths
from medseg.testing import make_dataset
from medseg.train.config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["run_demo", "DemoResult"]


@dataclass
class DemoResult:
    """One method's line of the demo: what `run_demo` ran and how well it did.

    Attributes
    ----------
    name : str
        The method or recipe run.
    family : str
        ``classical``, ``ml`` or ``dl``.
    seconds : float
        Wall-clock time of segmenting the test images.
    eval_dir : Path
        The evaluation folder (``metrics.csv``, ``summary.json``, the report).
    dice : float
        Mean Dice over the test cases, averaged over the foreground labels.
    hd95 : float
        Median HD95 over the test cases, averaged over the foreground labels, in ``unit``.
    unit : str
        ``mm``, or ``px`` for images without a physical spacing.
    """

    name: str
    family: str
    seconds: float
    eval_dir: Path
    dice: float
    hd95: float
    unit: str = "mm"


def _say(msg: str) -> None:
    log.info(msg)


def _evaluate(pred_dir: Path, data_root: Path, out: Path, title: str, labels=None) -> tuple[float, float, str]:

    table = evaluate(pred_dir, data_root, labels=labels)
    write_evaluation(table, out, inputs={"prediction": str(pred_dir), "ground truth": str(data_root)}, title=title)
    summ = table.summary()
    dices, hds = [], []
    for lab in table.labels:
        s = summ[str(lab)]
        dices.append(s["dice"].get("mean", float("nan")))
        hds.append(s["hd95"].get("median", float("nan")))

    return float(np.nanmean(dices)), float(np.nanmean(hds)), table.length_unit


class _quiet:
    """Silence the training logs of the ML/DL engines while the demo prints its own lines."""

    names = ("medseg.ml", "medseg.train", "medseg.methods", "medseg.infer")

    def __enter__(self):
        self.levels = [logging.getLogger(n).level for n in self.names]
        for n in self.names:
            logging.getLogger(n).setLevel(logging.WARNING)

    def __exit__(self, *exc):
        for n, lev in zip(self.names, self.levels):
            logging.getLogger(n).setLevel(lev)


def run_demo(out: str | Path = "medseg-demo", *, n_train: int = 6, n_test: int = 4, dl_minutes: float = 1.0,
             families: tuple[str, ...] = ("classical", "ml", "dl"), seed: int = 0,
             report: Callable[[str], None] = _say) -> list[DemoResult]:
    """Run the demo into ``out`` and return one `DemoResult` per method run."""

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "medseg-demo.txt").exists():
        raise InputError(f"{out}: folder exists and was not made by medseg demo; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "medseg-demo.txt").write_text("made by `medseg demo`; safe to delete\n")
    results: list[DemoResult] = []

    def rerun(path: Path) -> Path:
        if path.exists():
            import shutil

            shutil.rmtree(path)
        return path

    # ------------------------------------------------------------------ data
    t0 = time.perf_counter()
    train2d = make_dataset(rerun(out / "data" / "fundus-train"), kind="fundus", n=n_train, seed=seed + 1)
    test2d = make_dataset(rerun(out / "data" / "fundus-test"), kind="fundus", n=n_test, seed=seed + 2)
    test3d = make_dataset(rerun(out / "data" / "head-test"), kind="brain", n=2, seed=seed + 3, layout="msd")
    report(f"data: {n_train} training + {n_test} test fundus photographs (2D RGB), 2 MR-like head volumes (3D, "
           f"MSD layout) in {out / 'data'} ({time.perf_counter() - t0:.1f} s)")

    def run_method(name: str, family: str, segmenter, test_root: Path, images: Path, labels=None) -> None:
        t = time.perf_counter()
        pred = rerun(out / "predictions" / name)
        segment_paths(segmenter, images, pred, progress=False)
        secs = time.perf_counter() - t
        dice, hd, unit = _evaluate(pred, test_root, rerun(out / "eval" / name), f"{name} on the demo data", labels)
        results.append(DemoResult(name, family, secs, out / "eval" / name, dice, hd, unit))
        report(f"{family:<9} {name:<22} Dice {dice:.3f}  HD95 {hd:6.2f} {unit:<2}  ({secs:.1f} s)")

    # ------------------------------------------------------------------ classical
    if "classical" in families:

        run_method("retina-vessels", "classical", get_recipe("retina-vessels"), test2d, test2d / "images")
        run_method("brain-mask-3d", "classical", get_recipe("brain-mask"), test3d, test3d / "imagesTr")

    # ------------------------------------------------------------------ machine learning
    if "ml" in families and "random-forest" in METHODS:
        t = time.perf_counter()
        cls = METHODS.get("random-forest")
        with _quiet():
            model = cls().train(load_dataset(train2d), rerun(out / "models" / "random-forest"))
        report(f"ml        random-forest trained on {n_train} images in {time.perf_counter() - t:.1f} s")
        run_method("random-forest", "ml", model, test2d, test2d / "images")

    # ------------------------------------------------------------------ deep learning
    if "dl" in families and "unet" in METHODS and dl_minutes > 0:

        t = time.perf_counter()
        cls = METHODS.get("unet")
        with _quiet():
            model = cls().train(load_dataset(train2d), rerun(out / "models" / "unet"),
                                TrainConfig(time_budget=dl_minutes, folds=1, seed=seed, progress=False))
        report(f"dl        unet trained for {time.perf_counter() - t:.0f} s (--time-budget {dl_minutes:g} min)")
        run_method("unet", "dl", model, test2d, test2d / "images")

    # ------------------------------------------------------------------ comparison
    two_d = [r for r in results if not r.name.endswith("-3d")]
    if len(two_d) >= 2:

        runs = load_runs([r.eval_dir for r in two_d], [r.name for r in two_d])
        write_comparison(runs, rerun(out / "compare"), title="medseg demo: classical vs ML vs DL on fundus phantoms")
    return results
