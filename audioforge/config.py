"""Typed configuration: YAML files and ``key.path=value`` overrides checked against dataclasses.

Every experiment describes its configuration as nested dataclasses.  :func:`load_config`
merges YAML files (later ones win), applies command-line overrides, and converts the result
into those dataclasses, rejecting unknown keys and ill-typed values with a
:class:`~audioforge.errors.ConfigError` that names the dotted key.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from audioforge.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, or raise ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def resolve_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config, first merging the files it names under ``base:`` (relative paths).  A
    nested section may name one file too (``distill: {base: ../distill/reference.yaml}``: a table
    whose cells start from a distill preset); there ``base`` must be a path ending in .yaml."""
    path = Path(path)
    data = read_yaml(path)
    bases = data.pop("base", [])
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = deep_merge(merged, resolve_yaml(path.parent / base))
    return deep_merge(merged, nested_bases(data, path.parent))


def nested_bases(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            base = value.get("base")
            if isinstance(base, str) and base.endswith((".yaml", ".yml")):
                rest = {k: v for k, v in value.items() if k != "base"}
                value = deep_merge(resolve_yaml(folder / base), nested_bases(rest, folder))
            else:
                value = nested_bases(value, folder)
        out[key] = value
    return out


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``; mappings merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def override(key: str, value: Any) -> str:
    """The ``key=value`` override that :func:`apply_override` reads back as exactly ``value``
    (YAML, not JSON: YAML reads JSON's ``1e-06`` as a string)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``a.b.0.c=value`` override in place; the value is parsed as YAML."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    key, raw_value = override.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {override!r} has an empty key")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError:
        value = raw_value
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: i + 1]))
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, key)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {key}: {'.'.join(parts[:-1])} is not a mapping or list")


def _index(node: list, part: str, key: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ConfigError(f"override {key}: {part!r} must be a list index") from None
    if not -len(node) <= idx < len(node):
        raise ConfigError(f"override {key}: index {idx} is out of range (list has {len(node)} items)")
    return idx


def _child(node: Any, part: str, key: str) -> Any:
    """The child ``part`` of a list or mapping; missing mappings are created (unknown keys are
    refused later, when the result is checked against the dataclasses)."""
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if not isinstance(node, dict):
        raise ConfigError(f"override {key}: parent is not a mapping")
    if part not in node or node[part] is None:
        node[part] = {}
    return node[part]


def load_config(cls: type[T], files: list[str | Path] = (), overrides: list[str] = (),
                defaults: dict[str, Any] | None = None) -> T:
    """Merge ``defaults``, YAML ``files`` and ``overrides`` into a checked ``cls`` instance."""
    data: dict[str, Any] = copy.deepcopy(defaults or {})
    for file in files:
        data = deep_merge(data, resolve_yaml(file))
    for override in overrides:
        apply_override(data, override)
    return from_dict(cls, data)


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Convert a plain mapping into dataclass ``cls``, strictly."""
    return _convert(cls, data, path or "<config>")


def to_dict(obj: Any) -> Any:
    """The plain (YAML-serialisable) form of a config dataclass."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are indexed (``a.0``)."""
    items: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            items.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list) and data and any(isinstance(v, (dict, list)) for v in data):
        for i, value in enumerate(data):
            items.update(flatten(value, f"{prefix}{i}."))
    else:
        items[prefix[:-1]] = data
    return items


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            where = "" if path == "<config>" else f"{path}."
            raise ConfigError(f"unknown config key {where}{unknown[0]} (valid keys: {', '.join(sorted(fields))})")
        kwargs = {}
        for name, field in fields.items():
            sub = name if path == "<config>" else f"{path}.{name}"
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], sub)
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing config key {sub}")
        obj = tp(**kwargs)
        check = getattr(obj, "validate", None)
        if check is not None:
            check(path if path != "<config>" else "")
        return obj
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{path} has an invalid value {value!r} (expected {' or '.join(_type_name(a) for a in args)})")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path} must be {_type_name(tp)}, got {value!r}")
        return value
    if origin in (list, tuple, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {type(value).__name__} {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_convert(item_tp, v, f"{path}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_convert(key_tp, k, path): _convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{path} must be a path, got {value!r}")
        return Path(value)
    raise TypeError(f"unsupported config type {tp} at {path}")
