"""The evaluation report as a reader uses it: full-resolution overlays, slices with truth, curves, fitting plots."""
import base64
import io
import re

import numpy as np
import pytest
from PIL import Image as PILImage

from medseg.image import Image
from medseg.metrics import report, report_html
from medseg.metrics.evaluation import evaluate
from medseg.viz.overlay import ERROR_COLOURS, OKABE_ITO


def _page(table, n_worst=5):
    return report_html.evaluation_html(table, report.summary_document(table), title="t", n_worst=n_worst)


_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAAAABJRU5ErkJggg==")


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing the metric plots (Matplotlib) in tests about the rest of the page."""
    for name in ("metric_box_figure", "confusion_figure"):
        monkeypatch.setattr(report_html, name, lambda *a, **k: None)

    def png_bytes(fig, **kw):
        if fig is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)
        return _PNG

    monkeypatch.setattr(report_html, "png_bytes", png_bytes)


def _pngs(html):
    """(kind, PIL image) of every embedded PNG: "bg" for an image (a CSS background), "ov" for an overlay drawn
    over it, "img" for a plot."""
    out = []
    for m in re.finditer(r'(url\(|<img class="ov" alt="[^"]*" src="|<img[^>]*src=")data:image/png;base64,'
                         r'([A-Za-z0-9+/=]+)', html):
        kind = "bg" if m.group(1) == "url(" else "ov" if 'class="ov"' in m.group(1) else "img"
        out.append((kind, PILImage.open(io.BytesIO(base64.b64decode(m.group(2))))))
    return out


def _fundus_case(h=90, w=87, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.uint8)
    truth[h // 5:4 * h // 5, w // 3:w // 3 + 3] = 1  # two "vessels"
    truth[h // 2:h // 2 + 3, w // 8:7 * w // 8] = 1
    pred = truth.copy()
    pred[h // 5:h // 3, :] = 0  # a missed piece
    pred[2 * h // 3:2 * h // 3 + 3, w // 2:w // 2 + 9] = 1  # a false positive
    image = (rng.random((3, h, w)) * 255).astype(np.uint8)
    return pred, truth, image


def test_2d_overlays_are_embedded_at_full_resolution(no_plots):
    pred, truth, image = _fundus_case(584, 565)
    table = evaluate([pred], [truth], images=[image], distances=False)
    page = _page(table)
    backgrounds = [im for kind, im in _pngs(page) if kind == "bg"]
    assert backgrounds[0].size == (565, 584)  # the image itself, one PNG pixel per image pixel
    overlays = [im for kind, im in _pngs(page) if kind == "ov"]
    assert len([im for im in overlays if im.size == (565, 584)]) == 3  # truth, prediction, errors at 1:1
    assert 'style="width:565px"' in page  # shown at 1:1, not as a thumbnail
    assert "zoomable" in page and 'id="lb"' in page and "<script>" in page  # click to zoom, inline
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_small_images_are_enlarged_by_whole_factors(no_plots):
    pred, truth, image = _fundus_case(40, 30)
    page = _page(evaluate([pred], [truth], images=[image], distances=False))
    overlays = [im for kind, im in _pngs(page) if kind == "ov"]
    k = overlays[0].size[0] // 30
    assert k >= 2 and overlays[0].size == (30 * k, 40 * k)  # outlines drawn at the enlarged size
    assert [im.size for kind, im in _pngs(page) if kind == "bg"][0] == (30, 40)
    assert "image-rendering:pixelated" in page


def test_legend_names_the_documented_palette(no_plots):
    pred, truth, image = _fundus_case()
    page = _page(evaluate([pred], [truth], images=[image], distances=False))
    for outcome in ("true positive", "false positive", "false negative"):
        name = ERROR_COLOURS[outcome]
        assert f"{outcome} <small>({name} {OKABE_ITO[name]})</small>" in page
    assert "Okabe" in page and "colour-blind" in page
    assert "green = correct" not in page


def _volume_case():
    truth = np.zeros((12, 20, 18), np.uint8)
    truth[3:6, 6:12, 5:11] = 1
    truth[3:6, 6:12, 11:14] = 2
    pred = truth.copy()
    pred[4, 6:9, 5:8] = 0
    pred[9:12, :, :] = 1  # a huge false positive on slices without any truth
    image = np.random.default_rng(1).random((12, 20, 18)).astype(np.float32)
    return pred, truth, image


def _shown_slices(page):
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r'class="row-title">(axial|coronal|sagittal|axis \d) '
                                                              r"slice (\d+) \(of 0–", page)]


def test_3d_panels_show_the_error_slice_and_three_views_each_with_truth(no_plots):
    pred, truth, image = _volume_case()
    direction = np.eye(3)
    table = evaluate([Image(pred, spacing=(2.0, 1.0, 1.0), direction=direction)],
                     [Image(truth, spacing=(2.0, 1.0, 1.0), direction=direction)], images=[image], distances=False)
    page = _page(table)
    shown = _shown_slices(page)
    assert {name for name, _ in shown} == {"axial", "coronal", "sagittal"}
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}
    for name, k in shown:
        assert np.take(truth, k, axis=axis[name]).any(), (name, k)  # never a slice without ground truth
    assert shown[0] == ("axial", 4)  # the most errors among the slices with truth (not the FP slab 9-11)
    assert "the most errors" in page and "through the centre of the errors" in page
    assert len(shown) == 3  # the slice of most errors is also the axial view through the error centre


def test_3d_case_without_truth_says_so(no_plots):
    pred, truth, image = _volume_case()
    table = evaluate([pred], [np.zeros_like(truth)], labels=[1], images=[image], distances=False)
    page = _page(table)
    assert "The ground truth of this case is empty" in page
    assert "(empty: this case has no ground truth)" in page
    assert {name for name, _ in _shown_slices(page)} == {"axis 0", "axis 1", "axis 2"}  # no geometry: no anatomy


def _prob_cases(n):
    cases = []
    rng = np.random.default_rng(2)
    for _ in range(n):
        t = np.zeros((24, 24), np.uint8)
        t[6:18, 6:18] = 1
        prob = np.clip(0.7 * t + 0.3 * rng.random(t.shape), 0, 1)
        cases.append(((prob > 0.5).astype(np.uint8), t, prob))
    return cases


def test_probability_curves_appear_with_probabilities_only(no_plots):
    cases = _prob_cases(3)
    with_p = _page(evaluate([c[0] for c in cases], [c[1] for c in cases], probabilities=[c[2] for c in cases],
                            distances=False), n_worst=0)
    assert "<h2>Probability curves</h2>" in with_p and 'alt="probability curves of label 1"' in with_p
    assert "reliability diagram" in with_p and "ROC" in with_p and "1000" in with_p
    without = _page(evaluate([c[0] for c in cases], [c[1] for c in cases], distances=False), n_worst=0)
    assert "Probability curves" not in without


def test_probability_curves_pool_cases(monkeypatch, no_plots):
    calls = []
    real = report_html.probability_curves_figure

    def spy(pooled, cases=(), **kw):
        calls.append((pooled, list(cases)))
        return real(pooled, cases, **kw)

    monkeypatch.setattr(report_html, "probability_curves_figure", spy)
    cases = _prob_cases(3)
    table = evaluate([c[0] for c in cases], [c[1] for c in cases], probabilities=[c[2] for c in cases],
                     distances=False)
    _page(table, n_worst=0)
    (pooled, per_case), = calls
    assert len(per_case) == 3 and pooled["n_positive"] == 3 * 144
    assert pooled["roc_auc"] == pytest.approx(float(np.mean(table.column("roc_auc"))), abs=0.02)


@pytest.mark.parametrize("n, boxes", [(2, False), (8, True)])
def test_distribution_plots_fit_the_number_of_cases(n, boxes, monkeypatch):
    from medseg.viz import plots

    seen = []
    real = plots.metric_box_figure

    def spy(groups, **kw):
        fig = real(groups, **kw)
        if any(np.isfinite(v).any() for v in groups.values()):  # distances=False: no distance values to draw
            seen.append(bool([line for line in fig.axes[0].lines if line.get_color() == "#d95f02"]))  # box median
        return fig

    monkeypatch.setattr(report_html, "metric_box_figure", spy)
    cases = _prob_cases(n)
    page = _page(evaluate([c[0] for c in cases], [c[1] for c in cases], distances=False), n_worst=0)
    assert seen and all(s == boxes for s in seen)
    assert ("too few for a box plot" in page) == (not boxes)
