"""Uncertainty and calibration of ``medseg predict --uncertainty`` on DRIVE (2D, one fold).

Trains ``unet`` on DRIVE fold 0 with a short time budget (unless MODEL exists), then on the
fold's held-out images (inside the field-of-view mask):

* AUROC of a voxel uncertainty for finding the voxels the model gets wrong: medseg's
  predictive entropy of the (fold x mirroring) ensemble vs the peer, a MONAI-style single
  network without TTA scored by its max-softmax uncertainty ``1 - max_k p_k`` (the same
  fold-0 network, training-size windows, no temperature);
* ECE (15 bins) and Brier score of the vessel probability before and after temperature
  scaling. ``model.json``'s temperature was fitted on these same held-out images (in-sample),
  so the script also cross-fits: T fitted on half of the images, scored on the other half.

Usage::

    python benchmarks/bench_uncertainty.py [--drive /work/shared/data/DRIVE/training]
        [--model /tmp/drive_unc_model] [--budget 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from medseg.infer.predictor import Predictor
from medseg.io import list_images, read_image, read_label
from medseg.methods.base import load_model
from medseg.metrics.probability import brier, ece, fit_temperature


def _pair(folder: Path, case: str) -> Path:
    num = case.split("_")[0]
    return next(p for p in list_images(folder) if p.name.split("_")[0] == num)


def _softmax_t(p: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(p, 1e-12, None)) / t
    z -= z.max(0)
    e = np.exp(z)
    return e / e.sum(0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drive", default="/work/shared/data/DRIVE/training")
    ap.add_argument("--model", default="/tmp/drive_unc_model")
    ap.add_argument("--budget", type=float, default=3.0, help="training time budget (minutes)")
    a = ap.parse_args()
    d, model = Path(a.drive), Path(a.model)
    if not (model / "model.json").is_file():
        cmd = [sys.executable, "-m", "medseg", "train", "--images", str(d / "images"), "--labels",
               str(d / "1st_manual"), "--roi", str(d / "mask"), "--method", "unet", "--time-budget", str(a.budget),
               "--fold", "0", "--out", str(model)]
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    info = json.loads((model / "model.json").read_text())
    val = json.loads((model / "splits.json").read_text())["folds"][0]["val"]
    t_model = float(info.get("temperature", 1.0))
    seg = load_model(model, {"device": "cpu", "temperature": False, "compile": "off"})
    ens = seg.predictor()
    single = Predictor(ens.nets[:1], ens.plan, tta=False, overlap=ens.overlap, device="cpu", window=ens.window)
    # a short budget plans weak augmentation, so medseg skips mirroring TTA; also measure it forced on
    forced = Predictor(ens.nets, dataclasses.replace(ens.plan, aug_strength=1.0), tta=True, overlap=ens.overlap,
                       device="cpu", window=ens.window)
    print(f"model: folds {info['folds']}, window {ens.window}, mirrorings {len(ens._mirrors())}, "
          f"temperature (model.json) {t_model:.4f}; held-out images: {', '.join(val)}", flush=True)
    cases = []
    t0 = time.perf_counter()
    for cid in val:
        img = read_image(_pair(d / "images", cid))
        truth = (read_label(_pair(d / "1st_manual", cid)).array > 0).astype(np.uint8)
        fov = read_label(_pair(d / "mask", cid)).array > 0
        prob, maps = ens.predict_uncertainty(img)
        p1 = single.predict_proba(img).array
        pf, mf = forced.predict_uncertainty(img)
        cases.append({"id": cid, "truth": truth, "fov": fov, "p": prob.array, "ent": maps["entropy"],
                      "mi": maps["mutual_information"], "mirror": maps["mirror_spread"], "p1": p1,
                      "pf": pf.array, "entf": mf["entropy"], "mirrorf": mf["mirror_spread"]})
    print(f"predicted {len(cases)} images in {time.perf_counter() - t0:.1f} s", flush=True)

    def pooled(key_fn):
        return np.concatenate([key_fn(c)[c["fov"]] for c in cases])

    err_ens = pooled(lambda c: (c["p"].argmax(0) != c["truth"]).astype(np.uint8))
    err_one = pooled(lambda c: (c["p1"].argmax(0) != c["truth"]).astype(np.uint8))
    err_f = pooled(lambda c: (c["pf"].argmax(0) != c["truth"]).astype(np.uint8))
    auroc = {
        "medseg ensemble entropy": roc_auc_score(err_ens, pooled(lambda c: c["ent"])),
        "medseg ensemble 1 - max p": roc_auc_score(err_ens, pooled(lambda c: 1 - c["p"].max(0))),
        "medseg mutual information": roc_auc_score(err_ens, pooled(lambda c: c["mi"])),
        "medseg mirror spread": roc_auc_score(err_ens, pooled(lambda c: c["mirror"])),
        "medseg, mirroring forced: entropy": roc_auc_score(err_f, pooled(lambda c: c["entf"])),
        "medseg, mirroring forced: mirror spread": roc_auc_score(err_f, pooled(lambda c: c["mirrorf"])),
        "peer: single net, no TTA, 1 - max p": roc_auc_score(err_one, pooled(lambda c: 1 - c["p1"].max(0))),
    }
    print(f"\nerror rate inside the FOV: ensemble {err_ens.mean():.4f}, single net {err_one.mean():.4f}, "
          f"mirroring forced {err_f.mean():.4f}")
    print("AUROC of voxel uncertainty for the wrong voxels (pooled over the held-out images, inside the FOV):")
    for k, v in auroc.items():
        print(f"  {k:40s} {v:.4f}")
    peer = auroc["peer: single net, no TTA, 1 - max p"]
    print(f"  ratio medseg entropy / peer: {auroc['medseg ensemble entropy'] / peer:.4f}")

    # calibration of the vessel probability inside the FOV
    half = len(cases) // 2
    groups = [cases[:half], cases[half:]]

    def fit(group, key):
        return fit_temperature(np.concatenate([np.log(np.clip(c[key][:, c["fov"]], 1e-12, None)) for c in group], 1),
                               np.concatenate([c["truth"][c["fov"]] for c in group]))

    def score(group, key, t):
        ps = np.concatenate([_softmax_t(c[key][:, c["fov"]], t)[1] for c in group])
        ys = np.concatenate([c["truth"][c["fov"]] for c in group])
        return ece(ps[None], ys[None]), brier(ps[None], ys[None])  # metrics take 2D maps

    print("\ncalibration of the vessel probability inside the FOV (ECE 15 bins, Brier):")
    rows = []
    for key, name in (("p", "medseg ensemble"), ("pf", "medseg, mirroring forced"), ("p1", "single net, no TTA")):
        before = score(cases, key, 1.0)
        t_all = fit(cases, key)
        insample = score(cases, key, t_all)
        cross = []
        for i, g in enumerate(groups):
            t = fit(groups[1 - i], key)
            cross.append((score(g, key, t), t, len(g)))
        n = sum(w for _, _, w in cross)
        cross_e = sum(s[0] * w for s, _, w in cross) / n
        cross_b = sum(s[1] * w for s, _, w in cross) / n
        model_t = score(cases, key, t_model)
        rows.append((name, before, model_t, insample, t_all, (cross_e, cross_b), [t for _, t, _ in cross]))
        print(f"  {name}: T=1 ECE {before[0]:.4f} Brier {before[1]:.4f} | model.json T={t_model:.3f} "
              f"ECE {model_t[0]:.4f} Brier {model_t[1]:.4f} | refit in-sample T={t_all:.3f} ECE {insample[0]:.4f} "
              f"| cross-fitted T={'/'.join(f'{t:.3f}' for t in rows[-1][6])} ECE {cross_e:.4f} Brier {cross_b:.4f} "
              f"(ratio after/before {cross_e / before[0]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
