"""The tutorial's Keras U-Net, reproduced with medseg — and what the self-configuring defaults add.

The tutorial trains a U-Net on ``images.npy`` + ``labels.npy`` (256x256 images, filters
32-64-128-128, Adam, cross-entropy) and reports accuracy, precision, recall and F1. This script
does the same with medseg on synthetic fundus photographs (``medseg.testing``, exact ground truth):

1. writes ``train/images.npy`` + ``train/labels.npy`` and a held-out ``test/`` pair;
2. trains the tutorial's network:
   ``medseg train train --method unet --net classic-unet --channels 32,64,128,128
   --optimizer adam --loss ce --plan tutorial_plan.json`` (the plan file sets weight decay 0,
   the learning rate 1e-3 of Keras' Adam, no class weights and
   no augmentation, as in the tutorial);
3. trains the self-configuring default (``medseg train train --method unet``) for the same number
   of steps;
4. predicts the test images with both and prints accuracy, precision, recall and F1 (pixels of
   all test images pooled, as Keras' metrics do) side by side, then writes ``results.json``.

Run ``python examples/tutorial_unet.py --small`` for a seconds-long smoke run (tiny images,
a handful of steps: the numbers mean nothing), or without ``--small`` for the real comparison.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import medseg
from medseg.image import Image
from medseg.metrics import overlap
from medseg.testing import make_dataset

# the tutorial's training set-up, as medseg plan fields (see `medseg methods unet`)
TUTORIAL_PLAN = {
    "weight_decay": 0.0,        # Keras' Adam has no weight decay
    "lr": 1e-3,                 # Keras' Adam default learning rate
    "class_weights": [1.0, 1.0],  # plain (unweighted) cross-entropy
    "augment": False,           # the tutorial trains on the images as they are
    "rot90": False,
    "fg_oversample": 0.0,       # patches drawn uniformly, no foreground oversampling
}
METRICS = ("accuracy", "precision", "recall", "f1")


def _medseg(*args: str) -> None:
    """Run one ``medseg`` command (the same executable the reader types), failing loudly."""
    cmd = [sys.executable, "-m", "medseg", *args]
    print("$ medseg " + " ".join(args), flush=True)  # noqa: T201
    subprocess.run(cmd, check=True)


def write_data(out: Path, n_train: int, n_test: int, size: int) -> tuple[Path, Path]:
    """Write the tutorial's ``images.npy`` + ``labels.npy`` (train) and a test pair (grey images)."""
    roots = []
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 7)):
        tmp = make_dataset(out / f"_{name}_rgb", kind="fundus", n=n, layout="npy", seed=seed,
                           shape=(size, size))
        images = np.load(tmp / "images.npy")           # (N, H, W, 3) colour fundus photographs
        labels = np.load(tmp / "labels.npy")           # (N, H, W) vessel masks 0/1
        grey = images[..., 1].astype(np.float32)       # the green channel: vessels contrast best there
        root = out / name
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "images.npy", grey)
        np.save(root / "labels.npy", labels.astype(np.uint8))
        shutil.rmtree(tmp)
        roots.append(root)
    return roots[0], roots[1]


def evaluate(model_dir: Path, test: Path) -> dict[str, float]:
    """Predict every test image and score all pixels pooled (as Keras' accuracy/precision/recall do)."""
    model = medseg.load_model(model_dir)
    images, labels = np.load(test / "images.npy"), np.load(test / "labels.npy")
    preds = np.stack([model(Image(img)).array for img in images])
    m = overlap(preds, labels)
    return {"accuracy": m["accuracy"], "precision": m["precision"], "recall": m["recall"], "f1": m["dice"]}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the comparison; return ``{"tutorial": metrics, "medseg-default": metrics}``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="tutorial-unet", help="working folder (default: tutorial-unet)")
    p.add_argument("--small", action="store_true", help="tiny smoke run (seconds); the numbers mean nothing")
    p.add_argument("--epochs", type=int, default=None, help="epochs for both runs (default 5; --small: 1)")
    p.add_argument("--size", type=int, default=None, help="image side (default 256, the tutorial's; --small: 64)")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    a = p.parse_args(argv)

    out = Path(a.out)
    if out.exists():
        if not a.force:
            p.error(f"{out} exists; add --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if a.small:
        n_train, n_test, size, epochs, iters = 4, 2, 64, a.epochs or 1, 2
    else:
        n_train, n_test, size, epochs, iters = 20, 5, 256, a.epochs or 5, 40
    size = a.size or size
    train, test = write_data(out, n_train, n_test, size)
    (out / "tutorial_plan.json").write_text(json.dumps(TUTORIAL_PLAN, indent=1))

    common = ["--epochs", str(epochs), "--iters-per-epoch", str(iters), "--folds", "1",
              "--compile", "off", "--seed", "0", "-q"]
    runs = {
        "tutorial": ["--net", "classic-unet", "--channels", "32,64,128,128", "--optimizer", "adam",
                     "--loss", "ce", "--patch-size", f"{size},{size}", "--plan", str(out / "tutorial_plan.json")],
        "medseg-default": [],
    }
    results: dict[str, dict[str, float]] = {}
    for name, extra in runs.items():
        t0 = time.perf_counter()
        _medseg("train", str(train), "--method", "unet", "--out", str(out / "models" / name), *common, *extra)
        results[name] = evaluate(out / "models" / name, test)
        results[name]["train_seconds"] = round(time.perf_counter() - t0, 1)

    print(f"\n{'metric':<10} {'tutorial':>10} {'medseg-default':>15}")  # noqa: T201
    for k in (*METRICS, "train_seconds"):
        print(f"{k:<10} {results['tutorial'][k]:>10.3f} {results['medseg-default'][k]:>15.3f}")  # noqa: T201
    (out / "results.json").write_text(json.dumps(
        {"small": a.small, "epochs": epochs, "iters_per_epoch": iters, "n_train": n_train, "n_test": n_test,
         "size": size, "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
