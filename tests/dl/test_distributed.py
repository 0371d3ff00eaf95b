"""Distributed data-parallel training (torchrun / ``medseg train --nproc``) on 2 CPU processes with gloo.

- the first step's gradients of 2 ranks, each on its part of the global batch, equal one
  process's on the whole batch (masked Dice+CE, an uneven 3+2 split);
- a 2-process run through the CLI goes to the end and writes one checkpoint set and a model
  that predicts;
- a rank that dies stops the other with one line (no hang), and the run resumed from the
  last checkpoint ends bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.train.distributed import all_gather_grad, rank_seed, split_batch, world_size
from medseg.train.losses import make_loss

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch without gloo")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(rank: int, world: int, port: int) -> dict[str, str]:
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_ranks(script: Path, world: int, args: list[str], timeout: float = 240) -> list[subprocess.CompletedProcess]:
    for _ in range(3):  # the free port can be taken by another program between choosing and binding it
        done = _run_ranks_once(script, world, args, timeout)
        if not any("address already in use" in r.stderr.lower() for r in done):
            return done
    return done


def _run_ranks_once(script: Path, world: int, args: list[str], timeout: float) -> list[subprocess.CompletedProcess]:
    port = _port()
    procs = [subprocess.Popen([sys.executable, str(script), *args], env=_env(r, world, port), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(world)]
    done = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank hung") from None
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _batch(seed: int = 0, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 32, 32, generator=g)
    y = (torch.rand(n, 32, 32, generator=g) > 0.7).long()
    m = (torch.rand(n, 32, 32, generator=g) > 0.2).float()
    return x, y, m


_GRAD_WORKER = """
import sys, torch
from medseg.nets import create_net
from medseg.train.distributed import process_group, rank, split_batch, world_size, wrap_ddp
from medseg.train.losses import make_loss
sys.path.insert(0, sys.argv[2])
from test_distributed import _batch

with process_group("cpu") as (r, w):
    torch.manual_seed(0)
    net = create_net("unet", spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32))
    model = wrap_ddp(net, torch.device("cpu"))
    x, y, m = _batch()
    sizes = split_batch(x.shape[0], w)
    a = sum(sizes[:r]); b = a + sizes[r]
    loss = make_loss("dice_ce", 2)(model(x[a:b]), y[a:b], m[a:b])
    loss.backward()
    if r == 0:
        torch.save({k: p.grad for k, p in net.named_parameters()}, sys.argv[1])
"""


def test_rank_seeds_and_batch_split():
    assert rank_seed(3, rank=0, world=1) == 3
    seeds = {rank_seed(3, rank=r, world=4) for r in range(4)}
    assert len(seeds) == 4 and 3 not in seeds
    assert split_batch(4, 2) == [2, 2] and split_batch(5, 2) == [3, 2] and split_batch(1, 2) == [1, 1]
    # one process: the collectives are the identity
    t = torch.ones(3, requires_grad=True)
    assert world_size() == 1 and all_gather_grad(t).shape == (1, 3)


def test_two_ranks_first_step_gradients_equal_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_GRAD_WORKER)
    out = tmp_path / "grads.pt"
    res = _run_ranks(script, 2, [str(out), str(Path(__file__).parent)])
    assert all(r.returncode == 0 for r in res), res[0].stderr[-3000:] + res[1].stderr[-3000:]
    ddp = torch.load(out)

    from medseg.nets import create_net

    torch.manual_seed(0)
    net = create_net("unet", spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32))
    x, y, m = _batch()
    make_loss("dice_ce", 2)(net(x), y, m).backward()
    worst = max(float((p.grad - ddp[k]).abs().max()) for k, p in net.named_parameters())
    scale = max(float(p.grad.abs().max()) for p in net.parameters())
    assert worst < 1e-5 * max(1.0, scale), (worst, scale, torch.get_num_threads())


def _dataset(root: Path) -> Path:
    from medseg.testing import make_dataset

    return make_dataset(root / "data", n=6, shape=(48, 48), seed=0)


_TRAIN = ["--method", "unet", "--folds", "2", "--fold", "0", "--epochs", "3", "--iters-per-epoch", "4",
          "--patch-size", "32,32", "--batch-size", "4", "--channels", "8,16,32", "--workers", "0",
          "--compile", "off", "--no-progress"]

_DYING_WORKER = """
import os, sys
from medseg.errors import MedsegError
from medseg.io import load_dataset
from medseg.methods.dl import train_unet
from medseg.train.config import TrainConfig

def die(step):
    if step == 6 and os.environ["RANK"] == "1":
        os._exit(9)  # a rank killed mid-epoch, after the first epoch's checkpoint

