"""Inference on the validation cases, for training: `PredictorValidator` implements the
[`Validator`][medseg.dl.validation.Validator] protocol that [`medseg.train.engine.train_model`][]
receives. It predicts the held-out cases during training and, at its end, chooses the
inference window (`WINDOW_TOLERANCE`) and the post-processing
(`select_postprocessing`) recorded in ``model.json``.

Examples
--------
>>> import numpy as np
>>> truth = np.zeros((6, 6), np.uint8); truth[1:4, 1:4] = 1
>>> pred = truth.copy(); pred[5, 5] = 1            # a stray voxel
>>> select_postprocessing([(pred, truth, None)], 2)
{'1': 'largest'}
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from medseg.dl.plan import Plan
from medseg.dl.validation import VALIDATION_OVERLAP, InferenceChoice, ValidationCase, class_dice, dice_per_class
from medseg.infer.predictor import Predictor
from medseg.postprocess import apply_rules

log = logging.getLogger(__name__)

__all__ = ["WINDOW_TOLERANCE", "PredictorValidator", "select_postprocessing"]

WINDOW_TOLERANCE = 0.001
"""``medseg train`` keeps whole-image windows when their mean validation Dice is at most this much
below that of training-size windows (see [`Predictor`][medseg.infer.predictor.Predictor]'s
``window``)."""

#: (prediction, truth, roi) label maps of one validation case
Pair = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


class PredictorValidator:
    """The [`Validator`][medseg.dl.validation.Validator] of training, with `Predictor`.

    Validation predictions use windows of the plan's patch size at
    [`VALIDATION_OVERLAP`][medseg.dl.validation.VALIDATION_OVERLAP], no test-time augmentation and the
    torch backend uncompiled (reproducible), and leave the training network's memory layout
    as it is.

    Examples
    --------
    >>> from medseg.dl.validation import Validator
    >>> isinstance(PredictorValidator(), Validator)
    True
    """

    def probabilities(self, net: torch.nn.Module, plan: Plan, images: Sequence[np.ndarray], *,
                      device: str) -> list[np.ndarray]:
        """Softmax of each preprocessed image with ``net`` (left in eval mode).

        Parameters
        ----------
        net : torch.nn.Module
        plan : Plan
        images : sequence of ndarray, each (C, *spatial)
        device : str

        Returns
        -------
        list of ndarray, each (K, *spatial) float32
        """
        # channels_last=False: the training network's layout must not change (exact resume)
        pred = Predictor([net], plan, tta=False, overlap=VALIDATION_OVERLAP, device=device, channels_last=False)
        return [pred.probabilities(a) for a in images]

    def choose_inference(self, folds: Iterable[tuple[torch.nn.Module, Sequence[ValidationCase]]], plan: Plan, *,
                         device: str) -> InferenceChoice:
        """Choose, on the validation cases, the inference window and the post-processing.

        Window: ``"image"`` (whole-image windows, far fewer voxels to compute) when its
        mean validation Dice is within `WINDOW_TOLERANCE` of training-size windows,
        else ``"patch"`` (also when no validation image is larger than a patch, where both
        are the same). Post-processing: keep-largest-component per class where it raises
        the validation Dice of the chosen window's predictions
        (`select_postprocessing`).

        Parameters
        ----------
        folds : iterable of (network, cases)
            Each fold's network at the end of training with its held-out cases.
        plan : Plan
        device : str

        Returns
        -------
        InferenceChoice
            ``("patch", {}, {})`` without validation cases; the Dice per window rounded to
            5 decimals.
        """
        pairs: dict[str, list[Pair]] = {"patch": [], "image": []}
        larger = False
        for net, cases in folds:
            preds = {w: Predictor([net], plan, tta=False, overlap=VALIDATION_OVERLAP, device=device, window=w,
                                  channels_last=False) for w in pairs}
            for c in cases:
                roi = None if c.roi is None else c.roi.astype(bool)
                lab = preds["patch"].probabilities(c.image).argmax(0).astype(np.uint8)
                pairs["patch"].append((lab, c.label, roi))
                if preds["image"].window_size(c.label.shape) != list(plan.patch_size):
                    larger = True  # else both windows are the same: the same prediction
                    lab = preds["image"].probabilities(c.image).argmax(0).astype(np.uint8)
                pairs["image"].append((lab, c.label, roi))
        if not pairs["patch"]:
            return InferenceChoice("patch", {}, {})
        scores = {w: _mean_dice(p, plan.n_classes) for w, p in pairs.items()}
        window = "patch"
        if larger and scores["image"] >= scores["patch"] - WINDOW_TOLERANCE:
            window = "image"
        log.info("inference window on validation: %s (mean Dice %s)", window,
                 ", ".join(f"{w} {v:.4f}" for w, v in scores.items()))
        return InferenceChoice(window, {w: round(v, 5) for w, v in scores.items()},
                               select_postprocessing(pairs[window], plan.n_classes))


def _mean_dice(pairs: Sequence[Pair], n_classes: int) -> float:
    return float(np.mean([np.mean(dice_per_class(p, t, n_classes, r)) for p, t, r in pairs]))


def select_postprocessing(pairs: Sequence[Pair], n_classes: int, *, min_gain: float = 1e-3,
                          max_case_loss: float = 5e-3) -> dict[str, str]:
    """Per-class post-processing rules chosen on validation predictions, only where they help clearly.

    Keeping only the largest connected component of a class is chosen where it raises the
    class's mean Dice over the cases by more than ``min_gain`` **and** lowers no single case's
    Dice by more than ``max_case_loss``. A rule that deletes a real second component in even
    one validation case will do so on new data too (a second lesion, the other lung, a vessel
    cut by the field of view), where the mean of a few validation cases can hide it.

    Parameters
    ----------
    pairs : sequence of (prediction, truth, roi)
        Label maps of each validation case (``roi``: boolean mask or None).
    n_classes : int
        Classes including background.
    min_gain : float
        Least gain of the class's mean Dice.
    max_case_loss : float
        Largest loss of Dice the rule may cause on any one case.

    Returns
    -------
    dict
        ``{"class": "largest"}`` for the classes it helps (see
        [`medseg.postprocess.apply_rules`][]).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((8, 8), np.uint8); truth[1:4, 1:4] = 1
    >>> stray = truth.copy(); stray[6, 6] = 1          # the rule helps this case ...
    >>> two = truth.copy(); two[5:8, 5:8] = 1          # ... and would cut this one's second object
    >>> cases = [(stray, truth, None)] * 10                # mean gain +0.053 ...
    >>> select_postprocessing(cases, 2), select_postprocessing(cases + [(two, two, None)], 2)
    ({'1': 'largest'}, {})
    """
    rules: dict[str, str] = {}
    for c in range(1, n_classes):
        before, after = [], []
        for pred, truth, roi in pairs:
            before.append(class_dice(pred, truth, c, roi))
            after.append(class_dice(apply_rules(pred, {str(c): "largest"}), truth, c, roi))
        change = np.asarray(after) - np.asarray(before)
        if change.mean() > min_gain and change.min() >= -max_case_loss:
            rules[str(c)] = "largest"
        elif change.mean() > min_gain:
            log.info("post-processing: keeping the largest component of class %d would raise the validation Dice "
                     "by %.4f on average but lowers one case by %.4f: not used", c, change.mean(), -change.min())
    return rules
