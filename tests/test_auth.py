"""Spec "Client › Authentication" and "Server › Authentication"."""

from __future__ import annotations

import hashlib

import pytest

from anytls_ref.auth import AUTH_OVERHEAD, AuthRequest, check_auth, encode_auth, password_hash
from anytls_ref.errors import AuthenticationError, LocalProtocolError
from anytls_ref.frame import NEED_DATA

# sha256("abc"), the FIPS 180-2 test vector
ABC_SHA256 = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
HASH = password_hash("abc")


def test_password_travels_as_its_sha256():
    assert password_hash("abc") == ABC_SHA256


def test_password_is_utf8_before_hashing():
    assert password_hash("é") == hashlib.sha256(b"\xc3\xa9").digest()


def test_overhead_is_34_bytes():
    assert AUTH_OVERHEAD == 34
    assert encode_auth(HASH, 0) == HASH + b"\x00\x00"


@pytest.mark.spec("PAD-PADDING0-WITH-AUTH")
def test_request_is_hash_then_u16_be_length_then_that_many_zero_bytes():
    request = encode_auth(HASH, 300)
    assert request[:32] == HASH
    assert request[32:34] == b"\x01\x2c"
    assert request[34:] == bytes(300)


@pytest.mark.parametrize("bad_hash", [b"", bytes(31), bytes(33)])
def test_encode_refuses_a_hash_that_is_not_32_bytes(bad_hash):
    with pytest.raises(LocalProtocolError):
        encode_auth(bad_hash, 0)


@pytest.mark.parametrize("length", [-1, 65536])
def test_encode_refuses_a_padding0_length_outside_uint16(length):
    with pytest.raises(LocalProtocolError):
        encode_auth(HASH, length)


@pytest.mark.spec("AUTH-SERVER-VERIFY")
def test_check_accepts_the_right_hash_and_returns_what_follows():
    frames = b"\x04\x00\x00\x00\x00\x00\x03v=2"
    assert check_auth(encode_auth(HASH, 30) + frames, HASH) == AuthRequest(30, 0, frames)


@pytest.mark.spec("AUTH-SERVER-VERIFY")
def test_check_reports_padding0_bytes_still_to_read():
    first_read = encode_auth(HASH, 100)[:34 + 40]
    assert check_auth(first_read, HASH) == AuthRequest(100, 60, b"")


@pytest.mark.spec("AUTH-SERVER-REJECT")
def test_check_rejects_a_wrong_password():
    with pytest.raises(AuthenticationError, match="wrong password"):
        check_auth(encode_auth(password_hash("abd"), 0), HASH)


@pytest.mark.spec("AUTH-SERVER-REJECT")
@pytest.mark.parametrize("length", [0, 1, 31])
def test_check_rejects_a_first_read_shorter_than_the_hash(length):
    with pytest.raises(AuthenticationError, match="too short"):
        check_auth(encode_auth(HASH, 0)[:length], HASH)


@pytest.mark.spec("AUTH-SERVER-VERIFY")
@pytest.mark.parametrize("length", [32, 33])
def test_right_hash_without_its_whole_length_field_needs_more_bytes(length):
    # decisions.md D5: anytls-rs writes the hash in a TLS record of its own; the hash is whole,
    # so waiting for the length field tells a prober nothing
    request = encode_auth(HASH, 5) + b"FRAMES"
    assert check_auth(request[:length], HASH) is NEED_DATA
    assert check_auth(request, HASH) == AuthRequest(5, 0, b"FRAMES")


@pytest.mark.spec("AUTH-SERVER-REJECT")
@pytest.mark.parametrize("length", [32, 33])
def test_wrong_hash_is_rejected_at_once_even_without_the_length_field(length):
    with pytest.raises(AuthenticationError, match="wrong password"):
        check_auth(encode_auth(password_hash("abd"), 0)[:length], HASH)


@pytest.mark.spec("AUTH-SERVER-REJECT")
def test_short_first_read_fails_even_if_it_is_a_prefix_of_the_right_hash():
    # decisions.md D5: the server decides on the first read; it never waits for more bytes,
    # which would tell a prober how much of the hash it already has right.
    with pytest.raises(AuthenticationError):
        check_auth(HASH[:20], HASH)