cfg = TrainConfig(folds=2, fold="0", epochs=3, iters_per_epoch=4, patch_size=(32, 32), batch_size=4,
                  channels=(8, 16, 32), workers=0, compile="off", progress=False)
try:
    train_unet(load_dataset(sys.argv[1]), sys.argv[2], cfg, step_callback=die)
except MedsegError as e:
    print(f"medseg: error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def _medseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "medseg", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=300)


def _weights(model: Path) -> dict[str, torch.Tensor]:
    return torch.load(model / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]


def test_two_process_run_kill_and_resume_bit_identical(tmp_path):
    data = _dataset(tmp_path)
    # uninterrupted, through the --nproc shortcut
    r = _medseg("train", str(data), "--out", "full", "--nproc", "2", *_TRAIN, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    full = tmp_path / "full"
    info = json.loads((full / "model.json").read_text())
    assert info["distributed"] == {"processes": 2, "mode": "data", "backend": "gloo", "global_batch": 4,
                                   "batch_per_process": [2, 2]}
    assert sorted(p.name for p in full.iterdir()) == ["fingerprint.json", "fold_0", "model.json", "plan.json",
                                                      "splits.json"]
    assert {"checkpoint_best.pt", "checkpoint_last.pt", "train_state.pt", "log.json"} <= {
        p.name for p in (full / "fold_0").iterdir()}
    assert r.stdout.count("model written to") == 1  # rank 0 speaks, once
    log = json.loads((full / "fold_0" / "log.json").read_text())
    assert log["steps"] == 12 and log["processes"] == 2
    # the model predicts like any other
    img = next((data / "images").iterdir())
    p = _medseg("predict", "full", str(img), "pred" + "".join(img.suffixes), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]

    # rank 1 dies at step 6: rank 0 stops with one line instead of waiting for it
    script = tmp_path / "dying.py"
    script.write_text(_DYING_WORKER)
    res = _run_ranks(script, 2, [str(data), str(tmp_path / "cut")])
    assert res[1].returncode == 9
    assert res[0].returncode == 2, res[0].stderr[-3000:]
    err = [ln for ln in res[0].stderr.splitlines() if ln.startswith("medseg: error")]
    assert len(err) == 1 and "rank" in err[0] and "Traceback" not in res[0].stderr, res[0].stderr[-2000:]
    state = torch.load(tmp_path / "cut" / "fold_0" / "train_state.pt", weights_only=True)
    assert state["step"] == 4 and state["world_size"] == 2

    # resumed with the shortcut: the weights end bit-identical to the uninterrupted run
    r = _medseg("train", str(data), "--out", "cut", "--nproc", "2", "--resume", *_TRAIN, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _weights(full), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "cut" / "fold_0" / "log.json").read_text())["steps"] == 12


def test_nproc_refusals(tmp_path):
    data = _dataset(tmp_path)
    r = _medseg("train", str(data), "--method", "random-forest", "--out", "rf", "--nproc", "2", cwd=tmp_path)
    assert r.returncode == 2 and "deep-learning" in r.stderr and "Traceback" not in r.stderr
    r = _medseg("train", str(data), "--out", "m", "--nproc", "0", *_TRAIN, cwd=tmp_path)
    assert r.returncode == 2 and "--nproc must be at least 1" in r.stderr
    r = _medseg("train", str(data), "--out", "m", "--distribute", "nodes", *_TRAIN, cwd=tmp_path)
    assert r.returncode == 2 and "--distribute" in r.stderr
    assert not (tmp_path / "m").exists() and not (tmp_path / "rf").exists()


def test_user_error_in_two_processes_is_one_line(tmp_path):
    data = _dataset(tmp_path)
    args = _TRAIN[:]
    del args[args.index("--epochs"):args.index("--epochs") + 2]
    r = _medseg("train", str(data), "--out", "m", "--nproc", "2", "--time-budget", "-1", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["medseg: error: --time-budget must be positive minutes, got -1.0"], r.stderr[-2000:]
    assert not (tmp_path / "m").exists()


def test_distribute_folds_spreads_folds_over_ranks(tmp_path):
    data = _dataset(tmp_path)
    args = _TRAIN[:]
    args[args.index("--fold") + 1] = "all"
    args[args.index("--epochs") + 1] = "1"
    r = _medseg("train", str(data), "--out", "m", "--nproc", "2", "--distribute", "folds", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["distributed"]["mode"] == "folds" and sorted(info["fold_results"]) == ["0", "1"]
    for k in (0, 1):
        assert (tmp_path / "m" / f"fold_{k}" / "checkpoint_last.pt").is_file()
        assert json.loads((tmp_path / "m" / f"fold_{k}" / "log.json").read_text())["steps"] == 4
    assert np.isfinite(info["fold_results"]["1"]["best_val_dice"])
