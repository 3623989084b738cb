"""Spec "cmdSettings", "cmdServerSettings", "cmdAlert": the key=value payloads and alert text."""

from __future__ import annotations

import pytest

from anytls_ref.settings import (
    ClientSettings,
    ServerSettings,
    decode_alert,
    encode_alert,
    encode_kv,
    parse_kv,
)

MD5 = "75cff2ad89aadf5e257059ee571ebe11"


def test_client_settings_encode_as_the_spec_example():
    settings = ClientSettings(2, "anytls-rs/0.0.8", MD5)
    assert settings.encode() == f"v=2\nclient=anytls-rs/0.0.8\npadding-md5={MD5}".encode()


def test_client_settings_round_trip():
    settings = ClientSettings(3, "anytls-ref/0.1.0", MD5)
    assert ClientSettings.decode(settings.encode()) == settings


@pytest.mark.parametrize(
    "data",
    [
        f"padding-md5={MD5}\nv=2\nclient=x".encode(),
        f"client=x\npadding-md5={MD5}\nv=2".encode(),
        f"v=2\npadding-md5={MD5}\nclient=x".encode(),
    ],
)
def test_keys_are_accepted_in_any_order(data):
    assert ClientSettings.decode(data) == ClientSettings(2, "x", MD5)


def test_client_key_may_be_missing_or_empty():
    # newer sing-box and mihomo send client= empty or leave it out (peers.md §2)
    assert ClientSettings.decode(f"v=2\npadding-md5={MD5}".encode()).client is None
    assert ClientSettings.decode(f"v=2\nclient=\npadding-md5={MD5}".encode()).client == ""


def test_encode_leaves_out_keys_that_are_none():
    assert ClientSettings(3).encode() == b"v=3"


def test_parse_kv_ignores_lines_without_equals_and_keeps_equals_in_values():
    assert parse_kv(b"v=2\ngarbage\n\nx=a=b") == {"v": "2", "x": "a=b"}


def test_parse_kv_keeps_the_last_value_of_a_repeated_key():
    # as a Go map assignment does (decisions.md D24)
    assert parse_kv(b"v=1\nv=2") == {"v": "2"}


def test_parse_kv_never_raises_on_bad_utf8():
    assert parse_kv(b"v=\xff\xfe\nk=ok")["k"] == "ok"


def test_encode_kv_has_no_trailing_newline():
    assert encode_kv({"a": "1", "b": "2"}) == b"a=1\nb=2"


@pytest.mark.parametrize("items", [{"a": "x\ny"}, {"a=b": "x"}, {"a\nb": "x"}])
def test_encode_kv_refuses_items_that_would_not_parse_back(items):
    with pytest.raises(ValueError):
        encode_kv(items)


@pytest.mark.parametrize(
    "data, version",
    [
        (b"v=2", 2),
        (b"v=3", 3),
        (b"v=17", 17),
        (b"", 1),  # missing v
        (b"client=x", 1),
        (b"v=", 1),
        (b"v=two", 1),  # non-numeric
        (b"v=0", 1),
        (b"v=-2", 1),
        (b"v=+2", 1),  # Go's Atoi would read 2; we read no sign
        (b"v= 2 ", 2),  # surrounding blanks tolerated (Go's Atoi would fail)
        (b"v=9999999999", 1),  # more than 9 digits
        ("v=²".encode(), 1),  # a Unicode digit is not a number here
    ],
)
def test_missing_or_non_numeric_version_means_version_1(data, version):
    # decisions.md D6
    assert ClientSettings.decode(data).version == version
    assert ServerSettings.decode(data).version == version


def test_server_settings_encode_and_decode():
    assert ServerSettings(2).encode() == b"v=2"
    assert ServerSettings.decode(b"v=3") == ServerSettings(3)


def test_alert_is_utf8_text():
    assert encode_alert("über") == "über".encode()
    assert decode_alert("über".encode()) == "über"


def test_alert_text_is_made_safe_for_a_log_line():
    assert decode_alert(b"bad\nline\x1b[31m") == "bad\\nline\\x1b[31m"
    assert decode_alert(b"\xff") == "\ufffd"
    assert decode_alert(b"") == ""
