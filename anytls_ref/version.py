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

    @property
    def server_settings(self) -> bool:
        """cmdServerSettings is sent after cmdSettings."""
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
        # MIN_PROTOCOL_VERSION, the server may reject
        # the session and send cmdAlert explaining the reason."
        return ServerDecision(
            Features(client_version),
            None,
            reject=f"protocol version {client_version} is too old, this server requires "
            f"version {min_version} or newer",
        )
    if client_version >= 2:
        # [SESS-SERVER-SETTINGS] "When the client reports version v >= 2, the server should
        # immediately send
        # cmdServerSettings after receiving cmdSettings." We answer the version both speak.
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
