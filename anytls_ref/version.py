"""anytls_ref.version — spec "Update Records › Protocol Version 2" and "Compatibility Strategy".

Theory of operation: the client says its version in cmdSettings (``v=``); a server that knows
version 2 answers with cmdServerSettings; a client that hears nothing assumes version 1. The
version-2 features (cmdSYNACK, heartbeats, cmdServerSettings) are used only when both sides
support them: "Otherwise, both ends will run according to version 1."

This codebase implements PROTOCOL_VERSION 3 (version 3 adds no wire change over 2; it is the
number the seed implementation announces). MIN_PROTOCOL_VERSION is the lowest version the server
*may* insist on; by default we still serve version-1 clients without v2 features, and a server
started with ``--min-version 2`` rejects them with cmdAlert (decisions.md D7).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Reason

# [COMPAT-BUMP] "Bump PROTOCOL_VERSION only when introducing incompatible changes. Keep
# MIN_PROTOCOL_VERSION on a previous stable value"
PROTOCOL_VERSION = 3
MIN_PROTOCOL_VERSION = 2


@dataclass(frozen=True, slots=True)
class Features:
    """What one session may use, from the version both ends agreed on."""

    version: int  #: the negotiated version (1 when the peer is a version-1 implementation)

    @property
    def synack(self) -> bool:
        """cmdSYNACK reports the outbound connection of each stream."""
        # [V2-BOTH-SIDES] "The following features should only be enabled when both your server
        # and client support version 2." (the same gate for the two below)
        return self.version >= 2

    @property
    def heartbeat(self) -> bool:
        """cmdHeartRequest / cmdHeartResponse."""
        return self.version >= 2



@dataclass(frozen=True, slots=True)
class ServerDecision:
    """What the server does with a client's declared version."""

    features: Features
    #: version to put in cmdServerSettings, or None to send none
    reply_version: int | None
    #: text of the cmdAlert to send before closing, or None to accept the session
    reject: str | None = None


def server_negotiate(client_version: int, min_version: int = 1) -> ServerDecision:
    """The server's answer to ``v=client_version`` when it insists on at least ``min_version``."""
    if client_version < min_version:
        # [COMPAT-MIN-REJECT] [SESS-MAY-REJECT] "If a peer declares a version lower than
        # MIN_PROTOCOL_VERSION, the server may reject the session and send cmdAlert explaining
        # the reason."
        return ServerDecision(
            Features(client_version),
            None,
            reject=f"protocol version {client_version} is too old, this server requires "
            f"version {min_version} or newer",
        )
    if client_version >= 2:
        # [SESS-SERVER-SETTINGS] "When the client reports version v >= 2, the server should
        # immediately send cmdServerSettings after receiving cmdSettings." We answer the version
        # both speak.
        agreed = min(client_version, PROTOCOL_VERSION)
        return ServerDecision(Features(agreed), agreed)
    # "v2 server + v1 client: ... the server directly disables version 2 features."
    return ServerDecision(Features(1), None)


def client_features(server_version: int | None) -> Features:
    """The client's features: ``None`` (no cmdServerSettings seen) means version 1.

    "The client doesn't receive the version prompt from cmdServerSettings, defaults to version 1,
    and doesn't enable version 2 features."
    """
    if server_version is None:  # [V2-BOTH-SIDES] no cmdServerSettings: version 1
        return Features(1)
    return Features(min(server_version, PROTOCOL_VERSION))


# ---- the client's side of cmdSYNACK -----------------------------------------------------------

#: "The Go implementation starts this timeout only when peerVersion >= 2 and the opened
#: streamId >= 2, and the timeout is currently fixed at 3 seconds." On expiry the whole session
#: is closed, as Go does.
SYNACK_WATCHDOG = 3.0
#: How long the first stream of a new session waits for the server's answer in all (the answer
#: also waits for the server's dial).
FIRST_STREAM_TIMEOUT = 15.0
#: A version ≥ 2 server answers cmdSettings with cmdServerSettings at once; with no answer in
#: this time the server is taken for version 1 (which never sends cmdSYNACK), and the stream
#: counts as open (decisions.md D14).
SERVER_SETTINGS_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class OpenResult:
    """How a stream's opening ended: ``reason`` None means open."""

    reason: Reason | None
    text: str = ""


