"""Window layout and compiled inference of the DL predictor."""
import math

import numpy as np
import pytest
import torch


class _Recorder(torch.nn.Module):
    """Returns two zero 'logits' channels and records each window's top-left voxel index."""

    def __init__(self):
        super().__init__()
        self.starts = []

    def forward(self, x):
        self.starts += [int(v) for v in x[:, 0].flatten(1)[:, 0]]
        return torch.zeros((x.shape[0], 2) + tuple(x.shape[2:]))


@pytest.mark.parametrize("length,win,overlap", [(584, 128, 0.0), (584, 128, 0.25), (565, 128, 0.125),
                                                (100, 32, 0.5), (101, 20, 0.9), (33, 32, 0.0), (64, 32, 0.0),
                                                (500, 7, 0.3), (20, 32, 0.5)])
def test_windows_are_the_fewest_with_the_overlap_and_end_flush(length, win, overlap):
    from monai.inferers import sliding_window_inference

    from medseg.infer.windows import window_overlaps

    idx = torch.arange(length * 3, dtype=torch.float32).reshape(1, 1, length, 3)
    rec = _Recorder()
    ov = window_overlaps((length, 3), (win, 3), overlap)
    sliding_window_inference(idx, (win, 3), 64, rec, overlap=ov, mode="gaussian")
    starts = sorted({s // 3 for s in rec.starts})
    if length <= win:
        assert starts == [0] and ov[0] == 0.0
        return
    # independent count: the fewest n whose whole-voxel even step keeps the overlap (to a voxel)
    n = 2
    while math.ceil((length - win) / (n - 1)) > math.ceil(win * (1 - overlap)):
        n += 1
    assert len(starts) == n
    assert starts[0] == 0 and starts[-1] == length - win
    gaps = np.diff(starts)
    assert gaps.max() <= math.ceil(win * (1 - overlap))  # every seam overlaps by >= overlap (to a voxel)
    assert np.all(gaps[:-1] == gaps[0])  # evenly spread; only the last step may be shorter


def test_predictor_runs_the_even_layout(tiny):
    from monai.inferers import sliding_window_inference

    from medseg.infer.predictor import Predictor
    from medseg.infer.windows import window_overlaps

    plan, net = tiny()
    x = np.random.default_rng(0).normal(size=(1, 70, 50)).astype(np.float32)
    p = Predictor([net], plan, tta=False, overlap=0.25, device="cpu").probabilities(x)
    with torch.inference_mode():
        lo = sliding_window_inference(torch.from_numpy(x)[None], plan.patch_size, 16, net,
                                      overlap=window_overlaps((70, 50), (32, 32), 0.25), mode="gaussian",
                                      sigma_scale=0.125, padding_mode="constant")
    np.testing.assert_allclose(p, torch.softmax(lo, 1)[0].numpy(), atol=1e-5)


class _FakeCompile:
    """Stands in for torch.compile: counts compilations and compiled calls, runs the network."""

    def __init__(self, fail=False):
        self.compiled, self.calls, self.batches, self.fail = 0, 0, [], fail

    def __call__(self, net, **kw):
        if self.fail:
            def broken(x):
                raise RuntimeError("Compiler: cc not found")
            return broken
        self.compiled += 1

        def run(x):
            self.calls += 1
            self.batches.append(int(x.shape[0]))
            return net(x)
        return run


def _windows(n, size=32, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 1, size, size)).astype(np.float32))


def test_tiered_net_compiles_once_per_shape_pads_small_batches_and_chunks_large(tiny, monkeypatch):
    from medseg.infer.tiered import TieredNet

    _, net = tiny()
    net.eval()
    fake = _FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    t = TieredNet(net, "on")
    with torch.inference_mode():
        ref = net(_windows(11))
        a = t(_windows(4))  # eager, then compiled for 4 windows of 32x32
        assert fake.compiled == 1 and t.batch == {(1, 32, 32): 4}
        b = t(_windows(11))  # chunks 4 + 4 + 3, the last zero-padded to 4
        assert fake.batches[1:] == [4, 4, 4]
        d = t(_windows(2))  # half a batch: runs eagerly, padding would cost more
        assert fake.calls == 4
        c = t(_windows(4, size=48))  # a new shape compiles too
    np.testing.assert_allclose(a.numpy(), ref[:4].numpy(), atol=1e-6)
    np.testing.assert_allclose(b.numpy(), ref.numpy(), atol=1e-5)  # padding does not leak into the windows
    np.testing.assert_allclose(d.numpy(), ref[:2].numpy(), atol=1e-6)
    assert b.shape == (11, 2, 32, 32) and c.shape == (4, 2, 48, 48) and len(t.batch) == 2


