"""anytls_ref.spec — spec "anytls 0.3.2" (the whole document): the requirement catalogue.

Theory of operation. Every normative sentence of the spec is one ``Requirement`` with a stable
id. The id links three places, so a reader can go from a rule to the code and the tests:

* the code line that enforces it carries ``# [ID] "the quoted sentence"`` (grep for ``[ID]``);
* each test that pins it carries ``@pytest.mark.spec("ID")``;
* spec_notes/requirements.md is the generated table id → level → text → code → tests
  (``python -m anytls_ref.tools.spec_report --markdown``; tests/test_spec_coverage.py checks it
  is current and fails when a MUST has no test).

How the sentences were chosen (mechanically, so the walk can be repeated on a new spec text):

* a sentence with a normative word is catalogued, at the level of that word:
  must, needs to, Required → MUST; should, suggested, recommended → SHOULD;
  may, can, has the right to, Optional (in the permission sense) → MAY.
  "should not and cannot" (no data on most commands) is MUST: "cannot" leaves no choice.
* an instruction in the imperative ("send the packet directly", "create a new session"), or a
  step of the reuse logic the client "must implement", is catalogued as MUST; the imperatives
  under "Upgrade guidance" as SHOULD (the heading makes them advice).
* "will" stating what the server does when the md5s differ is catalogued as SHOULD: the client's
  MUST (PAD-UPDATE-NEW-SESSIONS) depends on it.
* every other sentence with one of those words (rationale, examples, an epistemic "may",
  descriptions of anytls-go or of a version-1 peer) is listed in ``NOT_CATALOGUED`` with the
  reason, together with some key sentences that have no such word (wire formats, definitions).
  tests/test_spec_coverage.py checks that every normative word of the pinned spec text
  (spec_notes/anytls-protocol.md) falls inside a catalogued or a listed sentence.

The quoted texts are the spec's own words (markdown links and emphasis dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: The spec this catalogue was walked from: its first line, and the sha256 of the pinned copy.
SPEC_VERSION = "anytls 0.3.2"
SPEC_FILE = "spec_notes/anytls-protocol.md"
SPEC_SHA256 = "d9a1a0e99bb1e5063f23e2b8958217783447b752de2a5117e01c20cb228debb2"

Level = Literal["MUST", "SHOULD", "MAY"]
LEVELS: tuple[Level, ...] = ("MUST", "SHOULD", "MAY")


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str  #: stable id, e.g. "SESS-SYN-BEFORE-SETTINGS"; used in ``[ID]`` tags and markers
    section: str  #: the spec heading path, e.g. "Server › Session"
    level: Level
    text: str  #: the spec sentence(s), verbatim but for markdown links and emphasis
    keyword: str  #: the word(s) that set the level, or why an unmarked sentence counts
    note: str = ""  #: how this implementation reads it, when that is not obvious


@dataclass(frozen=True, slots=True)
class NotCatalogued:
    section: str
    text: str
    reason: str


R = Requirement

REQUIREMENTS: tuple[Requirement, ...] = (
    # ---- Client › Session ------------------------------------------------------------------
    R("SESS-SETTINGS-FIRST", "Client › Session", "MUST",
      "The client must immediately send `cmdSettings` when starting a new session.", "must"),
    R("FRAME-NO-DATA", "Client › Session › command", "MUST",
      "For different types of commands, unless mentioned below, this type of command should not "
      "and cannot carry data.", "should not and cannot",
      "SYN, FIN, cmdHeartRequest and cmdHeartResponse never carry data: Go readers do not "
      "consume it, so it would desynchronise them. Data received on them is skipped."),
    R("SESS-WASTE-DISCARD", "Client › Session › cmdWaste", "SHOULD",
      "After receiving cmdWaste, either party should read its data completely and silently "
      "discard it.", "should"),
    R("SESS-HEART-RESPOND", "Client › Session › cmdHeartRequest", "SHOULD",
      "After receiving cmdHeartRequest, either party should send cmdHeartResponse to the other "
      "party.", "should", "Answered on the same stream id, as every implementation does."),
    R("SESS-SYN-SID-INCREASING", "Client › Session › cmdSYN", "SHOULD",
      "The client should generate a monotonically increasing streamId within the Session for "
      "each Stream.", "should"),
    R("SESS-SYNACK-AFTER-DIAL", "Client › Session › cmdSYNACK", "SHOULD",
      "If the client reports version `v` >= 2, after the server receives cmdSYN, it should send "
      "a cmdSYNACK packet with the corresponding streamId after the proxy outbound connection "
      "TCP handshake is completed.", "should"),
    R("SESS-SYNACK-EARLY", "Client › Session › cmdSYNACK", "MAY",
      "If your server software architecture does not support reporting outbound connection "
      "status, you can also directly send cmdSYNACK after receiving cmdSYN.", "can",
      "Not used: our server reports the outcome of the dial (SESS-SYNACK-AFTER-DIAL)."),
    R("SESS-SYNACK-ERROR-CLOSE", "Client › Session › cmdSYNACK", "MUST",
      "After the client receives the error information, it must close the corresponding "
      "stream.", "must"),
    R("SESS-SETTINGS-CLIENT-NAME", "Client › Session › cmdSettings", "SHOULD",
      "third-party implementations should fill in the real software name and version number, "
      "there is no point in disguising", "should"),
    R("SESS-ALERT-LOG-CLOSE", "Client › Session › cmdAlert", "MUST",
      "The client needs to read it and print it to the log, then both parties close the "
      "session.", "needs to"),
    R("PAD-UPDATE-SEND", "Client › Session › cmdUpdatePaddingScheme", "SHOULD",
      "When the server receives a `padding-md5` from the client that is different from the "
      "server, it will send `cmdUpdatePaddingScheme` to request the client to update.", "will",
      "A missing padding-md5 counts as different."),
    R("PAD-STORE-PER-CLIENT", "Client › Session › cmdUpdatePaddingScheme", "SHOULD",
      "The client should store `paddingScheme` in the Client object, that is, the "
      "`paddingScheme` issued by the server only acts on the Client connected to the server",
      "should", "anytls-go updates a process-wide default instead; we follow the spec."),
    R("PAD-UPDATE-NEW-SESSIONS", "Client › Session › cmdUpdatePaddingScheme", "MUST",
      "If `cmdUpdatePaddingScheme` is received, subsequent new sessions must use the "
      "`paddingScheme` issued by the server", "must",
      "The session that received it keeps the scheme it started with."),
    # ---- paddingScheme specific meaning and implementation -----------------------------------
    R("PAD-PADDING0-WITH-AUTH", "paddingScheme specific meaning and implementation", "SHOULD",
      "The client should send the padding of this length together with sha256(password).",
      "should", "In one TLS record: servers decide on their first read."),
    R("PAD-SPLIT-REMAINDER", "paddingScheme specific meaning and implementation", "MUST",
      "if there is still remaining user data after packet splitting is completed, the "
      "remaining data is sent directly.", "a rule of the strategy, like PAD-SPLIT-WASTE"),
    R("PAD-SPLIT-WASTE", "paddingScheme specific meaning and implementation", "MUST",
      "If the user data is exhausted before packet splitting is completed, send `cmdWaste` "
      "with data (suggested to use 0) for padding.", "imperative; 'suggested' for the zeros",
      "Waste data is zero bytes. A record that ends the payload is topped up with a Waste frame "
      "when one fits (it costs a 7-byte header)."),
    R("PAD-CHECK-MARK", "paddingScheme specific meaning and implementation", "MUST",
      "`c` in the strategy is a check symbol, meaning: if the user data has no remaining after "
      "the previous packet splitting is completed, directly return to this Write TLS, and no "
      "longer send subsequent padding packets.", "imperative"),
    R("PAD-PACKET1", "paddingScheme specific meaning and implementation", "SHOULD",
      "Packet `1` should include: `cmdSettings` and the first Stream's `cmdSYN + "
      "cmdPSH(proxy target address)`", "should"),
    R("PAD-PACKET2", "paddingScheme specific meaning and implementation", "SHOULD",
      "Packet `2` should be the first data packet proxied from the user, such as TLS "
      "ClientHello.", "should"),
    R("PAD-UNDEFINED-DIRECT", "paddingScheme specific meaning and implementation", "MUST",
      "If the sending strategy of a certain packet before stop is not defined by PaddingScheme, "
      "send the packet directly.", "imperative"),
    # ---- Client › Reuse -----------------------------------------------------------------------
    R("REUSE-IMPLEMENT", "Client › Reuse", "MUST",
      "The client must implement session layer reuse functionality.", "must"),
    R("REUSE-NEWEST-IDLE", "Client › Reuse", "MUST",
      "Before creating a new session layer, you must check if there is an \"idle\" session. If "
      "there is, take the session with the largest `Seq`, and open a Stream on this Session to "
      "carry the user proxy request.", "must"),
    R("REUSE-NEW-SESSION", "Client › Reuse", "MUST",
      "If there is no idle session, create a new session.", "imperative"),
    R("REUSE-SEQ-INCREASING", "Client › Reuse", "SHOULD",
      "The sequence number `Seq` of the Session should be monotonically increasing within a "
      "Client.", "should"),
    R("REUSE-RETURN-IDLE", "Client › Reuse", "MUST",
      "When the Stream is closed after the proxy relay is completed, if the event loop of the "
      "corresponding Session does not encounter an error, the Session is put into the \"idle "
      "session pool\", and the idle start time of the Session is set to now.",
      "a step of the reuse logic the client must implement"),
    R("REUSE-CLEANUP", "Client › Reuse", "MUST",
      "Regularly (such as 30s) check the session pool, close and delete sessions that have been "
      "idle for more than a certain time (such as 60s).", "imperative",
      "Defaults 30 s and 60 s; minIdleSession newest sessions are kept (PARAM-MIN-IDLE)."),
    # ---- Server › Authentication --------------------------------------------------------------
    R("AUTH-SERVER-VERIFY", "Server › Authentication", "MUST",
      "Read the first data packet, verify the authentication request (including completely "
      "reading padding0). If it matches, start the session loop.", "imperative",
      "The decision is taken on the first read only; padding0 bytes still missing after it are "
      "read and dropped before the first frame."),
    R("AUTH-SERVER-REJECT", "Server › Authentication", "MUST",
      "If it doesn't match, close the connection directly or \"fallback\" to any \"legal\" L7 "
      "application.", "imperative",
      "With --fallback HOST:PORT every byte already read is relayed to that service first."),
    # ---- Server › Session ---------------------------------------------------------------------
    R("SESS-SYN-BEFORE-SETTINGS", "Server › Session", "MUST",
      "For a new Session, if the server receives `cmdSYN` before receiving the client's "
      "`cmdSettings`, it must reject this session.", "must",
      "Rejected with cmdAlert, then closed (SESS-REJECT-ALERT)."),
    R("SESS-MAY-REJECT", "Server › Session", "MAY",
      "The server has the right to reject client connections that do not correctly implement "
      "this protocol (including but not limited to `cmdUpdatePaddingScheme` and connection "
      "reuse) and have outdated versions (with known issues).", "has the right to",
      "Used for versions, only when started with --min-version; and for a client that sends "
      "stream data without opening the stream with cmdSYN (decisions.md D31)."),
    R("SESS-REJECT-ALERT", "Server › Session", "MUST",
      "When the server rejects such clients, it must send `cmdAlert` to explain the reason, "
      "then close the Session.", "must"),
    R("SESS-SERVER-SETTINGS", "Server › Session", "SHOULD",
      "When the client reports version `v` >= 2, the server should immediately send "
      "cmdServerSettings after receiving cmdSettings.", "should",
      "It answers v=min(client's v, PROTOCOL_VERSION)."),
    # ---- Server › Proxy -----------------------------------------------------------------------
    R("PROXY-SERVER-IDLE-CLEANUP", "Server › Proxy", "MAY",
      "The server can regularly clean up Sessions that have been idle for a long time.", "can",
      "Not used: a server session lives until the client closes it or the connection fails."),
    R("PROXY-UDP-UOT", "Server › Proxy", "SHOULD",
      "For requests with target address `sp.v2.udp-over-tcp.arpa`, the sing-box udp-over-tcp "
      "protocol should be used for processing.", "should"),
    # ---- Protocol Parameters ------------------------------------------------------------------
    R("PARAM-NO-TLS", "Protocol Parameters", "SHOULD",
      "TLS parameters should be specified in another configuration section.", "should"),
    R("PARAM-PASSWORD", "Protocol Parameters › Client", "MUST",
      "`password` Required, string type, password for protocol authentication.", "Required"),
    R("PARAM-IDLE-CHECK-INTERVAL", "Protocol Parameters › Client", "MAY",
      "`idleSessionCheckInterval` Optional, time.Duration type, interval for checking idle "
      "sessions.", "Optional"),
    R("PARAM-IDLE-TIMEOUT", "Protocol Parameters › Client", "MAY",
      "`idleSessionTimeout` Optional, time.Duration type, in the check, close sessions that "
      "have been idle for longer than this duration.", "Optional"),
    R("PARAM-MIN-IDLE", "Protocol Parameters › Client", "MAY",
      "`minIdleSession` Optional, int type, in the check, keep at least the first n idle "
      "sessions from being closed, that is, reserve a certain number of \"prepared sessions\" "
      "for subsequent proxies.", "Optional"),
    R("PARAM-PADDING-SCHEME", "Protocol Parameters › Server", "MAY",
      "`paddingScheme` Optional, string type, padding scheme.", "Optional"),
    # ---- Update Records › Protocol Version 2 --------------------------------------------------
    R("V2-BOTH-SIDES", "Update Records › Protocol Version 2", "SHOULD",
      "The following features should only be enabled when both your server and client support "
      "version 2. Otherwise, both ends will run according to version 1.", "should",
      "cmdSYNACK, heartbeats and cmdServerSettings. A client that gets no cmdServerSettings "
      "runs version 1."),
    R("V2-SYNACK-TIMEOUT", "Update Records › Protocol Version 2 › cmdSYNACK", "MAY",
      "Since version 2 clients can expect a reply from the server when opening a stream, if no "
      "reply is received for a long time, it means there may be a network problem, and the "
      "client can close the stuck connection in advance.", "can",
      "As Go: 3 s for streams with id >= 2 when the server is version 2 or newer."),
    R("COMPAT-MIN-REJECT", "Update Records › Compatibility Strategy", "MAY",
      "If a peer declares a version lower than `MIN_PROTOCOL_VERSION`, the server may reject "
      "the session and send `cmdAlert` explaining the reason.", "may",
      "Off by default (version-1 clients are served without version-2 features); on with "
      "--min-version 2."),
    R("COMPAT-BUMP", "Update Records › Compatibility Strategy", "SHOULD",
      "Bump `PROTOCOL_VERSION` only when introducing incompatible changes. Keep "
      "`MIN_PROTOCOL_VERSION` on a previous stable value to allow staged rollouts and "
      "interoperability with older clients/servers.", "imperative under 'Upgrade guidance'"),
    R("COMPAT-OLD-PEER-TESTS", "Update Records › Compatibility Strategy", "SHOULD",
      "Add automated tests (unit/integration) that simulate older peers (e.g., `v=2`) to "
      "ensure compatibility is preserved; these tests are recommended to run in CI.",
      "imperative under 'Upgrade guidance'; recommended"),
)

del R

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}

#: Sentences with a normative-looking word that are not requirements, and some key sentences
#: without one (wire formats, definitions), each with where it lives instead.
NOT_CATALOGUED: tuple[NotCatalogued, ...] = (
    NotCatalogued(
        "Client › Authentication",
        "After the TLS handshake is completed, the client immediately sends an authentication "
        "request:",
        "wire format, no normative word: auth.encode_auth / check_auth, tests/test_auth.py and "
        "tests/vectors/"),
    NotCatalogued(
        "Client › Authentication",
        "After successful authentication, the server enters the session loop. After "
        "authentication failure, the server closes the connection (or falls back to HTTP "
        "service).",
        "said again as instructions under Server › Authentication: AUTH-SERVER-VERIFY, "
        "AUTH-SERVER-REJECT"),
    NotCatalogued(
        "Client › Session",
        "After authentication is completed, the client & server start a session layer event loop "
        "on top of the TLS protocol. The session layer frame format is as follows:",
        "wire format: frame.py, tests/test_frame.py"),
    NotCatalogued(
        "Client › Session",
        "Each `Session` now provides a single logical stream (historically identified as "
        "`sid == 1`).",
        "describes anytls-go: our client carries one stream at a time per session and "
        "increments the sid on reuse; our server accepts overlapping streams (rules.py)"),
    NotCatalogued(
        "Client › Session › cmdUpdatePaddingScheme",
        "The Go implementation currently updates a process-wide default `paddingScheme` after "
        "receiving `cmdUpdatePaddingScheme`, and subsequent new sessions use that updated "
        "global default.",
        "describes anytls-go; we follow PAD-STORE-PER-CLIENT"),
    NotCatalogued(
        "Client › Session › cmdUpdatePaddingScheme",
        "theoretically each client only needs to send a small amount of data when starting "
        "(ideally only the first connected pkt 0~2), and can update to the characteristics "
        "specified by the server after receiving the first `cmdUpdatePaddingScheme` from the "
        "server. Therefore, theoretically the proportion of connections with known "
        "characteristics that can be captured by GFW will be very low.",
        "rationale: 'needs to', 'can' and 'will' describe the design's effect"),
    NotCatalogued(
        "paddingScheme specific meaning and implementation",
        "`stop` indicates which packet to stop processing padding, for example: `stop=8` means "
        "only processing packets `0~7`.",
        "definition: padding.plan_packet is None from stop on, tests/test_padding.py"),
    NotCatalogued(
        "paddingScheme specific meaning and implementation",
        "Strategy example: The above paddingScheme will split packet `2` into 5 packets with "
        "sizes between 400-500 / 500-1000 (the size here refers to the size of TLS PlainText, "
        "not including TLS encryption and other overhead).",
        "an example ('will') and a definition: split_write's sizes are plaintext record lengths"),
    NotCatalogued(
        "paddingScheme specific meaning and implementation",
        "The packet counter is based on the number of Write TLS times.",
        "definition: padding.Padder counts writes; the authentication request is packet 0"),
    NotCatalogued(
        "Client › Proxy",
        "For TCP, after each Stream is opened, the client sends the target address of the proxy "
        "request in SocksAddr format to the server, and then starts bidirectional proxy relay.",
        "wire format: socksaddr.py, tests/test_socksaddr.py"),
    NotCatalogued(
        "Client › Proxy",
        "For UDP, sing-box's udp-over-tcp 2 protocol is now used, which is equivalent to "
        "proxying the TCP request `sp.v2.udp-over-tcp.arpa`.",
        "wire format: uot.py, tests/test_uot.py; the server's side is PROXY-UDP-UOT"),
    NotCatalogued(
        "Server › Proxy",
        "After the proxy relay is completed, the server closes the Stream but does not close the "
        "Session.",
        "no normative word: net/server.py closes the stream only (FIN), the session stays"),
    NotCatalogued(
        "Update Records › Protocol Version 2",
        "Can use cmdSYNACK to report server outbound connection status, and detect and recover "
        "stuck tunnel connections",
        "a feature of version 2 (a capability, not a permission); see SESS-SYNACK-AFTER-DIAL, "
        "V2-SYNACK-TIMEOUT"),
    NotCatalogued(
        "Update Records › Protocol Version 2",
        "Server can send negotiation information to client (cmdServerSettings)",
        "a feature of version 2; see SESS-SERVER-SETTINGS"),
    NotCatalogued(
        "Update Records › Protocol Version 2",
        "v2 server + v1 client: Since the client sends version 1, the server directly disables "
        "version 2 features.",
        "restates V2-BOTH-SIDES (version.server_negotiate)"),
    NotCatalogued(
        "Update Records › Protocol Version 2",
        "v1 server + v2 client: Since the client sends version 2, the server doesn't recognize "
        "it and won't send cmdServerSettings to the client. The client doesn't receive the "
        "version prompt from cmdServerSettings, defaults to version 1, and doesn't enable "
        "version 2 features.",
        "describes a version-1 server; the client's half restates V2-BOTH-SIDES "
        "(version.client_features)"),
    NotCatalogued(
        "Update Records › Protocol Version 2 › cmdSYNACK",
        "When the tunnel connection is unexpectedly disconnected and the client does not receive "
        "RST, the behavior of protocol version 1 may cause very long timeouts in extreme cases "
        "(depending on system settings).",
        "an epistemic 'may' (a possibility, not a permission)"),
    NotCatalogued(
        "Update Records › Protocol Version 2 › cmdSYNACK",
        "The Go implementation starts this timeout only when `peerVersion >= 2` and the opened "
        "`streamId >= 2`, and the timeout is currently fixed at 3 seconds.",
        "describes anytls-go; version.open_plan does the same (SYNACK_WATCHDOG)"),
    NotCatalogued(
        "Update Records › Compatibility Strategy",
        "PROTOCOL_VERSION: the current protocol version implemented by this codebase (set to "
        "`3`).",
        "definition: version.PROTOCOL_VERSION, tests/test_version.py"),
    NotCatalogued(
        "Update Records › Compatibility Strategy",
        "MIN_PROTOCOL_VERSION: the minimum protocol version this implementation will accept for "
        "compatibility (set to `2`).",
        "definition ('will'): version.MIN_PROTOCOL_VERSION, tests/test_version.py"),
    NotCatalogued(
        "Update Records › Compatibility Strategy",
        "The server records the peer's declared version if it is >= `MIN_PROTOCOL_VERSION` and "
        "echoes that version back in `cmdServerSettings`.",
        "describes the codebase the spec came from; we answer v=min(peer, PROTOCOL_VERSION) "
        "and by default serve version-1 clients without version-2 features "
        "(version.server_negotiate)"),
    NotCatalogued(
        "Update Records › Compatibility Strategy",
        "Protocol features are gated by the negotiated peer version. For example, `cmdSYNACK`, "
        "heartbeats, and `cmdServerSettings` are only used when the negotiated version indicates "
        "support.",
        "restates V2-BOTH-SIDES (version.Features)"),
)

#: The words that make a sentence look normative (tests/test_spec_coverage.py walks the spec
#: for them; each hit must fall inside a catalogued or a NOT_CATALOGUED sentence).
NORMATIVE_WORDS = re.compile(
    r"\b(must|should|may|can|cannot|needs? to|required|optional|has the right|recommended|"
    r"suggested|shall|will|won't)\b",
    re.IGNORECASE,
)

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def plain(text: str) -> str:
    """Markdown → comparable plain text: links keep their label; emphasis, code marks and
    repeated whitespace go."""
    text = _LINK.sub(r"\1", text)
    text = text.replace("**", "").replace("`", "")
    return " ".join(text.split())
