"""anytls_ref.params — spec "Protocol Parameters".

Theory of operation: "The anytls protocol parameters do not include TLS parameters." The client
has a password and the three reuse knobs (here); the server's one parameter, the padding scheme,
is ``ServerConfig.padding_scheme`` (net/server.py). Defaults are the spec's own examples ("such
as 30s", "such as 60s"). Unlike Go we do not raise interval or timeout values of 5 s or less to
30 s (decisions.md D9): tests and users may want them short.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_IDLE_CHECK_INTERVAL = 30.0
DEFAULT_IDLE_TIMEOUT = 60.0


# [PARAM-NO-TLS] "TLS parameters should be specified in another configuration section." (net/tls)
@dataclass(frozen=True, slots=True)
class ClientParams:
    #: [PARAM-PASSWORD] "Required, string type, password for protocol authentication."
    password: str
    #: [PARAM-IDLE-CHECK-INTERVAL] seconds ("Optional")
    idle_session_check_interval: float = DEFAULT_IDLE_CHECK_INTERVAL
    #: [PARAM-IDLE-TIMEOUT] seconds ("Optional")
    idle_session_timeout: float = DEFAULT_IDLE_TIMEOUT
    #: [PARAM-MIN-IDLE] idle sessions kept open however long idle ("Optional")
    min_idle_session: int = 0

    def __post_init__(self) -> None:
        if self.idle_session_check_interval <= 0 or self.idle_session_timeout <= 0:
            raise ValueError("idle check interval and idle timeout must be positive")
        if self.min_idle_session < 0:
            raise ValueError("min idle sessions must be 0 or more")