OPENED = OpenResult(None)


@dataclass(frozen=True, slots=True)
class Wait:
    """No outcome yet: look again after ``seconds`` (or when an answer arrives)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class OpenPlan:
    """How the client treats a stream once its cmdSYN is written."""

    #: the stream is handed to the application only once the server has answered; False: at
    #: once, and an error answer closes it later (decisions.md D34)
    wait: bool
    #: seconds after cmdSYN within which an answer must come, or the session is stuck and is
    #: closed; None: no answer is watched for
    deadline: float | None
    #: while the server's version is unknown, seconds after which silence means version 1
    assume_v1_after: float | None = None


def open_plan(stream_id: int, server_version: int | None, *, wait: bool) -> OpenPlan:
    """The plan for a stream the client opens; ``server_version`` as known at that moment.

    ``wait`` (see ``waits_for_answer``): the stream is handed out only once the server has
    answered; otherwise at once, with Go's watchdog in the background."""
    version_1 = server_version is not None and server_version < 2
    if version_1 or (server_version is None and stream_id > 1):
        # no cmdServerSettings during the first stream, or an old version in it: "The client
        # doesn't receive the version prompt from cmdServerSettings, defaults to version 1, and
        # doesn't enable version 2 features." A version-1 server never answers cmdSYN.
        return OpenPlan(wait=False, deadline=None)
    if not wait:
        # [V2-SYNACK-TIMEOUT] nobody waits, but Go's watchdog is kept: "if no reply is received
        # for a long time, it means there may be a network problem, and the client can close
        # the stuck connection in advance."
        watched = server_version is not None and stream_id >= 2
        return OpenPlan(wait=False, deadline=SYNACK_WATCHDOG if watched else None)
    if server_version is None:
        # a new session's first stream: the server's version comes with its answer
        return OpenPlan(wait=True, deadline=FIRST_STREAM_TIMEOUT,
                        assume_v1_after=SERVER_SETTINGS_WAIT)
    # [V2-SYNACK-TIMEOUT] the watchdog on reused sessions; the first stream of a session also
    # waits for the server's dial
    return OpenPlan(wait=True,
                    deadline=SYNACK_WATCHDOG if stream_id >= 2 else FIRST_STREAM_TIMEOUT)


def waits_for_answer(*, wait_synack: bool, data_sent: bool) -> bool:
    """Does the client hold its application until the server has answered the stream?

    Waiting costs a round trip before the application may send (measured at 100 ms RTT: a
    reused session's first byte 2.0x the Go clients', spec_notes/performance.md), so by default
    the client answers at once, as the Go clients do, and a refused target closes the
    application's connection (decisions.md D34). Two cases still wait: ``wait_synack`` (the
    ``--wait-synack`` option, for applications that want a SOCKS5 error reply), and a stream
    whose application data went out with cmdSYN already (an HTTP proxy request: the answer comes
    before the response could, so waiting is free, and a refusal can still be an HTTP 502).
    """
    return wait_synack or data_sent


def open_outcome(plan: OpenPlan, *, elapsed: float, answer: OpenResult | None,
                 server_version: int | None) -> OpenResult | Wait:
    """What a stream's opening has come to, ``elapsed`` seconds after its cmdSYN.

    ``answer`` is what the session has heard of the stream so far (cmdSYNACK, an early FIN, the
    session's end; data counts as open), ``server_version`` the version known now. A
    ``Reason.NO_SYNACK`` outcome means the session is stuck: the caller closes it.
    """
    if answer is not None:
        return answer
    if server_version is not None and server_version < 2:
        return OPENED  # a version-1 server: no answer will come
    deadline = plan.deadline
    if server_version is None and plan.assume_v1_after is not None:
        if elapsed >= plan.assume_v1_after:
            return OPENED  # no cmdServerSettings: a version-1 server (D14)
        deadline = plan.assume_v1_after if deadline is None else min(deadline,
                                                                     plan.assume_v1_after)
    if deadline is None:
        return OPENED
    if elapsed >= deadline:
        return OpenResult(Reason.NO_SYNACK, "no cmdSYNACK from the server in time")
    return Wait(deadline - elapsed)
