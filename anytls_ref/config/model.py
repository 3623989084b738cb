"""anytls_ref.config.model — the settings a command line, share link or config file gives.

Every field is ``None`` (or empty) when the input does not say it, so that the command line can
put its flags over a file's values and anytls-go's defaults under both ("command-line flags
override the file"). ``unsupported`` names what the input asks for that anytls-ref does not do:
the command line logs it as one warning and goes on; what would weaken security (another
security layer than TLS) is a ``ConfigError`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A user-facing input that cannot be used; the message is one line and names the field."""


@dataclass(frozen=True, slots=True)
class User:
    """One user of a server: a name for the log, and the password (never printed)."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    listen: tuple[str, int] | None = None
    users: tuple[User, ...] = ()
    #: the padding scheme text (checked by the caller, as a --padding-scheme file is)
    padding_scheme: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    unsupported: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientOptions:
    server: tuple[str, int] | None = None
    password: str | None = field(default=None, repr=False)
    #: the TLS server name; an IP address here means no SNI is sent (RFC 6066 §3)
    sni: str | None = None
    insecure: bool | None = None
    ca_file: str | None = None
    #: SHA-256 of the server's leaf certificate (pin.py)
    pin: bytes | None = None
    alpn: tuple[str, ...] | None = None
    #: the node's name (a link's #fragment, a config's tag or name): shown in the log
    name: str | None = None
    #: the local SOCKS5/HTTP listener
    listen: tuple[str, int] | None = None
    #: who may use it: (username, password) pairs (mihomo's ``authentication``, the ``users``
    #: of a sing-box mixed/socks/http inbound; the command line's ``--local-auth``)
    local_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    idle_check: float | None = None
    idle_timeout: float | None = None
    min_idle: int | None = None
    disable_reuse: bool | None = None
    unsupported: tuple[str, ...] = ()


def check_users(users: tuple[User, ...] | list[User]) -> None:
    """Users a server can tell apart: unique names, and non-empty passwords no two share."""
    names: set[str] = set()
    owners: dict[str, str] = {}
    for user in users:
        if not user.name:
            raise ConfigError("a user has no name")
        if user.name in names:
            raise ConfigError(f"user {user.name!r} is given twice")
        names.add(user.name)
        if not user.password:
            raise ConfigError(f"user {user.name!r}: an empty password is refused")
        if user.password in owners:
            raise ConfigError(f"users {owners[user.password]!r} and {user.name!r} have the same "
                              "password: the server could not tell them apart")
        owners[user.password] = user.name
