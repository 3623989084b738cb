"""The JSON vectors in tests/vectors/: up to date with the code, and replayed through it.

The first test regenerates every file in memory and fails on any difference (run `make vectors`
after a deliberate change and review the diff). The others read the files as another
implementation would and check each vector against the decoders and encoders.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from anytls_ref import errors
from anytls_ref.auth import check_auth, encode_auth, password_hash
from anytls_ref.frame import NEED_DATA, FrameDecoder, encode_frame, encode_psh
from anytls_ref.padding import parse_scheme, split_write, waste_frame
from anytls_ref.settings import ClientSettings, ServerSettings
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from anytls_ref.uot import (
    UotRequest,
    decode_packet,
    decode_uot_request,
    encode_packet,
    encode_uot_request,
)

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_generator():
    spec = importlib.util.spec_from_file_location("vectors_generate", VECTORS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def pattern(length: int) -> bytes:
    return bytes(i % 256 for i in range(length))


def raises(name: str, call) -> None:
    with pytest.raises(getattr(errors, name)):
        call()


def test_vector_files_match_a_fresh_generation():
    generated = load_generator().build()
    on_disk = {p.name for p in VECTORS.glob("*.json")}
    assert on_disk == set(generated), "vector files added or missing; run `make vectors`"
    for name, text in generated.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, (
            f"tests/vectors/{name} is stale; run `make vectors` and review the diff")


def test_generator_check_mode_exits_1_on_drift(tmp_path, monkeypatch, capsys):
    generator = load_generator()
    for name, text in generator.build().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(generator, "HERE", tmp_path)
    assert generator.main(["--check"]) == 0
    (tmp_path / "auth.json").write_text("{}\n", encoding="utf-8")
    assert generator.main(["--check"]) == 1
    assert "auth.json" in capsys.readouterr().err
    assert (tmp_path / "auth.json").read_text() == "{}\n"  # --check never writes


# ---- replay ---------------------------------------------------------------------------------


def test_auth_vectors():
    data = vectors("auth.json")
    for v in data["requests"]:
        digest = password_hash(v["password"])
        assert digest.hex() == v["password_sha256"], v["name"]
        assert encode_auth(digest, v["padding0_length"]).hex() == v["request"], v["name"]
    for v in data["checks"]:
        first_read, expected = bytes.fromhex(v["first_read"]), password_hash(v["password"])
        if "error" in v:
            raises(v["error"], lambda: check_auth(first_read, expected))
            continue
        result = check_auth(first_read, expected)
        if v.get("need_data"):
            assert result is NEED_DATA, v["name"]
            continue
        assert (result.padding0_length, result.padding0_missing, result.rest.hex()) == (
            v["result"]["padding0_length"], v["result"]["padding0_missing"], v["result"]["rest"])


def test_frame_vectors():
    data = vectors("frames.json")
    for v in data["encode"]:
        wire = encode_frame(v["command"], v["stream_id"], bytes.fromhex(v["data"]))
        assert wire.hex() == v["wire"], v["name"]
        decoder = FrameDecoder()
        decoder.feed(wire)
        (frame,) = decoder.frames()
        assert (frame.command, frame.stream_id, frame.data.hex()) == (
            v["command"], v["stream_id"], v["data"])
    for v in data["encode_errors"]:
        payload = pattern(v["data_length"])
        raises(v["error"], lambda: encode_frame(v["command"], v["stream_id"], payload))
    for v in data["psh_split"]:
        decoder = FrameDecoder()
        decoder.feed(encode_psh(v["stream_id"], pattern(v["data_length"])))
        frames = decoder.frames()
        assert [len(f.data) for f in frames] == v["frame_lengths"]
        assert b"".join(f.data for f in frames) == pattern(v["data_length"])
    for v in data["decode"]:
        wire = bytes.fromhex(v["wire"])
        for chunk in (len(wire) or 1, 1):  # whole, then one byte at a time
            decoder, frames = FrameDecoder(), []
            for i in range(0, len(wire), chunk):
                decoder.feed(wire[i : i + chunk])
                frames += decoder.frames()
            got = [{"command": int(f.command), "stream_id": f.stream_id, "data": f.data.hex(),
                    "skipped": f.skipped} for f in frames]
            assert got == v["frames"], v["name"]
            assert decoder.buffered == v["buffered"]
            assert decoder.next_frame() is NEED_DATA


def test_settings_vectors():
    data = vectors("settings.json")
    for v in data["encode"]:
        f = v["fields"]
        if v["kind"] == "client":
            settings = ClientSettings(f["version"], f["client"], f["padding_md5"])
            assert ClientSettings.decode(bytes.fromhex(v["data"])) == settings
        else:
            settings = ServerSettings(f["version"])
            assert ServerSettings.decode(bytes.fromhex(v["data"])) == settings
        assert settings.encode().hex() == v["data"], v["name"]
    for v in data["decode"]:
        raw = bytes.fromhex(v["data"])
        c = v["client"]
        assert ClientSettings.decode(raw) == ClientSettings(
            c["version"], c["client"], c["padding_md5"]), v["name"]
        assert ServerSettings.decode(raw).version == v["server_version"], v["name"]


def test_padding_scheme_vectors():
    data = vectors("padding_plan.json")
    default = data["default_scheme"]
    assert len(default["text"].encode()) == default["length"] == 137
    assert parse_scheme(default["text"].encode()).md5 == default["md5"]
    for v in data["schemes"]:
        raw = bytes.fromhex(v["raw"])
        if "error" in v:
            with pytest.raises(getattr(errors, v["error"]["type"])) as info:
                parse_scheme(raw)
            assert info.value.line == v["error"]["line"], v["name"]
            continue
        scheme = parse_scheme(raw)
        result = v["result"]
        assert (scheme.stop, scheme.md5) == (result["stop"], result["md5"]), v["name"]
        assert {str(k): [str(e) for e in entries] for k, entries in scheme.packets.items()} == (
            result["packets"])
        assert [w.split(":")[0] for w in scheme.warnings] == [
            f"line {n}" for n in result["warning_lines"]]


def test_padding_plan_vectors():
    for v in vectors("padding_plan.json")["plans"]:
        payload, records = bytes.fromhex(v["payload"]), [bytes.fromhex(r) for r in v["records"]]
        if not v["sizes"]:  # null (from stop on) or [] (no line): the write goes as it is
            assert records == ([payload] if payload else []), v["name"]
            continue
        assert split_write(payload, v["sizes"]) == records, v["name"]
        # the receiver gets back exactly the payload's frames; the rest is Waste
        decoder = FrameDecoder()
        decoder.feed(b"".join(records))
        frames = decoder.frames()
        assert decoder.buffered == 0
        unpadded = FrameDecoder()
        unpadded.feed(payload)
        assert [f for f in frames if f.command != 0] == unpadded.frames(), v["name"]
        assert all(f.data == bytes(len(f.data)) for f in frames if f.command == 0)


def test_padding_plan_vectors_cover_every_record_kind():
    kinds = set()
    for v in vectors("padding_plan.json")["plans"]:
        for record in map(bytes.fromhex, v["records"]):
            if len(record) >= 7 and record == waste_frame(len(record) - 7):
                kinds.add("all padding")
            elif any(record.endswith(waste_frame(n)) for n in range(1, 1001)):
                kinds.add("topped up")
            else:
                kinds.add("payload only")
    assert kinds == {"all padding", "topped up", "payload only"}


def test_socksaddr_vectors():
    data = vectors("socksaddr.json")
    for v in data["round_trip"]:
        raw = bytes.fromhex(v["wire"])
        addr = SocksAddr(v["host"], v["port"])
        assert encode_socksaddr(addr) == raw, v["name"]
        assert decode_socksaddr(raw) == (addr, len(raw))
        assert all(decode_socksaddr(raw[:cut]) is NEED_DATA for cut in range(len(raw)))
    for v in data["decode"]:
        assert decode_socksaddr(bytes.fromhex(v["wire"])) == (
            SocksAddr(v["host"], v["port"]), v["consumed"]), v["name"]
    for v in data["errors"]:
        raises(v["error"], lambda: decode_socksaddr(bytes.fromhex(v["wire"])))


def test_uot_vectors():
    data = vectors("uot.json")
    for v in data["requests"]:
        request = UotRequest(v["is_connect"], SocksAddr(v["host"], v["port"]))
        raw = bytes.fromhex(v["wire"])
        assert encode_uot_request(request) == raw, v["name"]
        assert decode_uot_request(raw) == (request, len(raw))
        assert all(decode_uot_request(raw[:cut]) is NEED_DATA for cut in range(len(raw)))
    for v in data["packets"]:
        addr = SocksAddr(v["host"], v["port"]) if v["host"] is not None else None
        raw, payload = bytes.fromhex(v["wire"]), bytes.fromhex(v["payload"])
        assert encode_packet(payload, addr) == raw, v["name"]
        assert decode_packet(raw, connect=v["connect"]) == (addr, payload, len(raw))
        assert all(decode_packet(raw[:cut], connect=v["connect"]) is NEED_DATA
                   for cut in range(len(raw)))
    for v in data["decode"]:
        assert decode_packet(bytes.fromhex(v["wire"]), connect=v["connect"]) == (
            SocksAddr(v["host"], v["port"]), bytes.fromhex(v["payload"]), v["consumed"])
    for v in data["errors"]:
        raw = bytes.fromhex(v["wire"])
        if v["kind"] == "request":
            raises(v["error"], lambda: decode_uot_request(raw))
        else:
            raises(v["error"], lambda: decode_packet(raw, connect=False))
