"""Spec "Protocol Parameters"."""

from __future__ import annotations

import pytest

from anytls_ref.padding import DEFAULT_SCHEME
from anytls_ref.net.server import ServerConfig
from anytls_ref.params import ClientParams


@pytest.mark.spec("PARAM-IDLE-CHECK-INTERVAL")
@pytest.mark.spec("PARAM-IDLE-TIMEOUT")
@pytest.mark.spec("PARAM-MIN-IDLE")
def test_client_defaults_are_the_spec_examples():
    params = ClientParams("pw")
    assert params.idle_session_check_interval == 30.0  # "such as 30s"
    assert params.idle_session_timeout == 60.0  # "such as 60s"
    assert params.min_idle_session == 0


def test_short_idle_timers_are_not_clamped():
    # decisions.md D9: Go raises values <= 5 s to 30 s; we keep what we are given
    params = ClientParams("pw", idle_session_check_interval=0.5, idle_session_timeout=2.0)
    assert (params.idle_session_check_interval, params.idle_session_timeout) == (0.5, 2.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_session_check_interval": 0},
        {"idle_session_timeout": -1},
        {"min_idle_session": -1},
    ],
)
def test_client_params_refuse_impossible_values(kwargs):
    with pytest.raises(ValueError):
        ClientParams("pw", **kwargs)


@pytest.mark.spec("PARAM-PADDING-SCHEME")
def test_server_padding_scheme_defaults_to_the_default_scheme():
    assert ServerConfig(("127.0.0.1", 0), "pw").padding_scheme == DEFAULT_SCHEME
