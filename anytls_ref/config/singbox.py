"""anytls_ref.config.singbox — a sing-box JSON config: its anytls inbound or outbound.

The fields are those of sing-box's configuration documentation (configuration/inbound/anytls,
configuration/outbound/anytls, configuration/shared/tls, configuration/inbound/mixed):

- server (``anytls-ref server -c``): the first ``anytls`` inbound: ``listen``, ``listen_port``,
  ``users`` ([{"name", "password"}]), ``padding_scheme`` (the scheme's lines, which sing-box
  joins with "\\n"), ``tls`` (``enabled``, ``certificate_path``, ``key_path``);
- client (``anytls-ref client -c``): the first ``anytls`` outbound: ``server``,
  ``server_port``, ``password``, ``idle_session_check_interval`` and ``idle_session_timeout``
  (Go durations), ``min_idle_session``, ``tls`` (``enabled``, ``server_name``, ``insecure``,
  ``alpn``, ``certificate_path`` as a CA file); the local port is the ``listen`` /
  ``listen_port`` of the first ``mixed``, ``socks`` or ``http`` inbound, and its ``users``
  ([{"username", "password"}]) those the local port asks for, as ``--local-auth`` does.

Whatever else the anytls entry holds is named in one warning; the rest of the file (log, dns,
route, other inbounds and outbounds) is the business of a router, not of an anytls client or
server, and is left alone. ``tls.enabled`` false or ``tls.reality`` enabled asks for another
security layer than the TLS anytls-ref speaks: an error. Relative paths are taken from the
config file's folder.
"""

from __future__ import annotations

from . import fields
from .fields import Entry
from .model import ClientOptions, ConfigError, ServerOptions, User

#: inbounds whose listener a client can stand in for: ours speaks SOCKS5 and HTTP on one port
LOCAL_INBOUNDS = ("mixed", "socks", "http")


def _first(data: dict, key: str, types: tuple[str, ...]) -> tuple[Entry | None, int]:
    """The first entry of ``data[key]`` with one of ``types``, and how many there are."""
    items = data.get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"{key}: expected a list")
    found = [(n, item) for n, item in enumerate(items)
             if isinstance(item, dict) and item.get("type") in types]
    if not found:
        return None, 0
    n, item = found[0]
    entry = Entry(item, f"{key}[{n}]")
    entry.ignore("type", "tag")
    return entry, len(found)


def _tls(entry: Entry) -> Entry:
    tls = entry.child("tls")
    if tls is None or not tls.get("enabled", fields.boolean):
        raise ConfigError(f"{entry.where}.tls.enabled is not true: anytls runs inside TLS")
    reality = tls.child("reality")
    if reality is not None and reality.get("enabled", fields.boolean):
        raise ConfigError(f"{entry.where}.tls.reality: REALITY is another security layer; "
                          "anytls-ref speaks anytls over TLS only")
    return tls


def read_server(data: dict, base_dir: str) -> ServerOptions:
    inbound, count = _first(data, "inbounds", ("anytls",))
    if inbound is None:
        raise ConfigError("no inbound of type anytls in this sing-box config")
    users = []
    listed = inbound.raw("users") or []
    if not isinstance(listed, list):
        raise ConfigError(f"{inbound.where}.users: expected a list")
    for n, item in enumerate(listed):
        user = Entry(item, f"{inbound.where}.users[{n}]")
        password = user.get("password", fields.text)
        if not password:
            raise ConfigError(f"{user.where}.password is missing or empty")
        users.append(User(user.get("name", fields.text) or f"user {n + 1}", password))
        if user.unsupported():
            raise ConfigError(f"{user.where}: unknown fields {', '.join(user.unsupported())}")
    lines = inbound.get("padding_scheme", fields.text_list)
    tls = _tls(inbound)
    listen_host = inbound.get("listen", fields.text)
    listen_port = inbound.get("listen_port", fields.port)
    cert_file = fields.path_in(tls.get("certificate_path", fields.text), base_dir)
    key_file = fields.path_in(tls.get("key_path", fields.text), base_dir)
    notes = inbound.unsupported()
    if count > 1:
        notes.append(f"{count - 1} more anytls inbound(s) (the first is used)")
    return ServerOptions(
        listen=(listen_host or "0.0.0.0", listen_port) if listen_port is not None else None,
        users=tuple(users),
        padding_scheme="\n".join(lines).encode() if lines is not None else None,
        cert_file=cert_file,
        key_file=key_file,
        unsupported=tuple(notes),
    )


def _local_user(item, where: str) -> tuple[str, str]:
    """One of a mixed/socks/http inbound's ``users``: {"username", "password"}."""
    user = Entry(item, where)
    return fields.local_user(user.get("username", fields.text) or "",
                             user.get("password", fields.text) or "", where)


def read_client(data: dict, base_dir: str) -> ClientOptions:
    outbound, count = _first(data, "outbounds", ("anytls",))
    if outbound is None:
        raise ConfigError("no outbound of type anytls in this sing-box config")
    tls = _tls(outbound)
    host, port = outbound.get("server", fields.text), outbound.get("server_port", fields.port)
    if host is None or port is None:
        raise ConfigError(f"{outbound.where}: server and server_port are needed")
    alpn = tls.get("alpn", fields.text_list)
    options = dict(
        server=(host, port),
        password=outbound.get("password", fields.text),
        sni=tls.get("server_name", fields.text) or None,
        insecure=tls.get("insecure", fields.boolean),
        ca_file=fields.path_in(tls.get("certificate_path", fields.text), base_dir),
        alpn=tuple(alpn) if alpn else None,
        name=outbound.data.get("tag") or None,
        idle_check=outbound.get("idle_session_check_interval", fields.go_duration),
        idle_timeout=outbound.get("idle_session_timeout", fields.go_duration),
        min_idle=outbound.get("min_idle_session", fields.integer),
    )
    notes = outbound.unsupported()
    if count > 1:
        notes.append(f"{count - 1} more anytls outbound(s) (the first is used)")
    local, _ = _first(data, "inbounds", LOCAL_INBOUNDS)
    if local is not None:
        listen_port = local.get("listen_port", fields.port)
        if listen_port is not None:
            options["listen"] = (local.get("listen", fields.text) or "127.0.0.1", listen_port)
        local.ignore("listen")
        users = local.raw("users") or []
        if not isinstance(users, list):
            raise ConfigError(f"{local.where}.users: expected a list")
        options["local_users"] = tuple(_local_user(item, f"{local.where}.users[{n}]")
                                       for n, item in enumerate(users))
        # what else the local inbound says (sniffing, set_system_proxy...) is named too:
        # anytls-ref's listener would not do it
        notes += local.unsupported()
    return ClientOptions(**options, unsupported=tuple(notes))
