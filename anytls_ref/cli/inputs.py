"""The files and values the command line names, read and checked: each mistake is a UsageError
whose one line names the input and the problem (``__main__.run`` prints it, exit code 2)."""

from __future__ import annotations

import logging
import os

from ..config.argv import UsageError
from ..config.model import ConfigError
from ..errors import PaddingSchemeError
from ..padding import DEFAULT_SCHEME, parse_scheme

log = logging.getLogger("anytls_ref.cli")

#: the password, when no flag, link or config file gives one (it does not show in ps)
PASSWORD_ENV = "ANYTLS_PASSWORD"


#: The most a config, padding scheme, password, certificate or key file may hold: each is a
#: few KiB at most, and a larger one is the wrong file (a log, an image), not worth reading.
MAX_INPUT_FILE = 1 << 20


def host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{what} {text!r} is not HOST:PORT")
    return host, int(port)


def read_bytes(path: str, what: str) -> bytes:
    """A small input file's bytes, or one line saying why not (missing, a directory,
    unreadable, larger than MAX_INPUT_FILE)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_FILE + 1)
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_FILE:
        raise UsageError(f"{what} {path}: larger than {MAX_INPUT_FILE >> 20} MiB; is it the "
                         "right file?")
    return data


def read_scheme(path: str | None) -> bytes:
    if path is None:
        return DEFAULT_SCHEME
    raw = read_bytes(path, "padding scheme")
    # a file saved on Windows: the scheme is the same lines (and it is what clients receive)
    raw = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n")
    return checked_scheme(raw, f"padding scheme {path}")


def checked_scheme(raw: bytes, what: str) -> bytes:
    """``raw`` if it is a valid padding scheme (strict: a bad line is an error naming it)."""
    try:
        parse_scheme(raw, strict=True)
    except PaddingSchemeError as exc:
        raise UsageError(f"{what}: {exc}") from None
    return raw


def identity_bytes(path: str, what: str) -> bytes:
    """A certificate, key or CA file's bytes (read_bytes, in these files' older words for a
    missing one)."""
    if not os.path.lexists(path):
        raise UsageError(f"{what} {path}: no such file")
    return read_bytes(path, what)


def server_identity_files(cert: str | None, key: str | None) -> tuple[str | None, str | None]:
    """The certificate and key files, checked so that any mistake is one line naming the file
    (net/tls.py check_server_files); a certificate clients will refuse is a warning."""
    from ..net.tls import IdentityFileError, check_server_files

    if cert is None or key is None:
        return cert, key
    try:
        warnings = check_server_files(cert, identity_bytes(cert, "certificate"),
                                      key, identity_bytes(key, "key"))
    except IdentityFileError as exc:
        raise UsageError(str(exc)) from None
    for warning in warnings:
        log.warning("%s", warning)
    return cert, key


def ca_file(path: str | None) -> str | None:
    """``--ca FILE`` (or a config's), checked to hold a PEM certificate."""
    from ..net.tls import IdentityFileError, check_ca_file

    if path is not None:
        try:
            check_ca_file(path, identity_bytes(path, "CA file"))
        except IdentityFileError as exc:
            raise UsageError(str(exc)) from None
    return path


def read_text(path: str, what: str) -> str:
    try:
        return read_bytes(path, what).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path}: not UTF-8 text") from None


def given_password(args) -> str | None:
    """``-p`` or ``--password-file`` (one of them), or None; an empty one is refused."""
    if args.password is not None and args.password_file is not None:
        raise UsageError("-p and --password-file: give one of them")
    if args.password_file is not None:
        password = read_text(args.password_file, "password file").rstrip("\r\n")
        if not password:
            raise UsageError(f"password file {args.password_file}: empty")
        return password
    if args.password == "":
        raise UsageError("-p: an empty password is refused")
    return args.password


def load_config(path: str | None, reader, empty):
    """The settings of a ``-c`` file, or ``empty`` without one."""
    if path is None:
        return empty
    try:
        return reader(read_text(path, "config"), os.path.dirname(os.path.abspath(path)))
    except ConfigError as exc:
        raise UsageError(f"config {path}: {exc}") from None


def warn_unsupported(source: str, names: tuple[str, ...]) -> None:
    if names:
        log.warning("%s: not supported, ignored: %s", source, "; ".join(names))


def first_given(*values):
    return next((value for value in values if value is not None), None)
