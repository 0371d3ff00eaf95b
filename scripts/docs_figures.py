"""Make the documentation's figures and generated pages with medseg itself.

    .venv/bin/python scripts/docs_figures.py            # everything (about 1-2 minutes on 2 CPU cores)
    .venv/bin/python scripts/docs_figures.py --pages    # only the generated pages (CLI reference, gallery)
    .venv/bin/python scripts/docs_figures.py --only ml,dl,explain,anon,scale   # the stage pages' figures (~1 min)

Figures go to ``docs/img/`` (small PNG/JPG), generated pages to ``docs/reference/cli.md`` and
``docs/gallery.md``. Synthetic figures use ``medseg.testing``'s seeded phantoms; real-data figures
read the project's shared data (``medseg.testing.shared_data()``) and are skipped, with one line,
when it is absent (the committed ones then stay as they are).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"

# Okabe-Ito colour-blind-safe palette (the one medseg's reports use)
TP, FP, FN = (0.0, 0.62, 0.45), (0.90, 0.62, 0.0), (0.80, 0.47, 0.65)

WHEN = {
    "threshold": "a fixed intensity cut is meaningful (CT in HU, a known stain level)",
    "otsu": "two well-separated intensity classes; the first thing to try",
    "multi-otsu": "several tissue classes by intensity (e.g. CSF / grey / white matter)",
    "li": "foreground and background overlap in intensity; minimum cross-entropy cut",
    "triangle": "a small bright object on a large dark background (skewed histogram)",
    "local": "uneven illumination or a bias field: a threshold per neighbourhood",
    "edges": "objects defined by their boundaries (Canny), filled into regions",
    "region-growing": "one connected structure grown from a seed (click in the web app)",
    "watershed": "touching objects to split (cells, nuclei), markers from distance maps",
    "chan-vese": "objects without sharp edges; region-based active contour",
    "geodesic-active-contour": "an object with a clear edge, contour evolving from an initial level set",
    "kmeans": "unsupervised clustering of intensities (and channels) into K classes",
    "gmm": "like k-means, with Gaussian classes of different spread; soft probabilities",
    "random-walker": "seeds for each class and noisy images; probabilistic diffusion",
    "vesselness": "tubular structures: retinal vessels, CT angiography (Frangi filter)",
    "skull-strip": "3D T1 head MR: the brain mask (3D only)",
    "random-forest": "a few labelled images (or scribbles) and rich features; the strong classical-ML default",
    "extra-trees": "like the random forest, faster to train, a little smoother",
    "gradient-boosting": "tabular-style boosting on the same features; slower to train",
    "svm": "small training sets, few features; RBF-kernel pixel classifier",
    "decision-tree": "teaching: one interpretable tree (overfits)",
    "knn": "teaching and baselines: nearest neighbours in feature space",
    "mlp": "a small neural network on the hand-made features",
    "unet": "enough labelled images: the self-configuring U-Net, the most accurate here",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, name: str) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / name
    fig.savefig(path, dpi=72, bbox_inches="tight", **({"pil_kwargs": {"quality": 85}} if name.endswith(".jpg") else {}))
    _plt().close(fig)
    print(f"  wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def _grey(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, (0.5, 99.5))
    return np.clip((a - lo) / (hi - lo + 1e-9), 0, 1)


def _errors(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RGB overlay: true positives green, false positives orange, false negatives purple."""
    g = _grey(image if image.ndim == 2 else image.mean(-1))
    out = np.stack([g, g, g], -1) * 0.7
    p, t = pred > 0, truth > 0
    for mask, c in ((p & t, TP), (p & ~t, FP), (~p & t, FN)):
        out[mask] = c
    return out


