"""Frozen-dataclass configuration: build from dicts/JSON/CLI strings, reject unknown keys.

Precedence everywhere is defaults < file < CLI flags. `core` converts
dataclasses to and from dicts and JSON/YAML files; `tokens` resolves
command-line tokens (``--name value``, ``--flag``/``--no-flag``) into a dataclass
(`params_from_tokens`), shares one token list and one configuration file between a
method's ``Params`` and its ``TrainParams`` (`split_params`), keeps method options'
values with them (`join_option_values`) and splits step specs
(``"gaussian:sigma=1"``, `split_kv`). The CLI, recipes and pipelines all resolve
configuration here.
"""
from medseg.config.core import (
    field_type,
    fields_of,
    from_dict,
    load_config,
    parse_value,
    save_json,
    strip_optional,
    to_dict,
)
from medseg.config.tokens import join_option_values, params_from_tokens, split_kv, split_params

__all__ = ["from_dict", "to_dict", "load_config", "save_json", "parse_value", "field_type", "fields_of",
           "strip_optional", "params_from_tokens", "split_params", "split_kv", "join_option_values"]
