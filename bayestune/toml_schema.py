"""Validation of TOML tables with errors that name the file, the table, the key and the value.

The campaign files (:mod:`bayestune.campaign`) are read through :class:`Table`; this module
knows nothing of campaigns.
"""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

from .exceptions import BayestuneError

__all__ = ["CampaignFileError", "Table", "load_object"]


class CampaignFileError(BayestuneError):
    """A campaign file is missing, is not valid TOML, or does not follow the schema."""


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a table"}


def describe(value: Any) -> str:
    kind = "a boolean" if isinstance(value, bool) else _TYPE_NAMES.get(type(value),
                                                                       type(value).__name__)
    return f"{value!r} ({kind})"


class Table:
    """A TOML table being validated; ``where`` is how errors name it (``[execution]``)."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        self.where, self.source = where, source
        if not isinstance(data, dict):
            self.fail(f"expected a table, found {describe(data)}")
        self.data: dict[str, Any] = data

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        place = self.where if key is None else f"{self.where} {key}"
        raise CampaignFileError(f"{self.source}: {place}: {message}")

    def check_keys(self, allowed: tuple[str, ...] | list[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(f"unknown key {key!r}; expected one of {', '.join(allowed)}")

    def get(self, key: str, kinds: tuple[type, ...], default: Any = None, *,
            required: bool = False, expected: str | None = None) -> Any:
        if key not in self.data:
            if required:
                self.fail(f"missing required key {key!r}"
                          + (f" ({expected})" if expected else ""))
            return default
        value = self.data[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            want = expected or " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.fail(f"expected {want}, found {describe(value)}", key)
        return value

    def positive_int(self, key: str, default: Any = None, *, required: bool = False,
                     minimum: int = 1) -> Any:
        value = self.get(key, (int,), default, required=required,
                         expected=f"an integer >= {minimum}")
        if value is not None and value < minimum:
            self.fail(f"expected an integer >= {minimum}, found {describe(value)}", key)
        return value


def load_object(spec: str, where: str = "object") -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the attribute."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise CampaignFileError(f"{where}: expected 'module:attribute', found {spec!r}")
    module_name, attr = spec.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CampaignFileError(f"{where}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CampaignFileError(f"{where}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