def _outline(ax, image: np.ndarray, label: np.ndarray, title: str, aspect: float = 1.0) -> None:
    ax.imshow(_grey(image) if image.ndim == 2 else image, cmap="gray", aspect=aspect, interpolation="nearest")
    if label is not None and label.max() > 0:
        ax.contour(label, levels=np.arange(0.5, label.max() + 0.5), colors=["#56B4E9", "#E69F00", "#CC79A7"][:
                   int(label.max())], linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


# ---------------------------------------------------------------- synthetic figures
def fig_data_model() -> None:
    """The Image data model: a 2D RGB fundus with its ROI, and a 3D head with its spacing."""
    from medseg.testing import fundus_phantom, t1_head_phantom

    plt = _plt()
    img, lab, roi = fundus_phantom((192, 192), seed=0)
    head, hlab = t1_head_phantom(seed=0)
    sz, sy, sx = head.spacing
    a = head.array
    fig, axes = plt.subplots(1, 5, figsize=(13, 3))
    _outline(axes[0], np.moveaxis(img.array, 0, -1) if img.array.shape[0] == 3 else img.array, None,
             f"fundus: array {img.array.shape}\nchannel axis first")
    axes[1].imshow(lab.array, cmap="gray")
    axes[1].set_title("label (0/1 vessels)", fontsize=9)
    axes[1].axis("off")
    axes[2].imshow(roi.array, cmap="gray")
    axes[2].set_title("roi (field of view)", fontsize=9)
    axes[2].axis("off")
    _outline(axes[3], a[a.shape[0] // 2], hlab.array[a.shape[0] // 2],
             f"head (z,y,x)={a.shape}\naxial z={a.shape[0] // 2}, {sy:g}x{sx:g} mm")
    _outline(axes[4], a[:, :, a.shape[2] // 2], hlab.array[:, :, a.shape[2] // 2],
             f"sagittal, aspect = {sz:g}/{sy:g} mm\n(thick slices kept in spacing)", aspect=sz / sy)
    _save(fig, "data_model.png")


def fig_preprocessing() -> None:
    """Preprocessing steps on the fundus green channel and on the biased head."""
    from medseg import preprocess as P
    from medseg.testing import fundus_phantom, t1_head_phantom

    plt = _plt()
    img, _, _ = fundus_phantom((192, 192), seed=1)
    green = P.select_channel(img, index="green")
    steps = [("green channel", green), ("clahe", P.clahe(green)),
             ("clahe + gaussian σ=1", P.gaussian(P.clahe(green), sigma=1))]
    head, _ = t1_head_phantom(seed=1)
    z = head.shape[0] // 2
    steps += [("T1 head (bias field)", head), ("n4 bias correction", P.n4(head)), ("zscore", P.zscore(head))]
    fig, axes = plt.subplots(1, len(steps), figsize=(15, 2.9))
    for ax, (t, im) in zip(axes, steps):
        a = im.array if im.array.ndim == 2 else im.array[z]
        ax.imshow(_grey(a), cmap="gray")
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    _save(fig, "preprocessing.png")


def fig_features() -> None:
    """A few channels of the default per-pixel feature stack of a fundus image."""
    from medseg.features import feature_stack
    from medseg.preprocess import select_channel
    from medseg.testing import fundus_phantom

    plt = _plt()
    img, _, _ = fundus_phantom((128, 128), seed=2)
    g = select_channel(img, index="green")
    arr, names = feature_stack(g)
    pick = np.linspace(0, arr.shape[0] - 1, 6).astype(int)
    fig, axes = plt.subplots(1, 6, figsize=(14, 2.7))
    for ax, i in zip(axes, pick):
        ax.imshow(_grey(arr[i]), cmap="gray")
        ax.set_title(names[i] if i < len(names) else str(i), fontsize=8)
        ax.axis("off")
    fig.suptitle(f"default feature stack: {arr.shape[0]} features per pixel (6 shown)", fontsize=9)
    _save(fig, "features.png")


def fig_gallery(tmp: Path) -> list[dict]:
    """Every registered method on the same disc phantom (skull-strip: on the T1 head, it is 3D only)."""
    import medseg
    from medseg.metrics import dice
    from medseg.testing import disc_phantom, make_dataset, t1_head_phantom

    plt = _plt()
    image, truth = disc_phantom((128, 128), seed=3)
    train_images, train_labels = zip(*(disc_phantom((96, 96), seed=s) for s in (10, 11, 12)))
    rows = []
    names = sorted(medseg.METHODS.names())
    ncol = 6
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.3 * ncol, 2.5 * nrow))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        cls = medseg.METHODS.get(name)
        t0 = time.perf_counter()
        note = ""
        if name == "skull-strip":
            head, hl = t1_head_phantom(seed=3)
            head_truth = (hl.array >= 4).astype(np.uint8)
            pred = medseg.segment(head, name).array
            z = head.shape[0] // 2
            shown, shown_pred, shown_truth, score = head.array[z], pred[z], head_truth[z], dice(pred, head_truth)
            note = "T1 head phantom (3D only)"
        else:
            if name == "unet":
                ds = make_dataset(tmp / "gallery-disc", kind="disc", n=6, shape=(96, 96), seed=5)
                subprocess.run([sys.executable, "-m", "medseg", "-q", "train", str(ds), "--method", "unet",
                                "--out", str(tmp / "unet"), "--epochs", "4", "--iters-per-epoch", "10",
                                "--folds", "1", "--compile", "off"], check=True)
                model = medseg.load_model(tmp / "unet")
                note = "trained 40 steps on 6 phantoms"
            elif cls.trainable:
                model = cls().fit(list(train_images), [t.array for t in train_labels])
                note = "trained on 3 phantoms"
            else:
                model = cls()
            pred = model(image).array
            shown, shown_pred, shown_truth, score = image.array, pred, truth.array, dice(pred, truth)
        seconds = time.perf_counter() - t0
        ax.imshow(_errors(shown, shown_pred, shown_truth))
        ax.set_title(f"{name}\nDice {score:.2f}", fontsize=9)
        rows.append({"name": name, "family": cls.family, "dims": cls.dims, "trainable": cls.trainable,
                     "summary": cls.summary, "dice": float(score), "seconds": seconds, "note": note})
        print(f"  {name:<24} Dice {score:.3f} ({seconds:.1f} s)")
    fig.suptitle("every method, same image: green = correct foreground, orange = false positive, "
                 "purple = missed", fontsize=10)
    _save(fig, "gallery.jpg")
    return rows


def fig_evaluation(tmp: Path) -> None:
    """Error overlay and per-case Dice of two methods on fundus phantoms."""
    import medseg
    from medseg.metrics import dice
    from medseg.testing import fundus_phantom

    plt = _plt()
    cases = [fundus_phantom((128, 128), seed=20 + i) for i in range(4)]
    per = {"vesselness": [], "retina-vessels": []}
    keep = None
    for img, lab, roi in cases:
        from medseg.roi import apply_roi

        v = apply_roi(medseg.segment(img, "vesselness", channel=1), roi)
        r = apply_roi(_recipe(img), roi)
        per["vesselness"].append(dice(v, lab, roi=roi))
        per["retina-vessels"].append(dice(r, lab, roi=roi))
        keep = keep or (img, lab, r)
    img, lab, r = keep
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    rgb = np.moveaxis(img.array, 0, -1) if img.array.shape[0] == 3 else img.array
    axes[0].imshow(_grey(rgb))
    axes[0].set_title("fundus phantom", fontsize=9)
    axes[0].axis("off")
    axes[1].imshow(_errors(rgb, r.array, lab.array))
    axes[1].axis("off")
    axes[1].set_title("retina-vessels recipe: TP green, FP orange, FN purple", fontsize=9)
    axes[2].boxplot(list(per.values()))
    axes[2].set_xticks([1, 2], list(per))
    for i, v in enumerate(per.values(), 1):
        axes[2].scatter(np.full(len(v), i), v, s=12, zorder=3)
    axes[2].set_ylabel("Dice inside the ROI")
    axes[2].set_title("4 cases, two methods", fontsize=9)
    _save(fig, "evaluation.png")


def _recipe(img):
    from medseg.recipes import get_recipe

    return get_recipe("retina-vessels")(img)


# ---------------------------------------------------------------- stage-page figures (cheap, synthetic)
def fig_ml() -> None:
    """A random forest trained on 3 fundus phantoms, shown on a fourth: probability and errors."""
    import medseg
    from medseg.metrics import dice
    from medseg.roi import apply_roi
    from medseg.testing import fundus_phantom

    plt = _plt()
    train = [fundus_phantom((128, 128), seed=s) for s in (30, 31, 32)]
    forest = medseg.METHODS.get("random-forest")().fit([i for i, _, _ in train], [lab for _, lab, _ in train],
                                                        [roi for _, _, roi in train])
    img, lab, roi = fundus_phantom((128, 128), seed=33)
    prob = forest.predict_proba(img, roi)
    vessel = prob.array[list(prob.meta["classes"]).index(1)]
    pred = apply_roi(forest.predict(img, roi), roi)
    rgb = np.moveaxis(img.array, 0, -1)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    axes[0].imshow(_grey(rgb))
    axes[0].set_title("fundus phantom (not in training)", fontsize=9)
    axes[1].imshow(vessel, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title("random forest: P(vessel)", fontsize=9)
    axes[2].imshow(_errors(rgb, pred.array, lab.array))
    axes[2].set_title(f"prediction vs truth, Dice in ROI {dice(pred, lab, roi=roi):.2f}\n"
                      "green correct, orange false positive, purple missed", fontsize=9)
    for ax in axes:
        ax.axis("off")
    _save(fig, "ml_forest.jpg")


def _tiny_unet(tmp: Path) -> Path:
    """A small 2D U-Net trained for a few seconds on 6 disc phantoms (fold 0 of 2), shared by
    the deep-learning and explanation figures."""
    out = tmp / "tiny-unet"
    if (out / "model.json").exists():
        return out
    from medseg.io import load_dataset
    from medseg.methods.dl import train_unet
    from medseg.testing import make_dataset
    from medseg.train import TrainConfig

    ds = make_dataset(tmp / "tiny-disc", kind="disc", n=6, shape=(64, 64), seed=7)
    cfg = TrainConfig(epochs=8, iters_per_epoch=10, folds=2, fold="0", batch_size=4, progress=False, workers=1,
                      channels=(8, 16, 32), compile="off")
    train_unet(load_dataset(ds), out, cfg)
    return out


def fig_dl(tmp: Path) -> None:
    """Training curve (loss, validation Dice per epoch, from fold_0/log.json) and a prediction."""
    import json

    import medseg
    from medseg.metrics import dice
    from medseg.testing import disc_phantom

    plt = _plt()
    model_dir = _tiny_unet(tmp)
    hist = json.loads((model_dir / "fold_0" / "log.json").read_text())["history"]
    epochs = [h["epoch"] for h in hist]
    image, truth = disc_phantom((64, 64), seed=99)
    pred = medseg.load_model(model_dir, {"tta": False, "compile": "off", "backend": "torch"})(image)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    ax.plot(epochs, [h["loss"] for h in hist], "o-", color="#0072B2", label="training loss (Dice + CE)")
    ax.set_xlabel("epoch (10 steps each)")
    ax.set_ylabel("training loss", color="#0072B2")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["val_dice"] for h in hist], "s-", color="#D55E00", label="validation Dice")
    ax2.set_ylabel("validation Dice (fold 0)", color="#D55E00")
    ax2.set_ylim(0, 1)
    ax.set_title("fold_0/log.json: 6 disc phantoms 64×64, 2 folds", fontsize=9)
    axes[1].imshow(_errors(image.array, pred.array, truth.array))
    axes[1].set_title(f"new phantom, Dice {dice(pred, truth):.2f}\ngreen correct, orange FP, purple missed",
                      fontsize=9)
    axes[1].axis("off")
    _save(fig, "dl_training.png")


