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


def test_pick_slice_never_picks_a_slice_without_truth():
    """A false-positive blob on a slice without truth has the most errors; the slice shown must hold truth."""
    t = np.zeros((10, 8, 8), np.uint8)
    t[2:5, 2:6, 2:6] = 1
    p = t.copy()
    p[8] = 1  # 64 false positives on slice 8 (no truth there)
    p[3, 2, 2] = 0  # one error on a slice with truth
    k = pick_slice(t, p)
    assert t[k].any() and k == 3
    # empty truth everywhere: the slice with the false positives
    assert pick_slice(np.zeros_like(t), p) == 8


def test_centre_slices_snap_to_slices_with_truth():
    from medseg.viz.overlay import centre_slices

    t = np.zeros((12, 12, 12), np.uint8)
    t[2:5, 2:5, 2:5] = 1
    p = t.copy()
    p[8:11, 8:11, 8:11] = 1
    indices, centre = centre_slices(t, p)
    for ax, k in enumerate(indices):
        assert np.take(t, k, axis=ax).any(), (ax, k)
    assert all(c >= 8 for c in centre)  # the errors are there
    assert indices == (4, 4, 4)  # the nearest slices with truth


def test_anatomical_views_orient_by_the_direction():
    from medseg.viz.overlay import anatomical_views

    # nibabel RAS volumes read as (z, y, x) in (S, P, L) world order: y runs anterior, x runs to the right
    views = anatomical_views(np.diag([1.0, -1.0, -1.0]))
    assert [(v.name, v.axis) for v in views] == [("axial", 0), ("coronal", 1), ("sagittal", 2)]
    axial, coronal, sagittal = views
    assert axial.flip_rows and axial.flip_cols  # anterior up, patient's left on the right
    assert coronal.flip_rows and sagittal.flip_rows  # superior up
    vol = np.arange(24).reshape(2, 3, 4)
    assert axial.take(vol, 1).shape == (3, 4) and coronal.take(vol, 0).shape == (2, 4)
    # a permuted volume: axis 2 runs superior, so it is the axial normal
    perm = anatomical_views(np.array([[0, 0, 1.0], [0, 1.0, 0], [1.0, 0, 0]]))
    assert [(v.name, v.axis) for v in perm] == [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    assert perm[1].take(np.zeros((4, 5, 6)), 0).shape == (6, 4)  # coronal: superior (axis 2) as rows


def test_small_n_plots_points_with_values_not_boxes():
    fig = metric_box_figure({"label 1": [0.8426, 0.8430]}, title="Dice", bounds=(0, 1))
    ax = fig.axes[0]
    assert not [c for c in ax.get_children() if type(c).__name__ == "PathPatch"]  # no box
    assert sorted(t.get_text() for t in ax.texts) == ["0.843", "0.843"]  # every value written
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.1 and lo <= 0.8426 and hi <= 1.05  # not a 0.0004-wide zoom
    png_bytes(fig)


def test_many_cases_get_a_box():
    from medseg.viz.plots import BOX_MIN_N

    v = np.linspace(0.7, 0.9, BOX_MIN_N)
    fig = metric_box_figure({"a": v}, title="Dice", bounds=(0, 1))
    ax = fig.axes[0]
    assert not ax.texts  # no value labels
    assert [line for line in ax.lines if line.get_color() == "#d95f02"]  # the median line of a box
    png_bytes(fig)


def test_axis_limits_have_a_sensible_minimum_span():
    from medseg.viz.plots import value_limits

    lo, hi = value_limits([0.84, 0.8404], bounds=(0, 1))
    assert hi - lo >= 0.1
    lo, hi = value_limits([0.999, 1.0], bounds=(0, 1))
    assert hi <= 1.01 and hi - lo >= 0.1  # kept inside the metric's range
    lo, hi = value_limits([3.0, 3.0], bounds=(0, np.inf))
    assert hi - lo >= 0.5 and lo >= 0
    lo, hi = value_limits([1.0, 50.0])
    assert lo < 1 and hi > 50


def test_paired_figure_labels_its_bar_as_the_mean():
    fig = paired_figure({"a": [0.8, 0.9, 0.7], "b": [0.6, 0.65, 0.7]}, title="Dice, label 1")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["mean 0.800", "mean 0.650"]
    assert "mean of the 3 cases" in ax.get_title()
    png_bytes(fig)


def test_png_panels_keep_full_resolution():
    import io

    from PIL import Image

    from medseg.viz.html import panel, png_from_array

    rgb = np.random.default_rng(0).random((584, 565, 3))
    png = png_from_array(rgb)
    assert Image.open(io.BytesIO(png)).size == (565, 584)
    html = panel("x", width=565, height=584, natural_width=565, background="b0")
    assert 'data-w="565"' in html and "zoomable" in html
