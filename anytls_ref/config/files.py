"""anytls_ref.config.files — a config file's text → sing-box or mihomo settings.

sing-box configs are JSON; mihomo configs are YAML, and JSON is YAML too (the interop harness
writes mihomo's config that way). So the text is read as JSON if it is JSON, else as YAML, and
the keys decide the family: ``inbounds`` / ``outbounds`` are sing-box's, ``listeners`` /
``proxies`` mihomo's.

YAML is read with PyYAML, the long-standing YAML library of the Python world (maintained by the
YAML project, with wheels for every CPython we support; pyproject lists it as a dependency, as
a mihomo config is what many anytls users hold). It is read with PyYAML's ``BaseLoader``, which
keeps every scalar as its text: with YAML 1.1's rules an unquoted ``password: 0123`` would
become the number 83 and ``password: yes`` the boolean true, where mihomo (Go, decoding into
typed fields) keeps the password as written. The converters in fields.py then type each field.
"""

from __future__ import annotations

import json

import yaml

from . import mihomo, singbox
from .model import ClientOptions, ConfigError, ServerOptions

SINGBOX_KEYS = ("inbounds", "outbounds")
MIHOMO_KEYS = ("listeners", "proxies")


def parse_text(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            data = yaml.load(text, Loader=yaml.BaseLoader)
        except yaml.YAMLError as exc:
            if text.lstrip().startswith("{"):
                # meant as JSON (sing-box's format): JSON's own message says more
                raise ConfigError(f"not valid JSON at line {json_error.lineno} column "
                                  f"{json_error.colno}: {json_error.msg}") from None
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"neither JSON nor YAML{where}: "
                              f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("expected a sing-box JSON or mihomo YAML config (a mapping at the top)")
    return data


def family(data: dict) -> str:
    if any(key in data for key in SINGBOX_KEYS):
        return "sing-box"
    if any(key in data for key in MIHOMO_KEYS):
        return "mihomo"
    raise ConfigError("neither a sing-box config (inbounds, outbounds) nor a mihomo config "
                      "(listeners, proxies)")


def read_server_config(text: str, base_dir: str) -> ServerOptions:
    data = parse_text(text)
    reader = singbox.read_server if family(data) == "sing-box" else mihomo.read_server
    return reader(data, base_dir)


def read_client_config(text: str, base_dir: str) -> ClientOptions:
    data = parse_text(text)
    reader = singbox.read_client if family(data) == "sing-box" else mihomo.read_client
    return reader(data, base_dir)