def fig_explain(tmp: Path) -> None:
    """Grad-CAM of the tiny U-Net on a disc phantom: image, saliency, overlay."""
    from medseg.explain import explain_model
    from medseg.testing import disc_phantom

    plt = _plt()
    image, _ = disc_phantom((64, 64), seed=99)
    ex = explain_model(_tiny_unet(tmp), image, label=1, method="gradcam", device="cpu")
    structure = (np.asarray(ex.labels) == 1).astype(np.uint8)
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.4))
    axes[0].imshow(_grey(image.array), cmap="gray")
    axes[0].set_title("disc phantom", fontsize=9)
    im = axes[1].imshow(ex.saliency, cmap="inferno", vmin=0, vmax=1)
    axes[1].set_title("Grad-CAM saliency of class 1", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(_grey(image.array), cmap="gray")
    axes[2].imshow(ex.saliency, cmap="inferno", alpha=0.5, vmin=0, vmax=1)
    axes[2].contour(structure, levels=[0.5], colors=["#56B4E9"], linewidths=0.8)
    axes[2].set_title("saliency over the image,\npredicted class 1 outlined", fontsize=9)
    for ax in (axes[0], axes[1], axes[2]):
        ax.axis("off")
    _save(fig, "explain_gradcam.png")


def _identified_dicom(path: Path) -> None:
    """One synthetic MR slice (a head phantom) as DICOM, with identifying text in its header."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    from medseg.testing import head_phantom

    head, _ = head_phantom(seed=0)
    a = head.array[head.shape[0] // 2]
    a = ((a - a.min()) / (np.ptp(a) + 1e-9) * 1000).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, "1.2.826.0.1.3680043.8.498.79"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.77", "1.2.826.0.1.3680043.8.498.78"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "HOSP-004217", "19700101", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20200115", "101500", "ACC123"
    ds.InstitutionName, ds.ReferringPhysicianName = "St Elsewhere Hospital", "House^Greg"
    ds.Modality, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "MR", "T1 axial", 7, 1
    ds.PixelSpacing, ds.SliceThickness = ["1", "1"], "3"
    ds.Rows, ds.Columns = a.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = a.tobytes()
    ds.add_new(0x00091010, "LO", "scanner operator note: Jane D.")  # a private attribute
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def fig_anonymize(tmp: Path) -> None:
    """A synthetic DICOM header's identifying fields before and after `medseg anonymize --date-shift`."""
    import pydicom

    plt = _plt()
    src = tmp / "anon-in" / "slice.dcm"
    _identified_dicom(src)
    # a fixed salt (through a mapping file) so the figure's new UID and date offset are the same
    # every time the docs are rebuilt; a real run takes a random salt unless given --uid-map
    uid_map = tmp / "anon-uids.json"
    uid_map.write_text(json.dumps({"salt": "00" * 32, "date_shift": True, "uids": {}}))
    cmd = ["anonymize", str(src.parent), str(tmp / "anon-out"), "--date-shift", "--uid-map", str(uid_map)]
    subprocess.run([sys.executable, "-m", "medseg", "-q", *cmd], check=True)
    after_path = next((tmp / "anon-out").rglob("*.dcm"))
    before, after = pydicom.dcmread(src), pydicom.dcmread(after_path)
    fields = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
              "AccessionNumber", "InstitutionName", "ReferringPhysicianName", "StudyInstanceUID",
              "SeriesDescription", "PatientIdentityRemoved"]

    def show(ds, key, missing):
        if key not in ds:
            return missing
        v = str(ds[key].value)
        v = v if v else "(empty)"
        return v if len(v) <= 30 else v[:27] + "..."

    rows = [[k, show(before, k, "(absent)"), show(after, k, "(removed)")] for k in fields]
    n_private = [str(sum(1 for e in ds if e.tag.is_private)) for ds in (before, after)]
    rows.append(["private attributes", *n_private])
    rows.append(["file name", src.name, str(after_path.relative_to(tmp / "anon-out"))])
    fig, ax = plt.subplots(figsize=(9.5, 0.26 * (len(rows) + 1)))
    ax.axis("off")
    tbl = ax.table(cellText=rows, colLabels=["DICOM attribute", "before", "after medseg anonymize"],
                   cellLoc="left", colLoc="left", bbox=[0, 0, 1, 1], colWidths=[0.27, 0.36, 0.37])
    tbl.auto_set_font_size(False)
    tbl.set_fontsize(9)
    for (r, c), cell in tbl.get_celld().items():
        cell.set_edgecolor("#bbbbbb")
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#eeeeee")
        elif c == 2 and rows[r - 1][1] != rows[r - 1][2]:
            cell.set_facecolor("#e3f2ec")
    ax.set_title("medseg anonymize in/ out/ --date-shift, on a synthetic MR slice",
                 fontsize=9, pad=6)
    _save(fig, "anonymize.png")