def test_tiered_net_auto_waits_for_long_jobs_and_off_never_compiles(tiny, monkeypatch):
    import medseg.infer.tiered as T

    _, net = tiny()
    net.eval()
    fake = _FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    with torch.inference_mode():
        t = T.TieredNet(net, "auto")
        for _ in range(3):
            t(_windows(2))
        assert fake.compiled == 0 and 0 < t.eager_s[(1, 32, 32)] < T.COMPILE_AFTER_S
        monkeypatch.setattr(T, "COMPILE_AFTER_S", 0.0)
        t(_windows(2))
        assert fake.compiled == 1
        t(_windows(2))
        assert fake.calls == 2  # the compiling call, then the next batch ran compiled
        off = T.TieredNet(net, "off")
        off(_windows(2))
        assert fake.compiled == 1 and not off.eager_s


def test_failed_compilation_warns_once_and_runs_eagerly(tiny, monkeypatch, caplog):
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    monkeypatch.setattr(torch, "compile", _FakeCompile(fail=True))
    x = np.random.default_rng(0).normal(size=(1, 50, 45)).astype(np.float32)
    ref = Predictor([net], plan, tta=False, device="cpu").probabilities(x)
    with caplog.at_level("WARNING"):
        p = Predictor([net], plan, tta=False, device="cpu", compile="on").probabilities(x)
    np.testing.assert_array_equal(p, ref)
    msgs = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(msgs) == 1 and "cc not found" in msgs[0]


def test_compile_option_is_checked_and_auto_is_cpu_only(tiny):
    from medseg.errors import ConfigError
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    with pytest.raises(ConfigError, match="compile"):
        Predictor([net], plan, device="cpu", compile="yes")
    assert Predictor([net], plan, device="cpu", compile="auto")._tiered is not None
    assert Predictor([net], plan, device="cpu")._tiered is None  # the API's default: off


def test_really_compiled_predictions_match_eager_ones(tiny):
    """torch.compile for real (where this machine can compile: else it falls back, same result)."""
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    x = np.random.default_rng(3).normal(size=(1, 60, 50)).astype(np.float32)
    ref = Predictor([net], plan, tta=False, overlap=0.25, device="cpu").probabilities(x)
    p = Predictor([net], plan, tta=False, overlap=0.25, device="cpu", compile="on")
    a = p.probabilities(x)
    np.testing.assert_allclose(a, ref, atol=1e-4)
    assert p._tiered[0].batch or p._tiered[0]._failed


def test_single_3d_windows_run_onednn_on_a_copy_of_the_network(tiny):
    from medseg.infer.onednn import OneDnnConv3d, onednn_conv3d
    from medseg.infer.predictor import Predictor

    plan, net = tiny(dims=3)
    net.eval()
    fast = onednn_conv3d(net)
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv3d)]
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    assert fast is not net and convs and all(type(m) is OneDnnConv3d for m in convs)
    assert not any(type(m) is OneDnnConv3d for m in net.modules())  # the caller's network is untouched
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, 32, 32, 32)).astype(np.float32))
    with torch.inference_mode():
        np.testing.assert_allclose(fast(x).numpy(), net(x).numpy(), atol=1e-4)
    # with gradients (training) the layer is an ordinary Conv3d
    y = fast(x.clone().requires_grad_())
    y.sum().backward()
    assert convs[0].weight.grad is not None
    p = Predictor([net], plan, tta=False, device="cpu")
    assert all(type(m) is not torch.nn.Conv3d for m in p.nets[0].modules())
    net2 = tiny(dims=2)[1]
    assert onednn_conv3d(net2) is net2  # 2D networks pass through unchanged
