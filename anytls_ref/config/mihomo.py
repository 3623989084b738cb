"""anytls_ref.config.mihomo — a mihomo YAML config: the anytls entry of its listeners or proxies.

The fields are those of mihomo's configuration documentation (the anytls proxy and listener
pages, and the general settings), checked against mihomo v1.19.30's option structs
(adapter/outbound/anytls.go ``AnyTLSOption``, listener/inbound/anytls.go ``AnyTLSOption``):

- server (``anytls-ref server -c``): the first ``anytls`` entry of ``listeners``: ``listen``,
  ``port``, ``users`` (a map of name to password), ``padding-scheme`` (the scheme's text),
  ``certificate``, ``private-key``;
- client (``anytls-ref client -c``): the first ``anytls`` entry of ``proxies``: ``server``,
  ``port``, ``password``, ``sni``, ``skip-cert-verify``, ``fingerprint`` (the server
  certificate's SHA-256, a pin: pin.py), ``alpn``, ``udp``, ``idle-session-check-interval``,
  ``idle-session-timeout``, ``min-idle-session`` (whole seconds / a count), ``disable-reuse``;
  the local port is the top-level ``mixed-port``, else ``socks-port``, else ``port`` (our
  listener speaks SOCKS5 and HTTP on one port), on 127.0.0.1 unless ``allow-lan`` is true
  (then ``bind-address``, ``*`` meaning every address), as mihomo binds them; its users are
  the top-level ``authentication`` (``"USER:PASS"`` each), as ``--local-auth`` gives them.

``udp`` changes nothing here (anytls-ref's client always carries UDP ASSOCIATE). Whatever else
the anytls entry holds is named in one warning; the rest of the file (rules, dns, proxy groups,
other proxies) is a router's business and is left alone. ShadowTLS, RestLS or JLS options ask
for another security layer than TLS: an error. Relative paths are taken from the config
file's folder (mihomo takes them from its home directory, ``-d``, which holds the config).
"""

from __future__ import annotations

from . import fields
from .fields import Entry
from .model import ClientOptions, ConfigError, ServerOptions, User
from .pin import parse_pin

#: options of other security layers; present and not empty, they are an error
OTHER_LAYERS = {"proxies": ("shadow-tls-opts", "restls-opts", "jls-opts"),
                "listeners": ("shadow-tls", "res-tls", "jls-config")}


def _first(data: dict, key: str) -> tuple[Entry | None, int]:
    """The first ``anytls`` entry of ``data[key]``, and how many there are."""
    items = data.get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"{key}: expected a list")
    found = [(n, item) for n, item in enumerate(items)
             if isinstance(item, dict) and item.get("type") == "anytls"]
    if not found:
        return None, 0
    n, item = found[0]
    entry = Entry(item, f"{key}[{n}]")
    entry.ignore("type")
    for option in OTHER_LAYERS[key]:
        if entry.raw(option):
            raise ConfigError(f"{entry.where}.{option} asks for another security layer; "
                              "anytls-ref speaks anytls over TLS only")
    return entry, len(found)


def _pin(value, where: str) -> bytes:
    return parse_pin(fields.text(value, where), what=where)


def read_server(data: dict, base_dir: str) -> ServerOptions:
    listener, count = _first(data, "listeners")
    if listener is None:
        raise ConfigError("no anytls entry in the listeners of this mihomo config")
    listener.ignore("name")
    users_map = listener.raw("users") or {}
    if not isinstance(users_map, dict):
        raise ConfigError(f"{listener.where}.users: expected a map of name to password")
    users = []
    for name, password in users_map.items():
        password = fields.text(password, f"{listener.where}.users.{name}")
        if not password:
            raise ConfigError(f"{listener.where}.users.{name}: empty password")
        users.append(User(str(name), password))
    scheme = listener.get("padding-scheme", fields.text)
    host, port = listener.get("listen", fields.text), listener.get("port", fields.port)
    cert_file = fields.path_in(listener.get("certificate", fields.text), base_dir)
    key_file = fields.path_in(listener.get("private-key", fields.text), base_dir)
    notes = listener.unsupported()
    if count > 1:
        notes.append(f"{count - 1} more anytls listener(s) (the first is used)")
    return ServerOptions(
        listen=(host or "0.0.0.0", port) if port is not None else None,
        users=tuple(users),
        padding_scheme=scheme.encode() if scheme is not None else None,
        cert_file=cert_file,
        key_file=key_file,
        unsupported=tuple(notes),
    )


def read_client(data: dict, base_dir: str) -> ClientOptions:
    proxy, count = _first(data, "proxies")
    if proxy is None:
        raise ConfigError("no anytls entry in the proxies of this mihomo config")
    host, port = proxy.get("server", fields.text), proxy.get("port", fields.port)
    if host is None or port is None:
        raise ConfigError(f"{proxy.where}: server and port are needed")
    proxy.ignore("udp")  # our client carries UDP whatever it says
    alpn = proxy.get("alpn", fields.text_list)
    options = dict(
        server=(host, port),
        password=proxy.get("password", fields.text),
        name=proxy.get("name", fields.text),
        sni=proxy.get("sni", fields.text) or None,
        insecure=proxy.get("skip-cert-verify", fields.boolean),
        pin=proxy.get("fingerprint", _pin),
        alpn=tuple(alpn) if alpn else None,
        idle_check=proxy.get("idle-session-check-interval", fields.seconds),
        idle_timeout=proxy.get("idle-session-timeout", fields.seconds),
        min_idle=proxy.get("min-idle-session", fields.integer),
        disable_reuse=proxy.get("disable-reuse", fields.boolean),
    )
    notes = proxy.unsupported()
    if count > 1:
        notes.append(f"{count - 1} more anytls proxies (the first is used)")
    general = Entry(data, "top level")
    for key in ("mixed-port", "socks-port", "port"):
        local_port = general.get(key, fields.port)
        if local_port:
            allow_lan = general.get("allow-lan", fields.boolean)
            bind = (general.get("bind-address", fields.text) or "*") if allow_lan else "127.0.0.1"
            options["listen"] = ("0.0.0.0" if bind == "*" else bind, local_port)
            break
    options["local_users"] = tuple(
        fields.user_pass(item, f"top level.authentication[{n}]")
        for n, item in enumerate(general.get("authentication", fields.text_list) or []))
    return ClientOptions(**options, unsupported=tuple(notes))
