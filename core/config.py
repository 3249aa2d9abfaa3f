"""Typed, layered configuration: defaults, then a TOML file, then `EDGEBATCH_*` variables.

Every part (agent, collector, framework, API) declares its settings as frozen
dataclasses and builds them here, so that a wrong key or value is reported the
same way everywhere: with the key, the file it came from, and what would be
accepted. Only the standard library is used: the edge agent imports this.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from edgebatch.errors import ConfigError

T = TypeVar("T")

ENV_PREFIX = "EDGEBATCH_"


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, naming the file (and line) when it is missing or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def env_overrides(
    section: str, cls: type, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`EDGEBATCH_{SECTION}_{FIELD}` values for the fields of one section's dataclass."""
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for field in dataclasses.fields(cls):
        name = (
            f"{ENV_PREFIX}{section}_{field.name}".upper()
            if section
            else (f"{ENV_PREFIX}{field.name}".upper())
        )
        if name in environ:
            out[field.name] = environ[name]
    return out


def build(
    cls: type[T],
    data: Mapping[str, Any] | None,
    *,
    source: str,
    section: str = "",
    environ: Mapping[str, str] | None = None,
) -> T:
    """Make a `cls` dataclass from `data`, then environment overrides, checking every key.

    `source` names where `data` came from (a file path, or "defaults"); it is in
    every error. Nested dataclass fields are built from nested tables.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    data = dict(data or {})
    where = f"[{section}] of {source}" if section else source
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(_unknown_key_message(key, where, list(known)))
    values: dict[str, Any] = {}
    for name in known:
        if name not in data:
            continue
        values[name] = _coerce(
            data[name], hints[name], f"{section + '.' if section else ''}{name}", source
        )
    env_section = section.replace(".", "_")
    for name, raw in env_overrides(env_section, cls, environ).items():
        env_name = (
            f"{ENV_PREFIX}{env_section}_{name}".upper()
            if env_section
            else (f"{ENV_PREFIX}{name}".upper())
        )
        values[name] = _coerce_env(raw, hints[name], name, env_name)
    try:
        obj = cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return obj


def _unknown_key_message(key: str, where: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}' in {where} (known keys: {', '.join(sorted(known))}){hint}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"key '{key}' in {source} is invalid")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"key '{key}' in {source} must be a table, got {value!r}")
        return build(tp, value, source=source, section=key, environ={})
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"key '{key}' in {source} must be a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"key '{key}' in {source} must be a table, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if tp is Any:
        return value
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"key '{key}' in {source} must be one of {allowed}, got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if (
        isinstance(tp, type)
        and isinstance(value, tp)
        and not (tp is int and isinstance(value, bool))
    ):
        return value
    raise ConfigError(
        f"key '{key}' in {source} must be {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )


def _coerce_env(raw: str, tp: Any, key: str, env_name: str) -> Any:
    """Environment values are strings: parse them as a TOML value when the type is not str."""
    base = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    if str in base or base[0] is Path:
        return _coerce(raw, tp, key, f"environment variable {env_name}")
    try:
        parsed = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            f"environment variable {env_name}={raw!r} is not a valid {_type_name(base[0])}"
        ) from None
    return _coerce(parsed, tp, key, f"environment variable {env_name}")
