"""`--set key=value`: change one field of a preset's Settings from the command line.

Keys are dotted paths into the Settings dataclass (`epochs`, `model.beta`,
`model.backbone.base_width`, `gmm.components`); values are converted to the field's declared type,
so a typo or a wrong type is a one-line error before anything runs. Plain dataclasses.replace, no
config framework: the frozen dataclasses already are the schema.
"""
import dataclasses
import typing
from typing import Any

from svae.errors import HarnessError, did_you_mean

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_overrides(pairs: list) -> dict:
    """["a.b=1", ...] -> {"a.b": "1", ...}, keeping the last value of a repeated key."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--set {pair!r} is not KEY=VALUE; for example --set epochs=20 model.beta=4")
        out[key.strip()] = value.strip()
    return out


def field_types(cls, prefix: str = "") -> dict:
    """Every settable leaf of a dataclass type: dotted key -> its type."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out.update(field_types(kind, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = kind
    return out


def _type_name(kind) -> str:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if args:  # Optional[int]
        return f"{_type_name(args[0])} or none"
    return getattr(kind, "__name__", str(kind))


def convert(key: str, text: str, kind) -> Any:
    """text as a value of type kind (int, float, bool, str, or Optional of one of them)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if args:
        return None if text.lower() in ("none", "null") else convert(key, text, args[0])
    try:
        if kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
    except ValueError:
        raise HarnessError(f"--set {key}={text}: {key} takes type {_type_name(kind)}") from None
    raise HarnessError(f"--set {key}: fields of type {_type_name(kind)} cannot be set from the command line")


def typed_overrides(raw: dict, cls) -> dict:
    """{"model.beta": "4"} -> {"model.beta": 4.0}, checked against the dataclass's fields and types."""
    types = field_types(cls)
    out = {}
    for key, text in raw.items():
        if key not in types:
            valid = ", ".join(f"{k} ({_type_name(t)})" for k, t in types.items())
            raise HarnessError(f"--set {key}: no such setting{did_you_mean(key, types)}; valid keys: {valid}")
        out[key] = convert(key, text, types[key])
    return out


def apply_overrides(obj, overrides: dict):
    """A copy of the (frozen, nested) dataclass obj with each dotted key set to its value."""
    for key, value in overrides.items():
        obj = _replace_path(obj, key.split("."), value)
    return obj


def _replace_path(obj, path: list, value):
    head, rest = path[0], path[1:]
    return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), rest, value) if rest else value})
