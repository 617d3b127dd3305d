"""Experiment configs: a dataclass of defaults per experiment, named presets, and strict validation.

A config is resolved from, in order: the dataclass defaults, a preset's overrides, a YAML/JSON file, and
``key=value`` overrides from the command line. Every key is checked against the dataclass's fields (a typo
fails naming the key and the valid ones) and every value against the field's ``metadata``:

* ``choices``: the value (or each item of a list value) must be one of these;
* ``min``, ``max``: the value (or each item) must be at least / at most this.

Every number must be finite: NaN and infinities (``nan``, ``inf``, YAML ``.nan``, ``1e400``, which overflows
to ``inf``) are refused whatever the field's bounds, so no non-finite value ever reaches a run folder; and a
float option's magnitude is at most :data:`FLOAT_LIMIT` (1e30): training runs in float32 (at most 3.4e38),
where a larger learning rate or penalty overflows the optimiser's very first step.

:class:`ExperimentConfig` holds the keys every table has (seed, alpha_init, backend, threads); a table's
config subclasses it, or :class:`.grid.GridConfig` for the conv x FC grids. :func:`hashed_config` is the
part of a config that identifies its results, and :func:`run_hash` its hash, which every record carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import typing
from typing import Any, ClassVar, Dict, Mapping, Optional

__all__ = ["ConfigError", "DataError", "read_plain_bytes", "check_usable_share", "check_folds_fit",
           "resolve_config", "config_to_dict", "config_hash", "hashed_config", "run_hash", "saved_config_values",
           "load_config_file", "parse_overrides", "option", "ExperimentConfig", "BACKEND_CHOICES", "HASH_EXCLUDE"]


class ConfigError(ValueError):
    """A bad experiment setting: the message names the key, the value given and what is expected."""


class DataError(ConfigError):
    """A missing, truncated or corrupt data file: the message names the file, the problem and what was expected.

    A :class:`ConfigError` (so a ``ValueError``): the CLI prints it as one line, exit code 2.
    """


FLOAT_LIMIT = 1e30  # the largest magnitude of a float option (see the module notes)
# C0 control characters but tab and line/page breaks: text holds (almost) none (a few stray ones: at most
# 16), random or binary bytes about 11%
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"
TEXT_CONTROL_LIMIT = 0.01


def read_plain_bytes(path: str, what: str) -> bytes:
    """The bytes of an existing plain-text data file; a gzip/zip archive, NUL bytes, or more than 1% (and more
    than 16) control characters (binary or random data: text has almost none) are a :class:`DataError` naming
    the file and ``what`` was expected."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b" or raw[:4] == b"PK\x03\x04":
        raise DataError(f"data file {path!r} is compressed (gzip/zip); expected {what}")
    if b"\x00" in raw:
        raise DataError(f"data file {path!r} holds NUL bytes (binary data?); expected {what}")
    controls = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
    if controls > max(16, TEXT_CONTROL_LIMIT * len(raw)):
        first = min(i for i in (raw.find(bytes([b])) for b in _CONTROL_BYTES) if i >= 0)
        line = raw.count(b"\n", 0, first) + 1
        raise DataError(f"data file {path!r} is not text: {controls} of its {len(raw)} bytes are control "
                        f"characters (the first on line {line}); expected {what}")
    return raw


def check_usable_share(path: str, unusable: int, total: int, what: str, limit: float,
                       first: str = "") -> None:
    """A data file in which more than ``limit`` of the ``total`` entries are unusable (blank, no word,
    malformed) is broken rather than noisy: a :class:`DataError` naming it; below the limit the caller
    counts and reports them."""
    if total and unusable > limit * total:
        raise DataError(f"data file {path!r}: {unusable} of its {total} entries are unusable ({what})"
                        + (f", the first at {first}" if first else "")
                        + f"; more than {limit:.0%} means a broken file")


def check_folds_fit(counts: Mapping[str, int], folds: int, unit: str, source: Any = "") -> None:
    """Stratified ``folds``-fold CV needs ``folds`` examples of every class: otherwise a :class:`DataError`
    that names the short class and where its data came from (``source``: one description, or one per class
    name), as a nearly empty data file is the likely cause, not the config."""
    short = {name: n for name, n in counts.items() if n < folds}
    if not short:
        return
    name, n = min(short.items(), key=lambda kv: kv[1])
    where = source.get(name, "") if isinstance(source, Mapping) else source
    raise DataError(f"class {name!r} has only {n} {unit}" + (f" in {where}" if where else "")
                    + f", but {folds}-fold cross-validation needs at least {folds} of every class: the data "
                    "are (nearly) empty or lost in reading; check the file, or lower --set folds")


