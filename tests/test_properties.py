"""Property tests (hypothesis) for every decoder: only typed errors or valid results, and
round trips wherever an encoder exists.

"Typed errors" means subclasses of anytls_ref.errors.AnyTLSError; anything else (IndexError,
struct.error, UnicodeError, ValueError, ...) escaping a decoder fails the test. Incremental
decoders may also answer NEED_DATA, and then every strict prefix of a valid encoding must too.

How much runs is set by the hypothesis profile (tests/conftest.py): "ci" (the default, a few
seconds for the whole file in ``make test``) or "fuzz" (``make fuzz``, tens of thousands of
examples per property). The million-input loop over the same decoders is interop/fuzz.py.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from anytls_ref.auth import (
    AUTH_OVERHEAD,
    PASSWORD_HASH_SIZE,
    AuthRequest,
    check_auth,
    encode_auth,
    password_hash,
)
from anytls_ref.effects import CloseSession, Effect, Send
from anytls_ref.errors import (
    AnyTLSError,
    AuthenticationError,
    PaddingSchemeError,
    RemoteProtocolError,
)
from anytls_ref.frame import (
    COMMANDS_WITH_DATA,
    FRAME_HEADER,
    MAX_DATA,
    NEED_DATA,
    Command,
    Frame,
    FrameDecoder,
    encode_frame,
    encode_psh,
)
from anytls_ref.net.udp import parse_socks_udp, socks_udp_header
from anytls_ref.padding import (
    CHECK,
    DEFAULT,
    PaddingScheme,
    SizeRange,
    parse_scheme,
    plan_packet,
    scheme_md5,
    split_write,
)
from anytls_ref.rules import ClientRules, ServerRules
from anytls_ref.settings import ClientSettings, ServerSettings
from anytls_ref.socksaddr import SocksAddr, decode_socksaddr, encode_socksaddr
from anytls_ref.uot import (
    UotRequest,
    decode_packet,
    decode_uot_request,
    encode_packet,
    encode_uot_request,
)

HASH = password_hash("property")
EFFECT_TYPES = Effect.__args__  # the union's members

# ---- strategies -----------------------------------------------------------------------------

any_bytes = st.binary(max_size=600)
#: plain seeded generators for bulk bytes (hypothesis' own randoms draw every byte: slow)
seeded_rngs = st.integers(0, 2**32 - 1).map(random.Random)
ports = st.integers(0, 0xFFFF)


def _not_an_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


#: domain names our decoders accept: printable ASCII without space, '/' and '\', 1..255 bytes,
#: not an IP literal (an encoder writes those as addresses)
domain_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/\\"),
    min_size=1, max_size=255,
).filter(_not_an_ip)
ipv4_hosts = st.ip_addresses(v=4).map(str)
ipv6_hosts = st.ip_addresses(v=6).map(str)
hosts = st.one_of(ipv4_hosts, ipv6_hosts, domain_names)
socks_addrs = st.builds(SocksAddr, hosts, ports)


def canonical(addr: SocksAddr) -> SocksAddr:
    """What a decoder gives back for ``addr``: IPv4-mapped IPv6 unwrapped, IPv6 compressed."""
    try:
        ip = ipaddress.ip_address(addr.host)
    except ValueError:
        return addr
    if ip.version == 6 and ip.ipv4_mapped:
        return SocksAddr(str(ip.ipv4_mapped), addr.port)
    return SocksAddr(str(ip), addr.port)


def decoded_or_typed_error(decode, data):
    """Call ``decode(data)``: a result, or None when it raised an AnyTLSError."""
    try:
        return decode(data)
    except AnyTLSError:
        return None


# ---- auth.check_auth ------------------------------------------------------------------------


def auth_request_holds(data: bytes, result) -> None:
    """What any bytes that check_auth accepts decode to (test_decoders_take_any_bytes)."""
    assert isinstance(result, AuthRequest)
    assert data[:PASSWORD_HASH_SIZE] == HASH
    assert 0 <= result.padding0_missing <= result.padding0_length <= 0xFFFF


@given(st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_auth_round_trip(padding0, rest):
    request = check_auth(encode_auth(HASH, padding0) + rest, HASH)
    assert request == AuthRequest(padding0, 0, rest)


@given(st.integers(0, 2000), st.data())
def test_auth_truncated(padding0, data):
    wire = encode_auth(HASH, padding0)
    cut = data.draw(st.integers(0, len(wire)))
    prefix = wire[:cut]
    if cut < PASSWORD_HASH_SIZE:
        with pytest.raises(AuthenticationError):
            check_auth(prefix, HASH)
        return
    try:
        result = check_auth(prefix, HASH)
    except AuthenticationError:
        # the original rule: fewer than 34 bytes in the first read is a failure
        assert cut < AUTH_OVERHEAD
        return
    if cut < AUTH_OVERHEAD:
        assert result is NEED_DATA  # the hash matched, the length is still to come
    else:
        assert result == AuthRequest(padding0, padding0 - (cut - AUTH_OVERHEAD), b"")


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=100))
def test_auth_wrong_hash_always_fails(wrong, rest):
    assume(wrong != HASH)
    with pytest.raises(AuthenticationError):
        check_auth(wrong + rest, HASH)


# ---- frame.FrameDecoder ---------------------------------------------------------------------


def decode_all(chunks) -> tuple[list[Frame], int]:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for chunk in chunks:
        decoder.feed(chunk)
        frames += decoder.frames()
    return frames, decoder.buffered


@st.composite
def split_points(draw, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@given(st.binary(max_size=3000), st.data())
def test_frame_decoder_any_bytes_any_chunking(data, draw):
    whole, rest_whole = decode_all([data])
    chunked, rest_chunked = decode_all(draw.draw(split_points(data)))
    assert chunked == whole and rest_chunked == rest_whole
    # every byte is accounted for
    assert sum(7 + len(f.data) + f.skipped for f in whole) + rest_whole == len(data)
    for f in whole:
        assert (f.skipped == 0) if f.command in COMMANDS_WITH_DATA else (f.data == b"")


frame_specs = st.tuples(
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 6000),  # data length: crosses the decoder's 4096-byte compaction point
    st.booleans(),
)


@given(st.lists(frame_specs, max_size=10), st.data())
def test_frame_round_trip_and_skip(specs, draw):
    """encode → decode gives the frames back; data on a command that carries none is skipped
    and the frames after it stay in sync."""
    wire = b""
    expected = []
    for command, sid, length, with_data in specs:
        data = bytes([command ^ (sid & 0xFF)]) * (length if with_data else 0)
        if command in COMMANDS_WITH_DATA:
            wire += encode_frame(command, sid, data)
            expected.append(Frame(command, sid, data))
        else:
            wire += FRAME_HEADER.pack(command, sid, len(data)) + data  # what encode refuses
            expected.append(Frame(command, sid, b"", skipped=len(data)))
    frames, rest = decode_all(draw.draw(split_points(wire)))
    assert rest == 0
    assert frames == expected


psh_sizes = st.one_of(
    st.integers(0, MAX_DATA + 10),
    st.builds(lambda k, d: k * MAX_DATA + d, st.integers(1, 3), st.integers(-2, 2)),
)


@given(psh_sizes, st.integers(0, 0xFFFFFFFF), seeded_rngs)
def test_psh_split_round_trip(size, sid, rng):
    data = rng.randbytes(size)
    frames, rest = decode_all([encode_psh(sid, data)])
    assert rest == 0
    assert all(f.command == Command.PSH and f.stream_id == sid for f in frames)
    assert all(len(f.data) <= MAX_DATA for f in frames)
    assert b"".join(f.data for f in frames) == data


# ---- session rules over decoded frames ------------------------------------------------------

plausible_frames = st.builds(
    lambda c, sid, data: FRAME_HEADER.pack(c, sid, len(data)) + data,
    st.sampled_from([*range(12), 42, 255]),
    st.integers(0, 3),
    st.one_of(
        st.sampled_from([b"", b"v=2", b"v=1", b"v=3\npadding-md5=" + DEFAULT.md5.encode(),
                         b"stop=x", b"\xff\xfe", b"dial failed",
                         encode_socksaddr(SocksAddr("a.example", 80))]),
        st.binary(max_size=20),
    ),
)


@given(st.lists(plausible_frames, max_size=15), st.sampled_from(["server", "server-v2", "client"]))
def test_rules_never_break_on_any_frame_sequence(frames, role):
    rules = (ServerRules(DEFAULT.md5, DEFAULT.raw) if role == "server"
             else ServerRules("x", b"stop=1", 2) if role == "server-v2"
             else ClientRules("prop", DEFAULT.md5))
    if isinstance(rules, ClientRules):
        rules.open_stream(1)
    decoded, _ = decode_all([b"".join(frames)])
    closed = False
    for f in decoded:
        effects = rules.receive(f)
        if closed:
            assert effects == [], "nothing happens after the session closed"
        for effect in effects:
            assert isinstance(effect, EFFECT_TYPES)
            if isinstance(effect, Send):  # what we send obeys encode_frame's rules
                sent, rest = decode_all([effect.frame])
                assert rest == 0 and len(sent) == 1 and sent[0].skipped == 0
                encode_frame(sent[0].command, sent[0].stream_id, sent[0].data)
            if isinstance(effect, CloseSession):
                closed = True


# ---- settings -------------------------------------------------------------------------------


@given(any_bytes)
def test_settings_any_bytes(data):
    client = ClientSettings.decode(data)
    server = ServerSettings.decode(data)
    assert client.version >= 1 and server.version == client.version
    assert client.client is None or isinstance(client.client, str)
    assert client.padding_md5 is None or isinstance(client.padding_md5, str)


line_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40)


@given(st.integers(1, 999_999_999), st.none() | line_text, st.none() | line_text)
def test_settings_round_trip(version, client, md5):
    settings = ClientSettings(version, client, md5)
    assert ClientSettings.decode(settings.encode()) == settings
    assert ServerSettings.decode(ServerSettings(version).encode()) == ServerSettings(version)


# ---- padding scheme -------------------------------------------------------------------------


@given(st.one_of(any_bytes, st.builds(lambda b: b"stop=8\n" + b, any_bytes)))
def test_scheme_any_bytes(raw):
    for strict in (False, True):
        scheme = decoded_or_typed_error(lambda d: parse_scheme(d, strict=strict), raw)
        if scheme is None:
            continue
        assert isinstance(scheme, PaddingScheme) and scheme.md5 == scheme_md5(raw)
        assert strict is False or scheme.warnings == ()
        for entries in scheme.packets.values():
            for entry in entries:
                assert entry == "c" or (isinstance(entry, SizeRange)
                                        and 1 <= entry.low <= entry.high <= MAX_DATA)


record_sizes = st.one_of(st.integers(1, 1500), st.integers(1, MAX_DATA))
size_ranges = st.tuples(record_sizes, record_sizes)
entries = st.lists(st.one_of(st.just("c"), size_ranges), min_size=1, max_size=6)


@given(st.integers(0, 20), st.dictionaries(st.integers(0, 20), entries, max_size=8), seeded_rngs)
def test_scheme_round_trip_and_split(stop, packets, rng):
    def text(entry) -> str:
        return entry if entry == "c" else f"{entry[0]}-{entry[1]}"  # reversed bounds allowed

    lines = [f"stop={stop}", *(f"{n}={','.join(map(text, e))}" for n, e in packets.items())]
    rng.shuffle(lines)
    raw = "\n".join(lines).encode()
    scheme = parse_scheme(raw, strict=True)
    assert scheme.stop == stop and scheme.warnings == ()
    want = {n: tuple(e if e == "c" else SizeRange(min(e), max(e)) for e in es)
            for n, es in packets.items()}
    assert scheme.packets == want
    # splitting one write by any packet's plan: the payload first, then only Waste frames
    payload = encode_psh(1, rng.randbytes(rng.randrange(3000)))
    for packet in {0, stop, rng.randrange(stop + 1)}:
        plan = plan_packet(scheme, packet, rng)
        if plan is None:
            assert packet >= stop
            continue
        for size in plan:
            assert size == CHECK or 1 <= size <= MAX_DATA
        joined = b"".join(split_write(payload, plan))
        assert joined[: len(payload)] == payload
        waste, rest = decode_all([joined[len(payload):]])
        assert rest == 0 and all(f.command == Command.WASTE for f in waste)


# ---- SocksAddr ------------------------------------------------------------------------------


def socksaddr_holds(data: bytes, result) -> None:
    addr, used = result
    assert 1 + 4 + 2 <= used <= len(data) and 0 <= addr.port <= 0xFFFF
    assert decode_socksaddr(encode_socksaddr(addr)) == (addr, len(encode_socksaddr(addr)))


@given(socks_addrs, st.binary(max_size=50))
def test_socksaddr_round_trip_and_prefixes(addr, tail):
    wire = encode_socksaddr(addr)
    assert decode_socksaddr(wire + tail) == (canonical(addr), len(wire))
    for cut in range(len(wire)):
        assert decode_socksaddr(wire[:cut]) is NEED_DATA


# ---- UDP over TCP ---------------------------------------------------------------------------


def uot_request_holds(data: bytes, result) -> None:
    request, used = result
    assert isinstance(request, UotRequest) and used <= len(data)


@given(st.booleans(), socks_addrs, st.binary(max_size=50))
def test_uot_request_round_trip(is_connect, addr, tail):
    wire = encode_uot_request(UotRequest(is_connect, addr))
    assert decode_uot_request(wire + tail) == (UotRequest(is_connect, canonical(addr)), len(wire))
    for cut in range(len(wire)):
        assert decode_uot_request(wire[:cut]) is NEED_DATA


def uot_packet_holds(connect: bool):
    def holds(data: bytes, result) -> None:
        addr, payload, used = result
        assert (addr is None) == connect and used <= len(data) and len(payload) <= 0xFFFF
    return holds


@given(st.none() | socks_addrs, st.binary(max_size=2000), st.binary(max_size=30))
def test_uot_packet_round_trip(addr, payload, tail):
    connect = addr is None
    wire = encode_packet(payload, addr)
    want = None if connect else canonical(addr)
    assert decode_packet(wire + tail, connect=connect) == (want, payload, len(wire))
    for cut in range(0, len(wire), max(1, len(wire) // 40)):
        assert decode_packet(wire[:cut], connect=connect) is NEED_DATA


# ---- any bytes: a result, NEED_DATA or a typed error -----------------------------------------


@pytest.mark.parametrize("decode, holds", [
    (lambda d: check_auth(d, HASH), auth_request_holds),
    (decode_socksaddr, socksaddr_holds),
    (decode_uot_request, uot_request_holds),
    (lambda d: decode_packet(d, connect=False), uot_packet_holds(False)),
    (lambda d: decode_packet(d, connect=True), uot_packet_holds(True)),
], ids=["auth", "socksaddr", "uot-request", "uot-packet-address", "uot-packet-connect"])
@given(data=any_bytes)
def test_decoders_take_any_bytes(decode, holds, data):
    """Whatever arrives, a decoder returns NEED_DATA, raises a typed error (AnyTLSError) or
    returns a result for which ``holds`` (each decoder's own properties)."""
    result = decoded_or_typed_error(decode, data)
    if result is None or result is NEED_DATA:
        return
    holds(data, result)


# ---- SOCKS5 UDP header (net/udp.py, the client's UDP ASSOCIATE relay) -----------------------


@given(any_bytes)
def test_socks_udp_any_bytes(data):
    result = decoded_or_typed_error(parse_socks_udp, data)
    if result is None:
        return  # a typed error, or a fragment (FRAG != 0) that the relay drops
    addr, payload = result
    assert isinstance(addr, SocksAddr) and payload == data[len(data) - len(payload):]


@given(socks_addrs, st.binary(max_size=1000))
def test_socks_udp_round_trip(addr, payload):
    assert parse_socks_udp(socks_udp_header(addr) + payload) == (canonical(addr), payload)


@given(socks_addrs, st.integers(1, 255), st.binary(max_size=20))
def test_socks_udp_fragments_are_dropped(addr, frag, payload):
    header = bytearray(socks_udp_header(addr))
    header[2] = frag
    assert parse_socks_udp(bytes(header) + payload) is None


@given(socks_addrs)
def test_socks_udp_truncated_header_is_a_typed_error(addr):
    wire = socks_udp_header(addr)
    for cut in range(len(wire)):
        with pytest.raises(RemoteProtocolError):
            parse_socks_udp(wire[:cut])


def test_the_helpers_tell_typed_errors_from_others():
    assert decoded_or_typed_error(lambda d: parse_scheme(d, strict=True), b"x") is None
    with pytest.raises(PaddingSchemeError):
        parse_scheme(b"", strict=True)
    with pytest.raises(IndexError):
        decoded_or_typed_error(lambda d: d[5], b"")
