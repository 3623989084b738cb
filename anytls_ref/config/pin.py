"""anytls_ref.config.pin — certificate fingerprints as users write them.

A pin is the SHA-256 of the server's leaf certificate (its DER bytes), written in hex, with or
without colons between the bytes: ``--pin``, a share link's ``hpkp`` (mihomo's link converter,
common/convert/converter.go) and a mihomo proxy's ``fingerprint`` (component/ca/fingerprint.go,
which strips colons and wants 32 bytes) all take this form. ``openssl x509 -fingerprint
-sha256`` prints it too, which is the form the server logs.
"""

from __future__ import annotations

from .model import ConfigError

#: bytes in a SHA-256 digest
SHA256_SIZE = 32


def parse_pin(text: str, *, what: str = "--pin") -> bytes:
    """``AB:CD:…`` or ``abcd…`` (64 hex digits, colons allowed) → the 32-byte digest."""
    digits = text.strip().replace(":", "")
    try:
        digest = bytes.fromhex(digits)
    except ValueError:
        digest = b""
    if len(digest) != SHA256_SIZE:
        raise ConfigError(f"{what} {text.strip()!r} is not a SHA-256 fingerprint "
                          "(64 hex digits, colons allowed)")
    return digest


def format_fingerprint(digest: bytes) -> str:
    """The digest as ``openssl x509 -fingerprint -sha256`` prints it: ``AB:CD:…``."""
    return ":".join(f"{byte:02X}" for byte in digest)