def option(default, *, choices=None, min=None, max=None, help: str = ""):
    """A config field with validation metadata (``choices``, ``min``, ``max``) and a one-line ``help``."""
    meta = {"choices": tuple(choices) if choices is not None else None, "min": min, "max": max, "help": help}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp) -> Any:
    """Check ``value`` against the annotated type, converting strings from the command line."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]  # one value where a list is expected: a list of one
        return [_coerce(key, v, item_tp) for v in value]
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
        try:
            if isinstance(value, str):
                return int(value)
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, int):
                return value
        except ValueError:
            pass
        raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"config key {key!r}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            spelled = isinstance(value, float) or any(w in str(value).lower() for w in ("nan", "inf"))
            raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}"
                              + ("" if spelled else f" (too large for a float: it reads as {number})"))
        if abs(number) > FLOAT_LIMIT:
            raise ConfigError(f"config key {key!r}: expected a number between -{FLOAT_LIMIT:g} and "
                              f"{FLOAT_LIMIT:g} (training runs in float32), got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    return value


def _check(key: str, value: Any, meta: Mapping) -> None:
    items = value if isinstance(value, list) else [value]
    choices, lo, hi = meta.get("choices"), meta.get("min"), meta.get("max")
    if isinstance(value, list) and not value:
        raise ConfigError(f"config key {key!r}: expected at least one item, got an empty list")
    for v in items:
        if choices is not None and v not in choices:
            raise ConfigError(f"config key {key!r}: unknown value {v!r}; valid choices: {', '.join(map(str, choices))}")
        if lo is not None and v < lo:
            raise ConfigError(f"config key {key!r}: expected a value >= {lo}, got {v!r}")
        if hi is not None and v > hi:
            raise ConfigError(f"config key {key!r}: expected a value <= {hi}, got {v!r}")


def resolve_config(cls, *layers: Optional[Mapping[str, Any]]):
    """Build a validated ``cls`` instance from the defaults and ``layers`` of overrides (later ones win)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: Dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in fields:
                raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(fields))}")
            values[key] = _coerce(key, value, hints[key])
    cfg = cls(**values)
    for name, f in fields.items():
        _check(name, getattr(cfg, name), f.metadata)
    post = getattr(cfg, "validate", None)
    if callable(post):
        post()
    return cfg


def config_to_dict(cfg) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(cfg_dict: Mapping[str, Any]) -> str:
    """A short, stable hash of a resolved config (key order does not matter)."""
    text = json.dumps(cfg_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


HASH_EXCLUDE = ("data_dir",)  # where the data lives does not change the results


def hashed_config(cfg) -> Dict:
    """The part of a config that identifies its results: keys at their default value are left out, so a key
    added later (whose default keeps the old behaviour) does not orphan existing run folders; so are the
    values a config class lists in ``FORMER_DEFAULTS`` (a key's default in earlier versions, which gives the
    same results as today's default), so the run folders made under the old default keep resuming.

    A key in ``CHANGED_DEFAULTS`` (its default changed to one that gives other results) is left out at its
    former default instead of today's: the records written under the former default keep their hash, and a
    run at today's default gets a hash of its own, so it never takes up their records."""
    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        for f in dataclasses.fields(cfg)
    }
    defaults.update(getattr(cfg, "CHANGED_DEFAULTS", {}))
    former = getattr(cfg, "FORMER_DEFAULTS", {})
    d = config_to_dict(cfg)
    return {k: v for k, v in d.items()
            if k not in HASH_EXCLUDE and v != defaults.get(k, object()) and (k not in former or v != former[k])}


def saved_config_values(config_class, saved: Mapping[str, Any]) -> Dict[str, Any]:
    """The values of a config as a run folder's config.json holds it, read with today's keys: a key of
    ``config_class.CHANGED_DEFAULTS`` that the file lacks was written before its default changed, so it takes
    its former default (a key missing for any other reason takes today's default, which gives the same
    results)."""
    return {**getattr(config_class, "CHANGED_DEFAULTS", {}), **saved}


def run_hash(cfg) -> str:
    """The hash that identifies ``cfg``'s results: in config.json and in every record of its run folder."""
    return config_hash(hashed_config(cfg))


BACKEND_CHOICES = ("env", "auto", "native", "compile", "eager")


@dataclasses.dataclass
class ExperimentConfig:
    """The keys every table has. A table's config is a dataclass that subclasses this one (or
    :class:`.grid.GridConfig`) and adds its own keys with :func:`option`.

    ``backend="env"`` leaves the worker's backend to ``$ACTADAPT_BACKEND``, which when unset means ``auto``.
    """

    #: values that earlier versions had as a key's default and that give today's default's results; see
    #: :func:`hashed_config`. Tables 1, 3 and 4 defaulted to ``backend="auto"``, which is what ``env`` is
    #: when ``$ACTADAPT_BACKEND`` is unset.
    FORMER_DEFAULTS: ClassVar[Dict[str, Any]] = {}
    #: keys whose default changed to one that gives other results, with their former default; see
    #: :func:`hashed_config` and :func:`saved_config_values`.
    CHANGED_DEFAULTS: ClassVar[Dict[str, Any]] = {}

    seed: int = option(0, help="base seed; every data, split, initialisation and minibatch-order seed derives from it")
    alpha_init: float = option(1.0, min=1e-6, help="initial alpha of the adaptive activations (alpha = exp(rho))")
    backend: str = option("env", choices=BACKEND_CHOICES,
                          help="actadapt backend in the workers; env: $ACTADAPT_BACKEND, else auto (the fused C++ "
                               "kernel on CPU for AGumb/AReLU/Swish, 1.7x faster than eager here; compile costs "
                               "10-30 s per kernel variant per worker)")
    threads: int = option(1, min=1, help="torch threads per worker process")

    def validate(self) -> None:
        """Checks across keys, after each key's own (:func:`resolve_config`); a subclass or a mixin of keys
        (``TeacherKeys``, ``KimCNNKeys``, ...) that adds some calls ``super().validate()`` first."""


def load_config_file(path: str) -> Dict[str, Any]:
    """Read overrides from a ``.yaml``/``.yml`` or ``.json`` file (a flat mapping of config keys)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:  # pragma: no cover
            raise ConfigError("reading a YAML config needs pyyaml: pip install 'actadapt[experiments]'") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path!r} is not valid YAML: {err}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path!r} is not valid JSON: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def parse_overrides(items) -> Dict[str, str]:
    """``["key=value", ...]`` from ``--set`` into a dict (values stay strings; the config converts them)."""
    out: Dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
