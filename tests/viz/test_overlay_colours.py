"""Overlay colours come from the documented colour-blind-safe palette and stand out on the image."""
import itertools

import numpy as np
import pytest

from medseg.viz.overlay import (
    ERROR_COLOURS,
    FN_COLOUR,
    FP_COLOUR,
    OKABE_ITO,
    OUTLINE_CANDIDATES,
    TP_COLOUR,
    WRONG_COLOUR,
    error_layer,
    halo_colour,
    outline_colours,
    outline_layer,
    rgb,
)

# Machado, Oliveira & Fernandes (2009) simulation matrices, severity 1.0, on linear RGB
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _simulate(c, kind):
    c = np.asarray(c, float)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if kind:
        lin = np.clip(np.asarray(CVD[kind]) @ lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def _delta_e(a, b):
    from skimage.color import rgb2lab

    la, lb = (rgb2lab(np.asarray(x, float).reshape(1, 1, 3))[0, 0] for x in (a, b))
    return float(np.linalg.norm(la - lb))


def test_error_colours_are_okabe_ito_and_named_in_the_palette():
    assert set(ERROR_COLOURS) == {"true positive", "false positive", "false negative", "wrong class"}
    for col, name in ((TP_COLOUR, "true positive"), (FP_COLOUR, "false positive"), (FN_COLOUR, "false negative"),
                      (WRONG_COLOUR, "wrong class")):
        assert ERROR_COLOURS[name] in OKABE_ITO
        assert np.allclose(col, rgb(ERROR_COLOURS[name]))
    assert set(OUTLINE_CANDIDATES) <= set(OKABE_ITO)


@pytest.mark.parametrize("kind", [None, "protanopia", "deuteranopia", "tritanopia"])
def test_error_colours_stay_distinct_for_colour_blind_readers(kind):
    """True/false positive/false negative (and wrong class) differ clearly under every colour-vision deficiency,
    and from the grey image under them (the old green/red/blue did not: red and green merge for deuteranopes)."""
    cols = [TP_COLOUR, FP_COLOUR, FN_COLOUR, WRONG_COLOUR]
    for a, b in itertools.combinations(cols, 2):
        assert _delta_e(_simulate(a, kind), _simulate(b, kind)) > 20, (kind, a, b)
    for a in cols[:3]:
        assert _delta_e(_simulate(a, kind), np.full(3, 0.45)) > 20, (kind, a)


def test_outline_colour_follows_the_image_colours():
    """On an orange fundus the outline is not yellow/orange (it is sky blue); on grey MR it is a saturated colour."""
    fundus = np.zeros((40, 40, 3))
    yy, xx = np.mgrid[:40, :40]
    inside = (yy - 20) ** 2 + (xx - 20) ** 2 < 18 ** 2
    fundus[inside] = [0.9, 0.5, 0.15]
    fundus[inside & (xx % 7 == 0)] = [0.55, 0.15, 0.05]  # dark red vessels
    first = outline_colours(fundus, 1)[0]
    assert first == "sky blue"
    assert _delta_e(rgb(first), [0.9, 0.5, 0.15]) > 50
    grey = np.repeat(np.linspace(0, 1, 64).reshape(8, 8)[..., None], 3, axis=-1)
    two = outline_colours(grey, 2)
    assert two[0] not in ("white", "black") and two[0] != two[1]
    assert _delta_e(rgb(two[0]), rgb(two[1])) > 30  # two labels also stand apart from each other


def test_outlines_have_a_halo_of_the_opposite_lightness():
    lab = np.zeros((9, 9), int)
    lab[3:6, 3:6] = 1
    layer = outline_layer(lab, ["yellow"])
    assert np.allclose(layer[3, 3, :3], rgb("yellow")) and layer[3, 3, 3] == 1.0  # the outline, opaque
    assert np.allclose(layer[2, 4, :3], halo_colour(rgb("yellow"))) and layer[2, 4, 3] > 0.5  # halo just outside
    assert np.allclose(halo_colour(rgb("yellow")), 0) and np.allclose(halo_colour(rgb("blue")), 1)
    assert layer[0, 0, 3] == 0  # transparent elsewhere
    big = outline_layer(lab, ["yellow"], scale=4)
    assert big.shape == (36, 36, 4)


def test_error_layer_respects_the_roi():
    t = np.array([[1, 1, 0, 0]])
    p = np.array([[1, 0, 1, 1]])
    roi = np.array([[1, 1, 1, 0]], bool)
    layer = error_layer(t, p, roi=roi, alpha=1.0)
    assert np.allclose(layer[0, 0, :3], TP_COLOUR) and np.allclose(layer[0, 1, :3], FN_COLOUR)
    assert np.allclose(layer[0, 2, :3], FP_COLOUR)
    assert np.allclose(layer[0, 3, :3], 1.0) and layer[0, 3, 3] < 1  # outside the ROI: pale, not an error colour
