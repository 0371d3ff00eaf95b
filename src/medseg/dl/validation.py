"""What training asks of inference, as a protocol: training validates with sliding-window
predictions and, at its end, lets inference choose the window and the post-processing on
the validation cases, yet [`medseg.train`][] never imports [`medseg.infer`][]. It receives
a `Validator` instead ([`medseg.infer.validation.PredictorValidator`][], wired in
by the ``unet`` method adapter, [`medseg.methods.dl`][]).

Scores use one Dice ([`medseg.metrics.dice`][]) with the validation convention that a
class absent from both the prediction and the truth scores 1.

Examples
--------
>>> import numpy as np
>>> truth = np.array([[0, 1, 1], [0, 2, 0]])
>>> dice_per_class(np.array([[0, 1, 0], [0, 2, 0]]), truth, 4)
[0.6666666666666666, 1.0, 1.0]
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

import numpy as np

from medseg.dl.plan import Plan
from medseg.metrics.confusion import dice

if TYPE_CHECKING:
    import torch

__all__ = ["VALIDATION_OVERLAP", "InferenceChoice", "ValidationCase", "Validator", "class_dice", "dice_per_class"]

VALIDATION_OVERLAP = 0.25
"""Sliding-window overlap of validation predictions (during training and when choosing)."""


class ValidationCase(Protocol):
    """A held-out case in the plan's space (training's prepared cases are such).

    Attributes
    ----------
    image : ndarray of float32, shape (C, *spatial)
        Preprocessed ([`medseg.dl.preprocessing.preprocess`][]).
    label : ndarray of int, shape (*spatial)
    roi : ndarray, shape (*spatial), or None
        Nonzero inside the region of interest.
    """

    image: np.ndarray
    label: np.ndarray
    roi: np.ndarray | None


class InferenceChoice(NamedTuple):
    """Inference settings chosen on the validation cases (recorded in ``model.json``).

    Attributes
    ----------
    window : str
        ``"patch"`` or ``"image"`` (``model.json``'s ``inference_window``).
    val_dice : dict
        Mean validation Dice per window (``inference_window_val_dice``); empty without
        validation cases.
    postprocessing : dict
        Per-class rules such as ``{"1": "largest"}`` (see [`medseg.postprocess.apply_rules`][]).
    """

    window: str
    val_dice: dict[str, float]
    postprocessing: dict[str, str]


@runtime_checkable
class Validator(Protocol):
    """The inference training needs: validation probabilities and the final choice."""

    def probabilities(self, net: torch.nn.Module, plan: Plan, images: Sequence[np.ndarray], *,
                      device: str) -> list[np.ndarray]:
        """Softmax of each preprocessed image with ``net``.

        Windows of the plan's patch size at `VALIDATION_OVERLAP`, no test-time
        augmentation, the network's memory layout left as it is (training goes on with it).

        Parameters
        ----------
        net : torch.nn.Module
            The training network (left in eval mode: the caller switches it back).
        plan : Plan
        images : sequence of ndarray, each (C, *spatial)
        device : str

        Returns
        -------
        list of ndarray, each (K, *spatial) float32
        """
        ...

    def choose_inference(self, folds: Iterable[tuple[torch.nn.Module, Sequence[ValidationCase]]], plan: Plan, *,
                         device: str) -> InferenceChoice:
        """Choose the inference window and the post-processing on validation cases.

        Parameters
        ----------
        folds : iterable of (network, cases)
            Each trained fold's network with its held-out cases (folds without held-out
            cases left out).
        plan : Plan
        device : str

        Returns
        -------
        InferenceChoice
            ``("patch", {}, {})`` when there are no validation cases.
        """
        ...


def class_dice(pred: np.ndarray, truth: np.ndarray, label: int, roi: np.ndarray | None = None) -> float:
    """Dice of class ``label`` inside ``roi``; 1.0 when the class is in neither map.

    Parameters
    ----------
    pred, truth : ndarray of int, same shape (2D or 3D)
        Label maps.
    label : int
    roi : ndarray of bool, same shape, optional

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> class_dice(np.zeros((2, 2), int), np.zeros((2, 2), int), 1)
    1.0
    """
    if roi is not None and not roi.any():
        return 1.0  # nothing to evaluate: as if both masks were empty
    d = dice(pred, truth, label=label, roi=roi)
    return 1.0 if math.isnan(d) else d


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int, roi: np.ndarray | None = None) -> list[float]:
    """`class_dice` of each foreground class ``1 .. n_classes - 1``.

    Parameters
    ----------
    pred, truth : ndarray of int, same shape (2D or 3D)
    n_classes : int
        Classes including background.
    roi : ndarray of bool, same shape, optional

    Returns
    -------
    list of float, length n_classes - 1
    """
    return [class_dice(pred, truth, c, roi) for c in range(1, n_classes)]
