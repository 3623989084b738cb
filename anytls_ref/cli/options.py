"""The server's and the client's settings from what the user gave: a flag wins over the share
link, the link over the ``-c`` file, the file over ``ANYTLS_PASSWORD`` and the defaults."""

from __future__ import annotations

import os

from ..config.argv import UsageError
from ..config.files import read_client_config, read_server_config
from ..config.links import parse_link
from ..config.model import ClientOptions, ConfigError, ServerOptions, User, check_users
from ..config.pin import parse_pin
from ..padding import DEFAULT_SCHEME
from ..params import DEFAULT_IDLE_CHECK_INTERVAL, DEFAULT_IDLE_TIMEOUT, ClientParams
from ..version import PROTOCOL_VERSION
from .inputs import (PASSWORD_ENV, ca_file, checked_scheme, first_given, given_password,
                     host_port, load_config, read_scheme, server_identity_files,
                     warn_unsupported)

#: anytls-go's defaults for -l (cmd/server/main.go, cmd/client/main.go)
SERVER_LISTEN = "0.0.0.0:8443"


CLIENT_LISTEN = "127.0.0.1:1080"


def server_config(args):
    """The ServerConfig the command line (and its -c file) asks for."""
    from ..net.server import DEFAULT_USER, ServerConfig

    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key go together")
    if not 1 <= args.min_version <= PROTOCOL_VERSION:
        raise UsageError(f"--min-version {args.min_version}: this server speaks protocol "
                         f"versions 1 to {PROTOCOL_VERSION}")
    options = load_config(args.config, read_server_config, ServerOptions())
    warn_unsupported(f"config {args.config}", options.unsupported)
    password = given_password(args)
    users = [User(DEFAULT_USER, password)] if password is not None else []
    for spec in args.user:
        name, colon, user_password = spec.partition(":")
        if not colon or not name:
            raise UsageError("--user takes NAME:PASSWORD (a name, a colon, then the password)")
        users.append(User(name, user_password))
    if not users:
        users = list(options.users)
    if not users and os.environ.get(PASSWORD_ENV):
        users = [User(DEFAULT_USER, os.environ[PASSWORD_ENV])]
    if not users:
        raise UsageError(f"a password is needed: -p/--password PASSWORD, --password-file FILE, "
                         f"--user NAME:PASSWORD, -c FILE or {PASSWORD_ENV}")
    try:
        check_users(users)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    cert, key = (args.cert, args.key) if args.cert else (options.cert_file, options.key_file)
    if bool(cert) != bool(key):
        raise UsageError(f"config {args.config}: a certificate needs its key and a key its "
                         "certificate")
    if args.padding_scheme is not None:
        scheme = read_scheme(args.padding_scheme)
    elif options.padding_scheme is not None:
        scheme = checked_scheme(options.padding_scheme, f"config {args.config}: padding scheme")
    else:
        scheme = DEFAULT_SCHEME
    cert, key = server_identity_files(cert, key)
    return ServerConfig(
        listen=host_port(args.listen, what="listen address") if args.listen
        else options.listen or host_port(SERVER_LISTEN),
        users=tuple(users),
        cert_file=cert,
        key_file=key,
        padding_scheme=scheme,
        fallback=host_port(args.fallback, what="fallback address") if args.fallback else None,
        min_version=args.min_version,
        trace=args.trace,
        max_connections=args.max_connections,
    )


def client_config(args):
    """(the ClientConfig, the local listen address) the command line (and -c file) asks for."""
    from ..net.client import ClientConfig

    options = load_config(args.config, read_client_config, ClientOptions())
    warn_unsupported(f"config {args.config}", options.unsupported)
    link = ClientOptions()
    if args.server is not None and "://" in args.server:  # only anytls:// is a link
        try:
            link = parse_link(args.server)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        warn_unsupported("share link", link.unsupported)
    elif args.server is not None:
        link = ClientOptions(server=host_port(args.server, what="server"))

    def said(name: str):  # the link's value, else the file's
        return first_given(getattr(link, name), getattr(options, name))

    server = said("server")
    if server is None:
        raise UsageError("the server is needed: -s/--server HOST:PORT or an anytls:// link, "
                         "or -c FILE")
    password = first_given(given_password(args), said("password"),
                           os.environ.get(PASSWORD_ENV) or None)
    if not password:  # [PARAM-PASSWORD] "Required"
        raise UsageError(f"a password is needed: -p PASSWORD, --password-file FILE, "
                         f"anytls://PASSWORD@HOST:PORT, -c FILE or {PASSWORD_ENV}")
    try:
        pin = parse_pin(args.pin) if args.pin is not None else said("pin")
        params = ClientParams(password,
                              first_given(args.idle_check, said("idle_check"),
                                          DEFAULT_IDLE_CHECK_INTERVAL),
                              first_given(args.idle_timeout, said("idle_timeout"),
                                          DEFAULT_IDLE_TIMEOUT),
                              first_given(args.min_idle, said("min_idle"), 0))
    except ValueError as exc:  # ConfigError is one too
        raise UsageError(str(exc)) from None
    if args.heartbeat is not None and not args.heartbeat > 0:
        raise UsageError("--heartbeat must be a positive number of seconds")
    config = ClientConfig(server=server, password=password, sni=args.sni or said("sni"),
                          insecure=args.insecure or bool(said("insecure")),
                          ca_file=ca_file(args.ca or said("ca_file")),
                          params=params, pin=pin, alpn=said("alpn") or (), name=said("name"),
                          disable_reuse=bool(first_given(args.disable_reuse,
                                                         said("disable_reuse"))),
                          trace=args.trace, heartbeat=args.heartbeat,
                          wait_synack=args.wait_synack)
    listen = host_port(args.listen, what="listen address") if args.listen \
        else options.listen or host_port(CLIENT_LISTEN)
    return config, listen


def local_users(args) -> tuple[tuple[str, str], ...]:
    """Who may use the local port: ``--local-auth USER:PASS``, else the config file's users."""
    from ..config.fields import user_pass

    if args.local_auth is None:
        return load_config(args.config, read_client_config, ClientOptions()).local_users
    try:
        return (user_pass(args.local_auth, "--local-auth"),)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
