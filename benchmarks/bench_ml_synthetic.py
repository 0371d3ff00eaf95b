"""Pixel-classifier feature sets on the synthetic data of `medseg.testing` (the no-loss check).

A change of the forests' default features must not lose on data other than DRIVE (issue 26).
This trains `random-forest` on a few phantoms and scores it on others, for medseg's default
features (from the data: ``FOREST_FEATURES`` on 2D images, ``DEFAULT_FEATURES`` on 3D), for
another feature set (``--compare``, default ``DEFAULT_FEATURES``: the forests' features before
line strength joined them), and for the
peer: scikit-image's ``multiscale_basic_features`` with a ``RandomForestClassifier`` (100
trees), trained on the same phantoms with 10 000 pixels per image drawn uniformly.

Data (train seeds / test seeds):

- ``fundus256``, ``fundus512``: `fundus_phantom` RGB vessel trees, vessel Dice inside the FOV;
- ``head3d``: `head_phantom` T1-like volumes, mean Dice over the four tissue classes;
- ``discs0.15``, ``discs0.3``, ``discs0.5``: `disc_phantom` at three noise levels, two
  training sets each (seeds 0-2 and 3-5), scored on 12 other phantoms.

Usage::

    python benchmarks/bench_ml_synthetic.py [--only fundus256,head3d] [--compare +tophat] [--skip-peer]

``--compare`` takes comma-separated feature families; a leading ``+`` adds them to the
defaults. Prints mean Dice per data set and the ratios default/compare and default/peer.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def dice(pred: np.ndarray, truth: np.ndarray, classes) -> float:
    out = []
    for c in classes:
        p, t = pred == c, truth == c
        d = p.sum() + t.sum()
        out.append(2 * np.count_nonzero(p & t) / d if d else 1.0)
    return float(np.mean(out))


def fundus(size: int, train, test):
    from medseg.testing import fundus_phantom

    def make(seeds):
        return [fundus_phantom((size, size), seed=s) for s in seeds]
    return make(train), make(test), (1,)


def head(train, test):
    from medseg.testing import head_phantom

    def make(seeds):
        return [(*head_phantom(seed=s), None) for s in seeds]
    return make(train), make(test), (1, 2, 3, 4)


def discs(noise: float, train, test):
    from medseg.testing import disc_phantom

    def make(seeds):
        return [(*disc_phantom((128, 128), n_objects=4, noise=noise, seed=s), None) for s in seeds]
    return make(train), make(test), (1,)


TEST = list(range(100, 112))
DATASETS = {
    "fundus256": [lambda: fundus(256, range(3), range(3, 9))],
    "fundus512": [lambda: fundus(512, range(2), range(2, 5))],
    "head3d": [lambda: head(range(2), range(2, 5))],
    **{f"discs{n:g}": [lambda n=n: discs(n, range(3), TEST), lambda n=n: discs(n, range(3, 6), TEST)]
       for n in (0.15, 0.3, 0.5)},
}


def run_medseg(train, test, features):
    from medseg.ml import RandomForest

    rf = RandomForest(**({"features": features} if features is not None else {}))
    rf.fit([d[0] for d in train], [d[1] for d in train], [d[2] for d in train])
    return [rf.predict(img, roi=roi).array for img, _, roi in test]


def run_peer(train, test, samples=10000, seed=0):
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)

    def feats(img):
        a = np.asarray(img.array, np.float32)
        return multiscale_basic_features(np.moveaxis(a, 0, -1), channel_axis=-1) if img.has_channels \
            else multiscale_basic_features(a)

    def where(img, roi):
        return np.ones(img.shape, bool) if roi is None else roi.array > 0

    xs, ys = [], []
    for img, lab, roi in train:
        f = feats(img)
        idx = np.flatnonzero(where(img, roi).reshape(-1))
        idx = rng.choice(idx, min(samples, idx.size), replace=False)
        xs.append(f.reshape(-1, f.shape[-1])[idx])
        ys.append(lab.array.reshape(-1)[idx])
    clf = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
    clf.fit(np.concatenate(xs), np.concatenate(ys))
    preds = []
    for img, _, roi in test:
        m = where(img, roi)
        p = np.zeros(img.shape, np.uint8)
        p[m] = clf.predict(feats(img)[m])
        preds.append(p)
    return preds


def score(preds, test, classes) -> float:
    out = []
    for p, (_, truth, roi) in zip(preds, test):
        t = truth.array
        if roi is not None:
            m = roi.array > 0
            p, t = p[m], t[m]
        out.append(dice(p, t, classes))
    return float(np.mean(out))


def main() -> None:
    from medseg.features import DEFAULT_FEATURES, FOREST_FEATURES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help=f"comma-separated data sets of {', '.join(DATASETS)}")
    ap.add_argument("--compare", default=None,
                    help="feature families to compare with the defaults (default: DEFAULT_FEATURES); "
                         "a leading '+' adds to FOREST_FEATURES")
    ap.add_argument("--skip-peer", action="store_true")
    a = ap.parse_args()
    compare = tuple(DEFAULT_FEATURES)
    if a.compare:
        names = tuple(f for f in a.compare.lstrip("+").split(",") if f)
        compare = tuple(FOREST_FEATURES) + names if a.compare.startswith("+") else names
    names = [n for n in DATASETS if a.only is None or n in a.only.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"default: 2D {','.join(FOREST_FEATURES)}; 3D {','.join(DEFAULT_FEATURES)}\n"
          f"compare: {','.join(compare)}")
    print(f"{'data':10s} {'set':>3s} {'default':>8s} {'compare':>8s} {'peer':>8s}  seconds")
    rows = []
    for name in names:
        for k, make in enumerate(DATASETS[name]):
            t0 = time.perf_counter()
            train, test, classes = make()
            d = score(run_medseg(train, test, None), test, classes)
            c = score(run_medseg(train, test, compare), test, classes)
            p = float("nan") if a.skip_peer else score(run_peer(train, test), test, classes)
            rows.append((d, c, p))
            print(f"{name:10s} {k:3d} {d:8.4f} {c:8.4f} {p:8.4f}  {time.perf_counter() - t0:.0f}", flush=True)
    d, c, p = (np.array(x) for x in zip(*rows))
    print(f"\nmean Dice over {len(rows)} runs: default {d.mean():.4f}, compare {c.mean():.4f}, peer {p.mean():.4f}")
    print(f"ratio default/compare {d.mean() / c.mean():.4f} (worst run {np.min(d - c):+.4f}); "
          f"default/peer {d.mean() / p.mean():.3f}")


if __name__ == "__main__":
    main()
