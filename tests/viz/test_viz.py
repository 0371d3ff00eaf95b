import numpy as np
import pytest

from medseg.errors import InputError
from medseg.viz import (
    confusion_figure,
    error_overlay,
    metric_box_figure,
    paired_figure,
    pick_slice,
    png_bytes,
    to_display,
)
from medseg.viz.html import num, page, table
from medseg.viz.overlay import FN_COLOUR, FP_COLOUR, TP_COLOUR, WRONG_COLOUR


def test_error_overlay_colours_each_outcome():
    base = np.zeros((2, 3, 3))
    truth = np.array([[1, 1, 0], [0, 2, 0]])
    pred = np.array([[1, 0, 1], [0, 1, 0]])
    out = error_overlay(base, truth, pred, alpha=1.0)
    assert np.allclose(out[0, 0], TP_COLOUR) and np.allclose(out[0, 1], FN_COLOUR)
    assert np.allclose(out[0, 2], FP_COLOUR) and np.allclose(out[1, 1], WRONG_COLOUR)
    assert np.allclose(out[1, 0], 0)


def test_to_display_handles_rgb_and_grey_and_mismatch():
    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 6)).astype(np.uint8)
    shown = to_display(rgb, (5, 6))
    assert shown.shape == (5, 6, 3) and not np.allclose(shown[..., 0], shown[..., 1])
    modalities = np.random.default_rng(0).random((3, 5, 6))
    grey = to_display(modalities, (5, 6))
    assert np.allclose(grey[..., 0], grey[..., 1])  # first modality in grey, not false colour
    g = to_display(np.arange(30.0).reshape(5, 6), (5, 6))
    assert g.min() == 0 and g.max() == 1
    assert to_display(None, (5, 6)).shape == (5, 6, 3)
    with pytest.raises(InputError):
        to_display(np.zeros((4, 4)), (5, 6))


def test_pick_slice_finds_errors():
    t = np.zeros((5, 4, 4), int)
    p = t.copy()
    p[3, 1:3, 1:3] = 1
    assert pick_slice(t, p) == 3


def test_figures_render_to_png():
    png = png_bytes(metric_box_figure({"a": [0.5, 0.7, np.inf, np.nan], "b": [0.9]}, title="Dice"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_bytes(confusion_figure(np.array([[5, 1], [0, 3]]), ["bg", "fg"]))[:4] == b"\x89PNG"
    assert png_bytes(paired_figure({"x": [1, 2], "y": [2, np.nan]}, title="t"))[:4] == b"\x89PNG"


def test_html_helpers_escape():
    assert num(float("nan")) == "—" and num(float("inf")) == "∞" and num(0.12345) == "0.123"
    t = table(["a"], [["<b>"]])
    assert "&lt;b&gt;" in t
    assert page("x<y", t).startswith("<!DOCTYPE html>")


def test_error_window_finds_the_dense_error_region():
    from medseg.viz.overlay import error_window

    t = np.zeros((200, 200), np.uint8)
    p = t.copy()
    p[150:170, 20:40] = 1
    win = error_window(t, p)
    assert win is not None and win[0].start <= 150 and win[0].stop >= 170 and win[1].start <= 20 and win[1].stop >= 40
    assert error_window(t[:30, :30], p[:30, :30]) is None
