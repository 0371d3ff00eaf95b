from dataclasses import dataclass, field
from typing import Literal

import pytest

from medseg.config import from_dict, load_config, params_from_tokens, save_json, split_kv, split_params, to_dict
from medseg.errors import ConfigError
from medseg.registry import Registry


@dataclass(frozen=True)
class P:
    sigma: float = 1.0
    n: int = 3
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    opt: float | None = None
    name: str = field(default="x", metadata={"help": "a name"})


def test_from_dict_converts_and_rejects_unknown():
    p = from_dict(P, {"sigma": "2.5", "n": "4", "mode": "b", "flag": "yes", "sizes": "3,4", "opt": "none"})
    assert p == P(2.5, 4, "b", True, (3, 4), None)
    with pytest.raises(ConfigError, match="did you mean 'sigma'"):
        from_dict(P, {"sigm": 1})
    with pytest.raises(ConfigError, match="choose one of"):
        from_dict(P, {"mode": "c"})
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(P, {"n": "2.5"})
    with pytest.raises(ConfigError):
        from_dict(P, {"flag": "maybe"})


def test_json_round_trip(tmp_path):
    p = P(sigma=3.0, sizes=(5,))
    save_json(p, tmp_path / "p.json")
    assert from_dict(P, load_config(tmp_path / "p.json")) == p
    assert to_dict(p)["sizes"] == [5]
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")


def test_cli_tokens():
    p, rest = params_from_tokens(P, ["--sigma", "2", "--flag", "--mode=b", "--no-flag"], what="t")
    assert p.sigma == 2 and p.mode == "b" and p.flag is False and rest == []
    p, _ = params_from_tokens(P, ["--flag", "false", "--n", "7"], what="t")
    assert p.flag is False and p.n == 7
    with pytest.raises(ConfigError, match="did you mean 'sigma'"):
        params_from_tokens(P, ["--sigmaa", "2"], what="t")
    with pytest.raises(ConfigError, match="needs a value"):
        params_from_tokens(P, ["--sigma"], what="t")

    @dataclass(frozen=True)
    class Q:
        epochs: int = 1

    p, rest = params_from_tokens(P, ["--epochs", "5", "--n", "1"], what="t", other=(Q,))
    assert rest == ["--epochs", "5"] and p.n == 1


def test_split_kv():
    assert split_kv("gaussian:sigma=1,mode=reflect") == ("gaussian", {"sigma": "1", "mode": "reflect"})
    assert split_kv("clahe") == ("clahe", {})
    with pytest.raises(ConfigError):
        split_kv("gaussian:sigma")


def test_registry_suggests():
    r = Registry("thing")
    r.register("alpha")(1)
    assert r.get("alpha") == 1 and "alpha" in r and r.names() == ["alpha"]
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        r.get("alpah")
    with pytest.raises(ValueError):
        r.register("alpha")(2)


def test_split_params_between_method_and_training(tmp_path):
    @dataclass(frozen=True)
    class P:
        sigma: float = 1.0

    @dataclass(frozen=True)
    class T:
        epochs: int = 10
        lr: float = 0.1

    cfg = tmp_path / "cfg.json"
    save_json({"sigma": 3, "epochs": 5, "lr": 0.5}, cfg)
    p, t = split_params(P, T, ["--epochs", "7"], name="m", config=cfg)  # defaults < file < flags
    assert p == P(3.0) and t == T(7, 0.5)
    p, t = split_params(P, None, ["--sigma", "2"], name="m")
    assert p == P(2.0) and t is None
    with pytest.raises(ConfigError, match="unknown configuration keys for 'm': epochs"):
        split_params(P, None, [], name="m", config={"epochs": 1})
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        split_params(P, T, [], name="m", config={"epoch": 1})
