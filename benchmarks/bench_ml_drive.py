"""DRIVE 5-fold cross-validation: medseg `random-forest` vs scikit-image + scikit-learn.

Peer: scikit-image's ``multiscale_basic_features`` (RGB, default settings) with a
``RandomForestClassifier`` (100 trees, all cores), trained on the same folds with the same
10 000 training pixels per image drawn uniformly inside the FOV (the way its gallery
example trains; ``--peer-samples``). medseg: ``RandomForest()`` with its defaults
(``FOREST_FEATURES``; scales and balancing come from the data; 40 000 pixels per image, 75 000 per
tree; one auto-context stage), trained with ``fit(images, labels, rois)``.

F1 is computed inside the field-of-view masks (pooled over each fold's test images, and
the mean over images). Times: training (features + fit) per fold and prediction per image
(features + classifier; medseg predicts inside the FOV like the peer).

Usage::

    python benchmarks/bench_ml_drive.py [--folds 5] [--only-fold 0,1] [--full-train]

``--full-train`` also trains medseg on all 20 images and reports the time.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = np.count_nonzero(pred & truth)
    denom = np.count_nonzero(pred) + np.count_nonzero(truth)
    return 2 * tp / denom if denom else 1.0


def load_drive():
    from medseg.io import load_dataset
    from medseg.testing import shared_data

    root = shared_data("DRIVE", "training")
    if root is None:
        raise SystemExit("DRIVE not found under ../shared/data; nothing to benchmark")
    ds = load_dataset(images=root / "images", labels=root / "1st_manual", roi=root / "mask")
    cases = sorted(ds.cases, key=lambda c: c.case_id)
    data = []
    for c in cases:
        img = ds.load_image(c)
        data.append((img, ds.load_label(c, img), ds.load_roi(c, img)))
    return data


def run_medseg(train, test, samples, features=None):
    from medseg.ml import RandomForest, TrainParams

    t0 = time.perf_counter()
    rf = RandomForest(**({"features": features} if features else {})).fit([d[0] for d in train], [d[1] for d in train], [d[2] for d in train],
                            options=TrainParams(samples_per_image=samples))
    t_train = time.perf_counter() - t0
    preds, t_pred = [], []
    for img, _, roi in test:
        t0 = time.perf_counter()
        preds.append(rf.predict(img, roi=roi).array > 0)
        t_pred.append(time.perf_counter() - t0)
    return preds, t_train, t_pred


def run_skimage(train, test, samples, seed=0):
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)

    def feats(img):
        return multiscale_basic_features(np.moveaxis(img.array, 0, -1), channel_axis=-1)

    t0 = time.perf_counter()
    xs, ys = [], []
    for img, lab, roi in train:
        f = feats(img)
        idx = np.flatnonzero(roi.array.reshape(-1) > 0)
        idx = rng.choice(idx, min(samples, idx.size), replace=False)
        xs.append(f.reshape(-1, f.shape[-1])[idx])
        ys.append(lab.array.reshape(-1)[idx])
    clf = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
    clf.fit(np.concatenate(xs), np.concatenate(ys))
    t_train = time.perf_counter() - t0
    preds, t_pred = [], []
    for img, _, roi in test:
        t0 = time.perf_counter()
        f = feats(img)
        m = roi.array > 0
        p = np.zeros(m.shape, bool)
        p[m] = clf.predict(f[m]) > 0
        preds.append(p)
        t_pred.append(time.perf_counter() - t0)
    return preds, t_train, t_pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-fold", type=str, default=None, help="comma-separated fold numbers to run")
    ap.add_argument("--samples", type=int, default=None,
                    help="medseg: training pixels per image (default: its random-forest default, 40000)")
    ap.add_argument("--peer-samples", type=int, default=10000,
                    help="peer: training pixels per image drawn uniformly in the FOV (default 10000, the "
                         "gallery-style setting; 40000 takes the peer ~4x longer to fit)")
    ap.add_argument("--full-train", action="store_true")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--features", type=str, default=None,
                    help="medseg feature families, comma-separated (default: RandomForest's defaults, "
                         "medseg.features.FOREST_FEATURES); a leading '+' adds to them, e.g. '+tophat'")
    args = ap.parse_args()
    features = None
    if args.features:
        from medseg.features import FOREST_FEATURES

        names = [f for f in args.features.lstrip("+").split(",") if f]
        features = tuple(FOREST_FEATURES) + tuple(names) if args.features.startswith("+") else tuple(names)
    if args.samples is None:
        from medseg.ml import RandomForest

        args.samples = RandomForest.default_samples_per_image
    data = load_drive()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {len(data)} images; "
          f"training pixels per image: medseg {args.samples}, peer {args.peer_samples}")
    folds = np.array_split(np.arange(len(data)), args.folds)
    res = {"medseg": [], "skimage": []}
    for k, test_idx in enumerate(folds):
        if args.only_fold is not None and k not in {int(x) for x in args.only_fold.split(",")}:
            continue
        train = [data[i] for i in range(len(data)) if i not in set(test_idx)]
        test = [data[i] for i in test_idx]
        runners = [("medseg", run_medseg)] + ([] if args.skip_peer else [("skimage", run_skimage)])
        for name, fn in runners:
            if name == "medseg":
                preds, t_train, t_pred = fn(train, test, args.samples, features)
            else:
                preds, t_train, t_pred = fn(train, test, args.peer_samples)
            truth = [d[1].array > 0 for d in test]
            rois = [d[2].array > 0 for d in test]
            per = [f1(p[r], t[r]) for p, t, r in zip(preds, truth, rois)]
            pooled = f1(np.concatenate([p[r] for p, r in zip(preds, rois)]),
                        np.concatenate([t[r] for t, r in zip(truth, rois)]))
            res[name].append((pooled, per, t_train, t_pred))
            print(f"fold {k} {name:8s} F1 pooled {pooled:.4f} mean {np.mean(per):.4f}  "
                  f"train {t_train:6.1f} s  predict {np.mean(t_pred):.2f} s/img", flush=True)
    print("\nsummary (mean over folds)")
    for name, rows in res.items():
        if not rows:
            continue
        pooled = np.mean([r[0] for r in rows])
        per = np.mean([x for r in rows for x in r[1]])
        tt = np.mean([r[2] for r in rows])
        tp = np.mean([x for r in rows for x in r[3]])
        print(f"{name:8s} F1 pooled {pooled:.4f}  F1 per-image mean {per:.4f}  train {tt:.1f} s/fold  "
              f"predict {tp:.2f} s/img")
    if res["medseg"] and res["skimage"]:
        m, s = res["medseg"], res["skimage"]
        print(f"ratio medseg/skimage: F1 {np.mean([r[0] for r in m]) / np.mean([r[0] for r in s]):.3f}  "
              f"train time {np.mean([r[2] for r in m]) / np.mean([r[2] for r in s]):.2f}  "
              f"predict time {np.mean([x for r in m for x in r[3]]) / np.mean([x for r in s for x in r[3]]):.2f}")
    if args.full_train:
        _, t_train, _ = run_medseg(data, data[:1], args.samples)
        print(f"medseg random-forest trained on all {len(data)} images in {t_train:.1f} s")


if __name__ == "__main__":
    main()