#: measured by ``python benchmarks/bench_scale.py`` (benchmarks/RESULTS.md, Scale); not re-measured here
SCALE_MEASURED = {
    "inference": {"local": 1.78, "Ray ×1": 1.41, "Ray ×2": 2.26},
    "training": {"1 process": 74.8, "--nproc 2": 62.8},
}


def fig_scale() -> None:
    """Bar charts of the Scale numbers measured by benchmarks/bench_scale.py (copied from RESULTS.md)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (part, vals), unit, colours in zip(
            axes, SCALE_MEASURED.items(), ("cases/s, end to end", "samples/s"),
            (["#999999", "#56B4E9", "#0072B2"], ["#999999", "#E69F00"])):
        bars = ax.bar(list(vals), list(vals.values()), color=colours)
        ax.bar_label(bars, fmt="%.2f" if part == "inference" else "%.1f", fontsize=9)
        ax.set_ylabel(unit, fontsize=9)
        ax.set_title(("medseg predict, 24 phantoms 256², tiny 2D unet\n(Ray start-up included)" if part == "inference"
                      else "medseg train, 8 phantoms 256², 200 steps (gloo)")
                     + f"\npython benchmarks/bench_scale.py --part {part}", fontsize=9)
        ax.margins(y=0.15)
    fig.text(0.5, -0.04, "measured on 2 shared CPU cores (x86_64, load 2-5); numbers copied from "
             "benchmarks/RESULTS.md (Scale), not re-measured", ha="center", fontsize=9)
    _save(fig, "scale.png")


# ---------------------------------------------------------------- real data
def fig_real() -> None:
    """Real-data figures from the shared data; skipped cleanly when it is absent."""
    from medseg.testing import shared_data

    root = shared_data()
    if root is None:
        print("  shared data not found: real-data figures skipped (committed ones kept)")
        return
    import medseg
    from medseg.io import read_image, read_label

    plt = _plt()
    drive = root / "DRIVE" / "training"
    if (drive / "images").is_dir():
        img = read_image(drive / "images" / "21_training.tif")
        lab = read_label(drive / "1st_manual" / "21_manual1.gif")
        roi = read_label(drive / "mask" / "21_training_mask.gif")
        from medseg.metrics import dice
        from medseg.roi import apply_roi

        pred = apply_roi(_recipe(img), roi)
        rgb = np.moveaxis(img.array, 0, -1) if img.array.shape[0] == 3 else img.array
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
        axes[0].imshow(rgb)
        axes[0].set_title("DRIVE 21 (real)", fontsize=9)
        axes[1].imshow(lab.array, cmap="gray")
        axes[1].set_title("1st manual annotation", fontsize=9)
        axes[2].imshow(_errors(rgb, pred.array, lab.array))
        axes[2].set_title(f"retina-vessels recipe, Dice in FOV {dice(pred, lab, roi=roi):.3f}", fontsize=9)
        for ax in axes:
            ax.axis("off")
        _save(fig, "real_drive.jpg")
    hip = root / "Hippocampus"
    if (hip / "imagesTr").is_dir():
        img = read_image(hip / "imagesTr" / "hippocampus_003_0000.nii.gz")
        lab = read_label(hip / "labelsTr" / "hippocampus_003.nii.gz")
        pred = medseg.segment(img, "multi-otsu").array
        fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
        for ax, axis, t in zip(axes, range(3), ("axis 0", "axis 1", "axis 2")):
            i = int(np.argmax((lab.array > 0).sum(axis=tuple(a for a in range(3) if a != axis))))
            _outline(ax, np.take(img.array, i, axis), np.take(lab.array, i, axis), f"Hippocampus 003, {t}={i}")
        del pred
        _save(fig, "real_hippocampus.png")
    tcia = root / "TCIA-Brain-Tumor-Progression"
    pyr = root / "pyradiomics"
    panels = []
    if (pyr / "brain1_image.nrrd").exists():
        img, lab = read_image(pyr / "brain1_image.nrrd"), read_label(pyr / "brain1_label.nrrd")
        z = int(np.argmax((lab.array > 0).sum(axis=(1, 2))))
        panels.append((img.array[z], lab.array[z], f"pyradiomics brain1, slice {z}"))
    dirs = sorted(p for p in tcia.rglob("*") if p.is_dir()) if tcia.is_dir() else []
    t1 = next((d for d in dirs if "T1post" in d.name), None)
    mask = next((d for d in dirs if "MaskTumor" in d.name), None)
    if t1 is not None and mask is not None:
        try:
            img, lab = read_image(t1), read_label(mask)
            if img.shape == lab.shape:
                z = int(np.argmax((lab.array > 0).sum(axis=(1, 2))))
                panels.append((img.array[z], lab.array[z], f"TCIA PGBM-001 T1post, slice {z}"))
        except Exception as e:  # noqa: BLE001 - a figure, not a test: say why and go on
            print(f"  TCIA figure skipped: {e}")
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
        for ax, (a, m, t) in zip(np.atleast_1d(axes), panels):
            _outline(ax, a, m, t + " (tumour outlined)")
        _save(fig, "real_tumour.jpg")


# ---------------------------------------------------------------- generated pages
def write_cli_reference() -> Path:
    """docs/reference/cli.md from medseg.cli.main.build_parser (every command's --help)."""
    import argparse

    from medseg.cli.main import build_parser

    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = ["# Command-line reference", "",
            "Generated from `medseg.cli.main.build_parser` by `scripts/docs_figures.py --pages`; "
            "`tests/test_docs_site.py` fails when it is out of date. Method parameters are flags too: "
            "see `medseg methods NAME` and the [method gallery](../gallery.md).", "",
            "```text", parser.format_help().rstrip().replace("\t", "    "), "```", ""]
    for name, p in sub.choices.items():
        text += [f"## medseg {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    path = ROOT / "docs" / "reference" / "cli.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    return path


def _gallery_rows_fallback() -> list[dict]:
    import medseg

    return [{"name": n, "family": medseg.METHODS.get(n).family, "dims": medseg.METHODS.get(n).dims,
             "trainable": medseg.METHODS.get(n).trainable, "summary": medseg.METHODS.get(n).summary}
            for n in sorted(medseg.METHODS.names())]


def write_gallery(rows: list[dict] | None) -> Path:
    """docs/gallery.md: every registered method, its parameters and when to use it."""
    import json

    import medseg

    scores = {r["name"]: r for r in rows} if rows else {}
    cache = ROOT / "docs" / "img" / "gallery.json"
    if rows:
        cache.write_text(json.dumps([{k: r[k] for k in ("name", "dice", "seconds", "note")} for r in rows], indent=1))
    elif cache.exists():
        scores = {r["name"]: r for r in json.loads(cache.read_text())}
    text = ["# Method gallery", "",
            "Every method registered in `medseg.methods.base.METHODS` (the list `medseg methods --json` prints), "
            "run by `scripts/docs_figures.py` on **the same 128×128 disc phantom** "
            "(`medseg.testing.disc_phantom(seed=3)`), with default parameters. Trainable methods were trained "
            "briefly on tiny phantom sets, so their scores show the mechanics, not their ceiling. `skull-strip` "
            "works on 3D volumes only and is shown on the middle slice of `t1_head_phantom`. A low score here "
            "means the image is not the kind the method is for, not that it is broken: `vesselness` looks for "
            "thin tubes (a disc has none), `local` thresholds each neighbourhood, so inside a large uniform disc "
            "it splits noise, and `multi-otsu` makes three classes by default where this image has two. "
            "Generated page: edit the script, not this file.", "",
            "![every method on the same image](img/gallery.jpg)", "",
            "| method | family | 2D/3D | trainable | Dice here | when to use it |", "|---|---|---|---|---|---|"]
    for n in sorted(medseg.METHODS.names()):
        c = medseg.METHODS.get(n)
        s = scores.get(n, {})
        d = f"{s['dice']:.2f}" if "dice" in s else "–"
        dims = "/".join(f"{k}D" for k in c.dims)
        trainable = "yes" if c.trainable else "no"
        text.append(f"| [`{n}`](#{n}) | {c.family} | {dims} | {trainable} | {d} | {WHEN.get(n, '')} |")
    text.append("")
    for n in sorted(medseg.METHODS.names()):
        c = medseg.METHODS.get(n)
        d = c.describe()
        text += [f"## {n}", "", f"{c.summary}. *When to use it:* {WHEN.get(n, '—')}.", ""]
        if scores.get(n, {}).get("note"):
            text += [f"In the figure: {scores[n]['note']}.", ""]
        cmd = (f"medseg train DATASET --method {n} --out models/{n}" if c.trainable
               else f"medseg segment IN OUT --method {n}")
        text += ["```bash", cmd, "```", "", "| parameter (flag) | default | meaning |", "|---|---|---|"]
        for p in d.get("params", []):
            default = repr(p.get("default")).replace("|", "\\|")
            help_ = str(p.get("help", "")).replace("|", "\\|")
            text.append(f"| `--{p['name'].replace('_', '-')}` | `{default}` | {help_} |")
        text.append("")
    path = ROOT / "docs" / "gallery.md"
    path.write_text("\n".join(text))
    return path


def main(argv: list[str] | None = None) -> None:
    """Make every figure (or only the generated pages with ``--pages``)."""
    ap = argparse.ArgumentParser(description="make the documentation's figures and generated pages")
    ap.add_argument("--pages", action="store_true", help="only docs/reference/cli.md and docs/gallery.md")
    ap.add_argument("--only", default="", help="comma-separated figure names: data,prep,features,gallery,eval,"
                    "real,ml,dl,explain,anon,scale")
    a = ap.parse_args(argv)
    print(f"wrote {write_cli_reference().relative_to(ROOT)}")
    if a.pages:
        print(f"wrote {write_gallery(None).relative_to(ROOT)}")
        return
    only = set(filter(None, a.only.split(",")))
    rows = None
    with tempfile.TemporaryDirectory() as tmp:
        for key, fn in (("data", fig_data_model), ("prep", fig_preprocessing), ("features", fig_features),
                        ("gallery", lambda: fig_gallery(Path(tmp))), ("eval", lambda: fig_evaluation(Path(tmp))),
                        ("real", fig_real), ("ml", fig_ml), ("dl", lambda: fig_dl(Path(tmp))),
                        ("explain", lambda: fig_explain(Path(tmp))), ("anon", lambda: fig_anonymize(Path(tmp))),
                        ("scale", fig_scale)):
            if only and key not in only:
                continue
            print(f"{key}:")
            out = fn()
            if key == "gallery":
                rows = out
    print(f"wrote {write_gallery(rows).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
