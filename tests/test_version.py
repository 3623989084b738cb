"""Spec "Update Records › Protocol Version 2" and "Compatibility Strategy"."""

from __future__ import annotations

import pytest

from anytls_ref.version import (
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    Features,
    client_features,
    server_negotiate,
)


@pytest.mark.spec("COMPAT-BUMP")
def test_version_symbols():
    assert PROTOCOL_VERSION == 3
    assert MIN_PROTOCOL_VERSION == 2


@pytest.mark.spec("V2-BOTH-SIDES")
@pytest.mark.parametrize("version, v2", [(1, False), (2, True), (3, True)])
def test_version_2_features_need_version_2(version, v2):
    features = Features(version)
    assert features.synack is features.heartbeat is v2


@pytest.mark.spec("V2-BOTH-SIDES")
def test_v1_client_is_served_without_v2_features_by_default():
    # "v2 server + v1 client: ... the server directly disables version 2 features." (D7)
    decision = server_negotiate(1)
    assert decision.reject is None
    assert decision.reply_version is None  # no cmdServerSettings
    assert not decision.features.synack


@pytest.mark.spec("COMPAT-MIN-REJECT")
@pytest.mark.spec("SESS-MAY-REJECT")
def test_v1_client_is_rejected_when_the_server_requires_version_2():
    decision = server_negotiate(1, min_version=MIN_PROTOCOL_VERSION)
    assert decision.reject is not None
    assert "version 1" in decision.reject and "version 2" in decision.reject


@pytest.mark.spec("SESS-SERVER-SETTINGS")
@pytest.mark.spec("COMPAT-OLD-PEER-TESTS")
@pytest.mark.parametrize("client, reply", [(2, 2), (3, 3), (4, 3), (99, 3)])
def test_server_answers_the_version_both_speak(client, reply):
    # ServerSettings carries min(client's v, PROTOCOL_VERSION) (decisions.md D14)
    decision = server_negotiate(client, min_version=MIN_PROTOCOL_VERSION)
    assert decision.reject is None
    assert decision.reply_version == reply
    assert decision.features == Features(reply)


@pytest.mark.spec("V2-BOTH-SIDES")
def test_client_without_server_settings_runs_version_1():
    # "The client doesn't receive the version prompt from cmdServerSettings, defaults to version 1"
    assert client_features(None) == Features(1)
    assert not client_features(None).synack


@pytest.mark.spec("V2-BOTH-SIDES")
@pytest.mark.parametrize("server, agreed", [(1, 1), (2, 2), (3, 3), (7, 3)])
def test_client_features_follow_server_settings_capped_at_our_version(server, agreed):
    assert client_features(server) == Features(agreed)
