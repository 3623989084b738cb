"""anytls_ref.auth — spec "Client › Authentication" and "Server › Authentication".

Theory of operation: right after the TLS handshake the client sends, in one TLS record,

    | sha256(password) | padding0 length   | padding0        |
    | 32 Bytes         | Big-Endian uint16 | Variable length |

padding0's length comes from line 0 of the client's padding scheme (packet 0). The server reads
"the first data packet" and checks it; a short request or a wrong hash is an authentication
failure, after which the server closes the connection or falls back to another service.

The server judges the password on the bytes of the first read only (as every Go server does): the
whole 32-byte hash must be in it. It never waits for more bytes to make up its mind, because
waiting until a prefix can no longer match would tell a prober, byte by byte, how much of the hash
it guessed. Only once the whole hash has matched may the rest of the request (the padding0
length, then padding0) come in later reads (decisions.md D5).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import AuthenticationError, LocalProtocolError
from .frame import NEED_DATA, Incomplete

PASSWORD_HASH_SIZE = 32
_LENGTH = struct.Struct(">H")
#: "Note: The overhead of the authentication part is 34 bytes."
AUTH_OVERHEAD = PASSWORD_HASH_SIZE + _LENGTH.size
MAX_PADDING0 = 0xFFFF


def password_hash(password: str) -> bytes:
    """sha256 of the UTF-8 password: the only form in which the password travels."""
    return hashlib.sha256(password.encode("utf-8")).digest()


def encode_auth(hashed_password: bytes, padding0_length: int) -> bytes:
    """The whole authentication request; padding0 is zero bytes (its content is not specified)."""
    if len(hashed_password) != PASSWORD_HASH_SIZE:
        raise LocalProtocolError("the password hash must be 32 bytes (sha256)")
    if not 0 <= padding0_length <= MAX_PADDING0:
        raise LocalProtocolError(f"padding0 length {padding0_length} does not fit in uint16")
    return hashed_password + _LENGTH.pack(padding0_length) + bytes(padding0_length)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A checked authentication request, as found at the start of the first read."""

    padding0_length: int
    #: bytes of padding0 not yet received (the server must still read and drop them)
    padding0_missing: int
    #: bytes of the first read that follow the request (the start of the frame stream)
    rest: bytes
    #: which of the server's password hashes matched (its users, in order)
    user: int = 0


def check_auth(received: bytes, expected: bytes | Sequence[bytes]) -> AuthRequest | Incomplete:
    """Check the authentication request at the start of ``received`` against sha256(password).

    ``expected`` is the server's one password hash, or one per user. ``received`` is the
    server's first read; after a NEED_DATA answer, the first read followed by what came after
    it. Raises AuthenticationError when it holds fewer than the 32 hash bytes or no hash
    matches; the comparison takes the same time wherever the hashes differ and whichever user
    (if any) matches (``matching_user``). Returns NEED_DATA when a hash matched but the 2-byte
    padding0 length did not all arrive: read more and call again with everything received.
    """
    hashes = (expected,) if isinstance(expected, (bytes, bytearray)) else tuple(expected)
    if len(received) < PASSWORD_HASH_SIZE:
        # compare anyway so a short read costs the same as a wrong one
        matching_user(bytes(received).ljust(PASSWORD_HASH_SIZE, b"\0"), hashes)
        raise AuthenticationError(f"authentication request too short ({len(received)} bytes)")
    user = matching_user(received[:PASSWORD_HASH_SIZE], hashes)
    if user is None:
        raise AuthenticationError("wrong password")
    if len(received) < AUTH_OVERHEAD:
        # The whole hash matched, so waiting tells a prober nothing. jxo-me anytls-rs writes the
        # hash, the length and padding0 as three TLS records (its src/util/auth.rs:63-83); the
        # spec's "Read the first data packet, verify the authentication request (including
        # completely reading padding0)" does not make one record a condition (decisions.md D5).
        return NEED_DATA
    (padding0_length,) = _LENGTH.unpack_from(received, PASSWORD_HASH_SIZE)
    available = len(received) - AUTH_OVERHEAD
    # [AUTH-SERVER-VERIFY] "verify the authentication request (including completely reading
    # padding0)": how much of padding0 is still to be read
    if available >= padding0_length:
        return AuthRequest(padding0_length, 0, bytes(received[AUTH_OVERHEAD + padding0_length :]),
                           user)
    return AuthRequest(padding0_length, padding0_length - available, b"", user)


def matching_user(received_hash: bytes, hashes: Sequence[bytes]) -> int | None:
    """The index of the hash equal to ``received_hash``, or None (decisions.md D44).

    Every hash is compared with ``hmac.compare_digest``, also after one matched: the time taken
    depends on the number of users only, not on which one (or whether any) the password is.
    """
    matched = None
    for index, candidate in enumerate(hashes):
        equal = hmac.compare_digest(received_hash, candidate)
        matched = index if equal else matched
    return matched
