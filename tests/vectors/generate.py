"""Generate the language-neutral test vectors in tests/vectors/*.json from anytls_ref.

    python tests/vectors/generate.py           (re)write the JSON files   (make vectors)
    python tests/vectors/generate.py --check   compare only; exit 1 on any difference

The formats are described in tests/vectors/README.md. Everything here is deterministic: the
padding plans are drawn once with a seeded random.Random, and the JSON stores the sizes that
came out (not the seed), so another implementation replays them without our rng.
tests/test_vectors.py imports build() and fails when the files on disk differ from it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from anytls_ref import errors, uot
from anytls_ref.auth import check_auth, encode_auth, password_hash
from anytls_ref.frame import FRAME_HEADER, NEED_DATA, Command, FrameDecoder, encode_frame, encode_psh
from anytls_ref.padding import (
    CHECK,
    DEFAULT,
    DEFAULT_SCHEME,
    parse_scheme,
    plan_packet,
    split_write,
)
from anytls_ref.settings import ClientSettings, ServerSettings
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr

HERE = Path(__file__).resolve().parent
FILES = ("auth.json", "frames.json", "settings.json", "padding_plan.json", "socksaddr.json",
         "uot.json")


def pattern(length: int) -> bytes:
    """Payload bytes used where a vector gives only a length: byte i is i mod 256."""
    return bytes(i % 256 for i in range(length))


def raw_frame(command: int, stream_id: int, data: bytes = b"") -> bytes:
    return FRAME_HEADER.pack(command, stream_id, len(data)) + data


def error_name(call) -> str | None:
    """The anytls_ref.errors class a call raises, or None if it does not raise."""
    try:
        call()
    except errors.AnyTLSError as exc:
        return type(exc).__name__
    return None


# ---- auth.json ------------------------------------------------------------------------------


def auth_vectors() -> dict:
    requests = [{
        "name": name,
        "password": password,
        "password_sha256": password_hash(password).hex(),
        "padding0_length": padding0,
        "request": encode_auth(password_hash(password), padding0).hex(),
    } for name, password, padding0 in [
        ("default padding0 (30)", "password", 30),
        ("no padding0", "password", 0),
        ("utf-8 password", "pässwörd 密码", 5),
    ]]
    good = password_hash("password")
    settings = encode_frame(Command.SETTINGS, 0, b"v=2")
    checks = []
    for name, first_read in [
        ("request then frames in one read", encode_auth(good, 30) + settings),
        ("padding0 not all read yet", encode_auth(good, 30)[:50]),
        ("exactly 34 bytes", encode_auth(good, 0)),
        ("wrong password", encode_auth(password_hash("Password"), 30)),
        ("the right hash alone (32 bytes)", good),
        ("33 bytes", encode_auth(good, 0)[:33]),
        ("a wrong hash alone (32 bytes)", password_hash("Password")),
        ("31 bytes of the right hash", good[:31]),
        ("empty read", b""),
        ("prefix of the right hash", good[:16]),
    ]:
        vector = {"name": name, "password": "password", "first_read": first_read.hex()}
        try:
            result = check_auth(first_read, good)
        except errors.AuthenticationError as exc:
            vector["error"] = type(exc).__name__
        else:
            if result is NEED_DATA:
                vector["need_data"] = True
            else:
                vector["result"] = {
                    "padding0_length": result.padding0_length,
                    "padding0_missing": result.padding0_missing,
                    "rest": result.rest.hex(),
                }
        checks.append(vector)
    return {"requests": requests, "checks": checks}


# ---- frames.json ----------------------------------------------------------------------------


def frame_json(frame) -> dict:
    return {"command": int(frame.command), "stream_id": frame.stream_id,
            "data": frame.data.hex(), "skipped": frame.skipped}


def frames_vectors() -> dict:
    md5 = DEFAULT.md5
    encode = []
    for name, command, sid, data in [
        ("Waste with padding", Command.WASTE, 0, bytes(5)),
        ("SYN", Command.SYN, 1, b""),
        ("PSH", Command.PSH, 1, b"hello"),
        ("empty PSH", Command.PSH, 1, b""),
        ("FIN", Command.FIN, 1, b""),
        ("Settings", Command.SETTINGS, 0, f"v=2\nclient=anytls-ref\npadding-md5={md5}".encode()),
        ("Alert", Command.ALERT, 0, b"client did not send its settings"),
        ("UpdatePaddingScheme (default scheme)", Command.UPDATE_PADDING_SCHEME, 0, DEFAULT_SCHEME),
        ("SYNACK ok", Command.SYNACK, 2, b""),
        ("SYNACK error", Command.SYNACK, 2, b"dial tcp 192.0.2.1:80: connection refused"),
        ("HeartRequest", Command.HEART_REQUEST, 0, b""),
        ("HeartResponse", Command.HEART_RESPONSE, 7, b""),
        ("ServerSettings", Command.SERVER_SETTINGS, 0, b"v=2"),
        ("largest stream id", Command.FIN, 0xFFFFFFFF, b""),
    ]:
        encode.append({"name": name, "command": int(command), "stream_id": sid,
                       "data": data.hex(), "wire": encode_frame(command, sid, data).hex()})

    encode_errors = []
    for name, command, sid, length in [
        ("data on SYN", Command.SYN, 1, 1),
        ("data on FIN", Command.FIN, 1, 1),
        ("data on HeartRequest", Command.HEART_REQUEST, 0, 1),
        ("data on HeartResponse", Command.HEART_RESPONSE, 0, 1),
        ("data on an unknown command", 42, 0, 1),
        ("more than 65535 bytes", Command.WASTE, 0, 65536),
        ("stream id above uint32", Command.FIN, 2**32, 0),
    ]:
        error = error_name(lambda: encode_frame(command, sid, pattern(length)))
        assert error is not None, name
        encode_errors.append({"name": name, "command": int(command), "stream_id": sid,
                              "data_length": length, "error": error})

    psh_split = []
    for length in (0, 65535, 65536, 140000):
        decoder = FrameDecoder()
        decoder.feed(encode_psh(9, pattern(length)))
        psh_split.append({"name": f"{length} bytes", "stream_id": 9, "data_length": length,
                          "frame_lengths": [len(f.data) for f in decoder.frames()]})

    decode = []
    for name, wire in [
        ("two frames", encode_frame(Command.SYN, 1) + encode_psh(1, b"abc")),
        ("data on SYN is skipped", raw_frame(Command.SYN, 1, b"junk") + encode_psh(1, b"x")),
        ("data on FIN is skipped", raw_frame(Command.FIN, 1, b"zz") + encode_psh(2, b"y")),
        ("data on HeartRequest is skipped", raw_frame(Command.HEART_REQUEST, 3, b"p")),
        ("data on HeartResponse is skipped", raw_frame(Command.HEART_RESPONSE, 3, b"p")),
        ("unknown command 42 with data is skipped", raw_frame(42, 5, b"future") + raw_frame(3, 5)),
        ("incomplete header is buffered", encode_psh(1, b"ab") + bytes.fromhex("020000")),
        ("incomplete data is buffered", encode_psh(1, b"ab") + bytes.fromhex("0200000001000568")),
        ("Waste keeps its data", raw_frame(Command.WASTE, 0, bytes(3))),
    ]:
        decoder = FrameDecoder()
        decoder.feed(wire)
        decode.append({"name": name, "wire": wire.hex(),
                       "frames": [frame_json(f) for f in decoder.frames()],
                       "buffered": decoder.buffered})
    return {"encode": encode, "encode_errors": encode_errors, "psh_split": psh_split,
            "decode": decode}


# ---- settings.json --------------------------------------------------------------------------


def settings_vectors() -> dict:
    md5 = DEFAULT.md5
    encode = [
        {"name": "client settings", "kind": "client",
         "fields": {"version": 3, "client": "anytls-ref/0.1.0", "padding_md5": md5}},
        {"name": "client settings without client", "kind": "client",
         "fields": {"version": 2, "client": None, "padding_md5": md5}},
        {"name": "server settings", "kind": "server", "fields": {"version": 2}},
    ]
    for vector in encode:
        fields = vector["fields"]
        if vector["kind"] == "client":
            data = ClientSettings(fields["version"], fields["client"], fields["padding_md5"])
        else:
            data = ServerSettings(fields["version"])
        vector["data"] = data.encode().hex()

    decode = []
    for name, text in [
        ("spec example order", f"v=2\nclient=anytls-rs/0.0.8\npadding-md5={md5}".encode()),
        ("keys in another order", f"padding-md5={md5}\nclient=sing-box\nv=2".encode()),
        ("client missing", f"v=2\npadding-md5={md5}".encode()),
        ("client empty", f"v=2\nclient=\npadding-md5={md5}".encode()),
        ("v missing", f"client=old\npadding-md5={md5}".encode()),
        ("v not a number", b"v=two"),
        ("v zero", b"v=0"),
        ("v with a sign", b"v=+2"),
        ("v with blanks", b"v= 3 "),
        ("v=3", b"v=3"),
        ("line without = ignored", b"v=2\ngarbage\n"),
        ("repeated key: last wins", b"v=1\nv=2"),
        ("value containing =", b"v=2\nclient=a=b"),
        ("bad utf-8 in a value", b"v=2\nclient=\xff"),
        ("empty", b""),
    ]:
        client = ClientSettings.decode(text)
        decode.append({
            "name": name,
            "data": text.hex(),
            "client": {"version": client.version, "client": client.client,
                       "padding_md5": client.padding_md5},
            "server_version": ServerSettings.decode(text).version,
        })
    return {"encode": encode, "decode": decode}


# ---- padding_plan.json ----------------------------------------------------------------------


def entry_json(entry) -> str:
    return "c" if entry == "c" else f"{entry.low}-{entry.high}"


def scheme_vector(name: str, raw: bytes) -> dict:
    vector: dict = {"name": name, "raw": raw.hex()}
    try:
        scheme = parse_scheme(raw)
    except errors.PaddingSchemeError as exc:
        vector["error"] = {"type": type(exc).__name__, "line": exc.line}
        return vector
    vector["result"] = {
        "stop": scheme.stop,
        "md5": scheme.md5,
        "packets": {str(k): [entry_json(e) for e in v] for k, v in sorted(scheme.packets.items())},
        "warning_lines": [int(w.split(":")[0].split()[1]) for w in scheme.warnings],
    }
    return vector


def padding_vectors() -> dict:
    schemes = [scheme_vector(name, raw) for name, raw in [
        ("default", DEFAULT_SCHEME),
        ("default with a trailing newline (other md5)", DEFAULT_SCHEME + b"\n"),
        ("no stop", b"0=30-30\n1=100-400"),
        ("stop not a number", b"stop=eight\n1=100-400"),
        ("stop negative", b"stop=-1"),
        ("malformed entries skipped", b"stop=4\n1=100-400,abc,c\n2=x\njunk\n3=0-10,20-10,9-70000"),
        ("packet key with a leading zero is not a packet", b"stop=4\n02=10-10\n2=20-20"),
        ("not utf-8", b"stop=4\n1=\xff"),
    ]]

    # the sender's side of one write: Settings + SYN + PSH(target) is packet 1
    first_write = (encode_frame(Command.SETTINGS, 0,
                                ClientSettings(3, "anytls-ref/0.1.0", DEFAULT.md5).encode())
                   + encode_frame(Command.SYN, 1)
                   + encode_psh(1, encode_socksaddr(SocksAddr("example.com", 443))))
    rng = random.Random(20240601)  # drawn once; the file stores the resulting sizes
    plans = []

    def add(name: str, packet: int | None, sizes: list[int] | None, payload: bytes) -> None:
        if sizes is None:
            records = [payload] if payload else []
        else:
            records = split_write(payload, sizes) if sizes else ([payload] if payload else [])
        plans.append({"name": name, "packet": packet, "sizes": sizes, "payload": payload.hex(),
                      "records": [r.hex() for r in records]})

    add("packet 1: Settings+SYN+PSH(target), topped up", 1,
        plan_packet(DEFAULT, 1, rng), first_write)
    add("packet 2: nothing to send, one Waste record then c stops", 2,
        plan_packet(DEFAULT, 2, rng), b"")
    add("packet 2: small write, topped up then c stops", 2,
        plan_packet(DEFAULT, 2, rng), encode_psh(1, pattern(50)))
    add("packet 2: 1500 bytes over several records", 2,
        plan_packet(DEFAULT, 2, rng), encode_psh(1, pattern(1493)))
    add("packet 2: more than the plan, rest sent as one record", 2,
        plan_packet(DEFAULT, 2, rng), encode_psh(1, pattern(4993)))
    add("packet 3: 9-byte record then the rest topped up", 3,
        plan_packet(DEFAULT, 3, rng), encode_psh(1, pattern(23)))
    add("packet 3: nothing to send, every record is Waste (no c)", 3,
        plan_packet(DEFAULT, 3, rng), b"")
    add("packet 7: last shaped packet", 7, plan_packet(DEFAULT, 7, rng),
        encode_psh(1, pattern(300)))
    add("packet 8: stop reached, written as it is", 8, plan_packet(DEFAULT, 8, rng),
        encode_psh(1, pattern(300)))
    add("no top-up when only 7 bytes are left (l - remain - 7 == 0)", None, [100],
        encode_psh(1, pattern(86)))
    add("top-up of one Waste byte (l - remain - 7 == 1)", None, [100], encode_psh(1, pattern(85)))
    add("payload exactly l", None, [100], encode_psh(1, pattern(93)))
    add("c first with nothing to send: no record", None, [CHECK, 100], b"")
    add("c skipped while payload remains, then stops padding", None, [10, CHECK, 20, CHECK, 30],
        encode_psh(1, pattern(13)))
    add("packet without a line: written as it is", None, [], encode_psh(1, pattern(4)))
    return {
        "default_scheme": {"text": DEFAULT_SCHEME.decode(), "length": len(DEFAULT_SCHEME),
                           "md5": DEFAULT.md5},
        "schemes": schemes,
        "plans": plans,
    }


# ---- socksaddr.json -------------------------------------------------------------------------


def socksaddr_vectors() -> dict:
    round_trip = [{"name": name, "host": host, "port": port,
                   "wire": encode_socksaddr(SocksAddr(host, port)).hex()}
                  for name, host, port in [
                      ("IPv4", "192.0.2.1", 443),
                      ("IPv6", "2001:db8::1", 80),
                      ("domain", "example.com", 8080),
                      ("UoT v2 magic", "sp.v2.udp-over-tcp.arpa", 0),
                      ("port 65535", "10.0.0.1", 65535),
                  ]]
    decode = []
    for name, wire in [
        ("IPv4-mapped IPv6 is unwrapped", "04 00000000000000000000ffffc0000201 01bb"),
        ("trailing bytes are not consumed", "01 7f000001 0050 474554"),
        ("domain that looks like an IP stays a name string", "03 07 312e322e332e34 0050"),
    ]:
        raw = bytes.fromhex(wire)
        addr, used = decode_socksaddr(raw)
        decode.append({"name": name, "wire": raw.hex(), "host": addr.host, "port": addr.port,
                       "consumed": used})
    errors_ = []
    for name, wire in [
        ("ATYP 0x00", "00 7f000001 0050"),
        ("ATYP 0x05", "05 7f000001 0050"),
        ("empty domain", "03 00 0050"),
        ("domain with a space", "03 03 612062 0050"),
        ("non-ASCII domain", "03 02 c3a9 0050"),
    ]:
        raw = bytes.fromhex(wire)
        errors_.append({"name": name, "wire": raw.hex(),
                        "error": error_name(lambda: decode_socksaddr(raw))})
    return {"round_trip": round_trip, "decode": decode, "errors": errors_}


# ---- uot.json -------------------------------------------------------------------------------


def uot_vectors() -> dict:
    requests = []
    for name, connect, host in [
        ("address mode, IPv4 destination", False, "192.0.2.1"),
        ("connect mode, domain destination", True, "dns.example"),
    ]:
        request = uot.UotRequest(connect, SocksAddr(host, 53))
        requests.append({"name": name, "is_connect": connect, "host": host, "port": 53,
                         "wire": uot.encode_uot_request(request).hex()})
    packets = []
    for name, host, payload in [
        ("address mode IPv4 (family 00)", "192.0.2.1", b"query"),
        ("address mode IPv6 (family 01)", "2001:db8::1", b"query"),
        ("address mode domain (family 02)", "dns.example", b"query"),
        ("address mode empty datagram", "192.0.2.1", b""),
        ("connect mode", None, b"query"),
    ]:
        addr = SocksAddr(host, 53) if host else None
        packets.append({"name": name, "connect": host is None, "host": host,
                        "port": 53 if host else None, "payload": payload.hex(),
                        "wire": uot.encode_packet(payload, addr).hex()})
    decode = []
    for name, wire in [("IPv4-mapped IPv6 source is unwrapped",
                        "01 00000000000000000000ffffc0000201 0035 0001 78")]:
        raw = bytes.fromhex(wire)
        addr, payload, used = uot.decode_packet(raw, connect=False)
        decode.append({"name": name, "connect": False, "wire": raw.hex(), "host": addr.host,
                       "port": addr.port, "payload": payload.hex(), "consumed": used})
    errors_ = []
    for name, kind, wire in [
        ("request with ATYP 0x02", "request", "00 02 7f000001 0035"),
        ("packet with family 0x03", "packet", "03 7f000001 0035 0000"),
        ("packet with an empty domain", "packet", "02 00 0035 0000"),
    ]:
        raw = bytes.fromhex(wire)
        call = ((lambda: uot.decode_uot_request(raw)) if kind == "request"
                else (lambda: uot.decode_packet(raw, connect=False)))
        errors_.append({"name": name, "kind": kind, "wire": raw.hex(), "error": error_name(call)})
    return {"requests": requests, "packets": packets, "decode": decode, "errors": errors_}


# ---- files ----------------------------------------------------------------------------------


def build() -> dict[str, str]:
    """Every vector file's exact text, by file name."""
    data = {
        "auth.json": auth_vectors(),
        "frames.json": frames_vectors(),
        "settings.json": settings_vectors(),
        "padding_plan.json": padding_vectors(),
        "socksaddr.json": socksaddr_vectors(),
        "uot.json": uot_vectors(),
    }
    assert tuple(data) == FILES
    return {name: json.dumps(value, indent=1, ensure_ascii=False) + "\n"
            for name, value in data.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk without writing; exit 1 on drift")
    args = parser.parse_args(argv)
    drift = []
    for name, text in build().items():
        path = HERE / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        drift.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check:
        for name in drift:
            print(f"tests/vectors/{name} differs from what generate.py produces", file=sys.stderr)
        return 1 if drift else 0
    print(f"wrote {len(drift)} of {len(FILES)} vector files" + (f": {', '.join(drift)}"
                                                                if drift else " (no change)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
