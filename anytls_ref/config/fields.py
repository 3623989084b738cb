"""anytls_ref.config.fields — reading one entry of a JSON or YAML config, field by field.

sing-box and mihomo decode their configs into typed Go structs: a port is an integer, a switch
a boolean, a sing-box interval a Go duration string ("30s", "1m30s"). JSON gives us such types;
mihomo's YAML is read with every scalar as its text (files.py says why), so the converters
here take either form and name the field when a value does not fit. ``Entry`` remembers which
fields were read, so that the ones anytls-ref has no use for can be named in one warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, TypeVar

from .model import ConfigError

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
#: Go's time.ParseDuration units, in seconds
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
    return str(value)


def integer(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(f"{where}: expected a whole number, got {value!r}")


def port(value: Any, where: str) -> int:
    number = integer(value, where)
    if not 0 <= number <= 65535:
        raise ConfigError(f"{where}: port {number} is not in 0..65535")
    return number


def boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def go_duration(value: Any, where: str) -> float:
    """A Go duration string ("30s", "1m30s", "500ms") → seconds; sing-box's interval fields."""
    if isinstance(value, str):
        spec = value.strip()
        if spec == "0":
            return 0.0
        parts = _DURATION_PART.findall(spec)
        if parts and "".join(number + unit for number, unit in parts) == spec:
            return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    raise ConfigError(f"{where}: expected a duration such as \"30s\" or \"1m30s\", got {value!r}")


def seconds(value: Any, where: str) -> float:
    """A whole number of seconds: mihomo's interval fields."""
    return float(integer(value, where))


def path_in(value: str | None, base_dir: str) -> str | None:
    """A file named in a config: a relative path is taken from the config file's folder."""
    if value is None or PurePath(value).is_absolute():
        return value
    return str(PurePath(base_dir) / value)


def text_list(value: Any, where: str) -> list[str]:
    """A list of strings; a single string counts as a list of one."""
    if isinstance(value, list):
        return [text(item, f"{where}[{n}]") for n, item in enumerate(value)]
    return [text(value, where)]


def local_user(name: str, password: str, where: str) -> tuple[str, str]:
    """A user of the local SOCKS5/HTTP port: both parts 1..255 bytes, as RFC 1929 sends them
    ("ULEN ... 1 to 255", "PLEN ... 1 to 255")."""
    for part, value in (("username", name), ("password", password)):
        if not 1 <= len(value.encode("utf-8")) <= 255:
            raise ConfigError(f"{where}: the {part} must be 1 to 255 bytes (RFC 1929)")
    return name, password


def user_pass(value: Any, where: str) -> tuple[str, str]:
    """``USER:PASS`` (mihomo's ``authentication`` entries, ``--local-auth``)."""
    name, colon, password = text(value, where).partition(":")
    if not colon:
        raise ConfigError(f"{where}: expected USER:PASS (a name, a colon, then the password)")
    return local_user(name, password, where)


class Entry:
    """One mapping of a config (an inbound, a proxy, its ``tls``), read field by field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where
        self._read: set[str] = set()
        self._children: list[Entry] = []

    def get(self, key: str, convert: Callable[[Any, str], T]) -> T | None:
        """The field converted, or None when it is absent (or null)."""
        self._read.add(key)
        value = self.data.get(key)
        return None if value is None else convert(value, f"{self.where}.{key}")

    def raw(self, key: str) -> Any:
        """The field as it is (a list or mapping the caller walks itself)."""
        self._read.add(key)
        return self.data.get(key)

    def child(self, key: str) -> Entry | None:
        """A nested mapping, read field by field too (its leftovers are reported with ours)."""
        value = self.raw(key)
        if value is None:
            return None
        entry = Entry(value, f"{self.where}.{key}")
        self._children.append(entry)
        return entry

    def ignore(self, *keys: str) -> None:
        """Fields that change nothing for anytls-ref (a tag, the type already matched)."""
        self._read.update(keys)

    def unsupported(self) -> list[str]:
        """Every field present but never read, here and in the nested mappings read."""
        names = [f"{self.where}.{key}" for key in self.data if key not in self._read]
        for child in self._children:
            names += child.unsupported()
        return names
