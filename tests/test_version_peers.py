"""Version negotiation against simulated older peers (spec "Protocol Version 2", "Compatibility
Strategy": "Add automated tests ... that simulate older peers").

Our Server with each scripted client (anytls_ref/probe/rawclient.ScriptedClient, versions 1,
2, 3) and our Client with each scripted server (RawServer, versions 1, 2, 3). The version-2
features — cmdServerSettings, cmdSYNACK, the client's 3 s SYNACK watchdog — must be on exactly
when both sides speak version 2 or newer:

    v2 server + v1 client: "the server directly disables version 2 features"
    v1 server + v2 client: "won't send cmdServerSettings ... the client ... defaults to
                            version 1, and doesn't enable version 2 features"
"""

from __future__ import annotations

import pytest

from anytls_ref.frame import Command
from anytls_ref.net.client import Client
from anytls_ref.version import SYNACK_WATCHDOG
from anytls_ref.errors import StreamOpenError
from anytls_ref.probe.rawclient import ScriptedClient
from anytls_ref.probe.rawserver import RawServer
from anytls_ref.probe.scripting import ExpectationFailed, eventually, frame
from anytls_ref.settings import ClientSettings
from anytls_ref.socksaddr import SocksAddr
from anytls_ref.version import PROTOCOL_VERSION

PASSWORD = "versions"






# ---- our server, scripted clients --------------------------------------------------------


@pytest.mark.spec("V2-BOTH-SIDES")
@pytest.mark.spec("COMPAT-OLD-PEER-TESTS")
@pytest.mark.parametrize("version, answered", [(1, None), (2, 2), (3, 3)],
                         ids=["v1-client", "v2-client", "v3-client"])
def test_our_server_with_each_client_version(make_server, echo_server, version, answered):
    server = make_server()
    with ScriptedClient(server.address, PASSWORD, version) as peer:
        # a v1 client fails on any cmdServerSettings / cmdSYNACK it reads (it would not know them)
        assert peer.start() == answered
        assert peer.features.synack is (answered is not None)
        assert peer.open(1, *echo_server.address) is None  # v2+: an empty SYNACK; v1: nothing
        peer.send_data(1, b"which version?")
        assert peer.recv_data(1, 14) == b"which version?"
        if answered is not None:  # heartbeats are a version-2 feature too
            peer.send_frame(Command.HEART_REQUEST, 1)
            peer.expect(Command.HEART_RESPONSE, sid=1)


@pytest.mark.spec("COMPAT-MIN-REJECT")
@pytest.mark.spec("SESS-REJECT-ALERT")
@pytest.mark.parametrize("min_version", [1, 2])
def test_a_v1_client_is_rejected_only_with_min_version_2(make_server, echo_server, min_version):
    server = make_server(min_version=min_version)
    with ScriptedClient(server.address, PASSWORD, 1) as v1:
        v1.start()
        if min_version == 1:
            v1.open(1, *echo_server.address)
            v1.send_data(1, b"served")
            assert v1.recv_data(1, 6) == b"served"
        else:
            alert = v1.expect(Command.ALERT)
            assert b"version 1" in alert.data
            assert v1.closed_within(2.0)
    # a version-2 client is served by both
    with ScriptedClient(server.address, PASSWORD, 2) as v2:
        assert v2.start() == 2


def test_the_scripted_v1_client_really_refuses_v2_frames(make_server, echo_server):
    # the check above means something only if a v1 client notices a v2 frame: a v2 session
    # seen through version-1 eyes fails at its cmdSYNACK
    server = make_server()
    with ScriptedClient(server.address, PASSWORD, 2) as peer:
        peer.start()
        peer.version = 1  # from here on it reads like a version-1 client
        peer.open_stream(1, *echo_server.address)
        with pytest.raises(ExpectationFailed, match="version-1 client got SYNACK"):
            peer.read_frame()


# ---- our client, scripted servers -----------------------------------------------------------


def settings_sent(raw: RawServer) -> list[ClientSettings]:
    return [ClientSettings.decode(e.data) for e in raw.find("SETTINGS")]


def echo_once(client: Client, data: bytes):
    stream = client.open_stream(SocksAddr("127.0.0.1", 9))  # the raw server echoes; no dial
    stream.sendall(data)
    assert stream.recv(timeout=2.0) == data
    return stream


@pytest.mark.spec("V2-BOTH-SIDES")
@pytest.mark.spec("V2-SYNACK-TIMEOUT")
@pytest.mark.spec("COMPAT-OLD-PEER-TESTS")
def test_our_client_with_a_v1_server_runs_version_1_and_arms_no_watchdog(make_client):
    with RawServer(PASSWORD, version=1) as raw:  # never sends ServerSettings or SYNACK
        client = make_client(raw.address)
        # the first stream waits net.client.SERVER_SETTINGS_WAIT (2 s), then assumes v1
        first = echo_once(client, b"one")
        session = first.session
        assert session.server_version is None and session.rules.features.version == 1
        first.close()
        eventually(lambda: client.idle_sessions() == [session], 2.0, "session idle")

        # stream 2 on the reused session: against a version-2 server it would be killed after
        # SYNACK_WATCHDOG seconds without a SYNACK; a version-1 server never sends one
        second = echo_once(client, b"two")
        assert second.session is session and second.stream_id == 2
        assert not session.closed.wait(SYNACK_WATCHDOG + 0.5), "the watchdog fired against v1"
        second.sendall(b"still open")
        assert second.recv(timeout=2.0) == b"still open"
        second.close()
        assert [s.version for s in settings_sent(raw)] == [PROTOCOL_VERSION]
        assert [e.stream_id for e in raw.find("SYN")] == [1, 2]
        assert not raw.find("HEART_REQUEST")


@pytest.mark.spec("V2-BOTH-SIDES")
@pytest.mark.spec("SESS-SYNACK-ERROR-CLOSE")
@pytest.mark.parametrize("server_version", [2, 3])
def test_our_client_with_a_v2_or_v3_server_runs_version_2_rules(make_client, server_version):
    class RefusesSid2(RawServer):
        def on_syn(self, conn, stream_id):
            if stream_id == 2:  # the dial "failed": SYNACK with the error, then FIN
                conn.send(frame(Command.SYNACK, 2, b"refused"))
                conn.fin(2)
            else:
                super().on_syn(conn, stream_id)

    with RefusesSid2(PASSWORD, version=server_version) as raw:
        client = make_client(raw.address, wait_synack=True)  # the refusal reaches the caller
        first = echo_once(client, b"one")  # no 2 s wait: the server answered at once
        session = first.session
        assert session.server_version == server_version
        assert session.rules.features.synack
        first.close()
        eventually(lambda: client.idle_sessions() == [session], 2.0, "session idle")
        # the SYNACK error reaches the caller, and only that stream ends
        with pytest.raises(StreamOpenError, match="refused"):
            client.open_stream(SocksAddr("127.0.0.1", 9))
        third = echo_once(client, b"three")
        assert third.session is session and third.stream_id == 3
        third.close()
