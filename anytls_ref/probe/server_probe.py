"""``anytls-ref probe server HOST:PORT -p PW``: where does an anytls server depart from the spec?

Each check opens its own TLS connection(s) with a scripted client (rawclient.ScriptedClient or a
bare RawClient), sends exactly what the check is about, and judges what comes back. Streams go
to the probe's own targets: an echo server (a stream that must work) and a port nobody listens
on (a dial that must fail), both on the target host, 127.0.0.1 unless ``--target-host`` says
otherwise. With 127.0.0.1 the stream checks need the server to run on the machine the probe runs
on; for a remote server, give an address of the probe's machine that the server can reach
(``--target-host 192.0.2.7``), else they FAIL with "no SYNACK"/"refused".

The checks themselves, and the helpers they share, are in server_checks.py.
"""

from __future__ import annotations

import ssl
import time

from ..padding import DEFAULT
from .rawclient import RawClient, ScriptedClient, insecure_client_context
from .report import FAIL, CheckResult
from .scripting import DEFAULT_TIMEOUT, ExpectationFailed
from .server_checks import CHECKS
from .targets import EchoServer, refused_port

#: Where the probe's targets listen unless told (--target-host): the server must run here too.
DEFAULT_TARGET_HOST = "127.0.0.1"


#: How long check_password waits for the server's first answer before letting the checks run
#: (a version-1 server whose target is far may say nothing for a while).
AUTH_WAIT = 2.0


class PasswordRefused(Exception):
    """The server ended the connection (or a fallback web server answered) right after the
    probe's password: authentication failed, and no check can pass."""


class ServerProbe:
    """The probe's side: how to reach the server, and the local targets its streams use."""

    def __init__(self, address: tuple[str, int], password: str, *, insecure: bool = False,
                 sni: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 target_host: str = DEFAULT_TARGET_HOST) -> None:
        self.address = address
        self.password = password
        self.timeout = timeout
        if insecure:
            self._context = insecure_client_context()
            self._hostname = sni
        else:
            self._context = ssl.create_default_context()
            self._hostname = sni or address[0]
        #: where the targets listen, and the address the server under test is asked to dial
        self.target_host = target_host
        self.echo: EchoServer | None = None
        self.refused = 0  #: the refused port (set by start())

    def start(self) -> None:
        """Start the targets on ``target_host``; OSError if it is no address of this machine.
        ``with ServerProbe(...)`` calls it; the command line calls it before, to turn that
        OSError into a usage error."""
        if self.echo is None:
            self.refused = refused_port(self.target_host)
            self.echo = EchoServer(self.target_host)

    def __enter__(self) -> ServerProbe:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.echo is not None:
            self.echo.close()

    @property
    def target(self) -> tuple[str, int]:
        """The echo target's address (the probe must be entered: ``with ServerProbe(...)``)."""
        if self.echo is None:
            raise RuntimeError("use ServerProbe as a context manager")
        return self.target_host, self.echo.address[1]

    # ---- connections ----

    def raw(self) -> RawClient:
        return RawClient(self.address, context=self._context, server_hostname=self._hostname)

    def scripted(self, version: int, padding_md5: str = DEFAULT.md5) -> ScriptedClient:
        return ScriptedClient(self.address, self.password, version, padding_md5=padding_md5,
                              context=self._context, server_hostname=self._hostname)

    def session(self, version: int = 2) -> ScriptedClient:
        """An authenticated session whose Settings the server answered (version 2 rules)."""
        peer = self.scripted(version)
        try:
            if peer.start(self.timeout) is None:
                raise ExpectationFailed("no cmdServerSettings: not a version-2 session")
        except BaseException:
            peer.close()
            raise
        return peer

    # ---- running ----

    def preflight(self) -> None:
        """Raise OSError (or ssl.SSLError) if no TLS connection can be made at all."""
        self.raw().close()

    def check_password(self) -> None:
        """Raise PasswordRefused if the server closes, or answers like a web server, right
        after the probe's password and a stream to the echo target (every check would FAIL
        for that one reason). Frames, or silence for AUTH_WAIT, let the checks run."""
        with self.raw() as peer:
            peer.tls.settimeout(AUTH_WAIT)
            try:
                peer.send_auth(self.password, 0)
                peer.send_settings(2, client="probe")
                peer.open_stream(1, *self.target)
                peer.send_data(1, b"probe")
                answer = peer.tls.recv(64)
            except TimeoutError:
                return
            except (ConnectionError, ssl.SSLError):  # a write into the closed connection
                answer = b""
        if not answer:
            raise PasswordRefused("closed the connection right after the password")
        if answer.startswith(b"HTTP/") or answer.lstrip().startswith(b"<"):
            first_line = answer.split(b"\n", 1)[0].strip()[:40]
            raise PasswordRefused(f"answered like a web server ({first_line!r}) right after "
                                  "the password")

    def run(self, only: set[str] | None = None) -> list[CheckResult]:
        results = []
        for c in CHECKS:
            if only and c.name not in only:
                continue
            start = time.monotonic()
            try:
                status, detail = c.run(self)
            except (ExpectationFailed, TimeoutError) as exc:
                status, detail = FAIL, str(exc)
            except (OSError, ssl.SSLError) as exc:
                status, detail = FAIL, f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(c.name, c.section, c.requirement, status, detail,
                                       round(time.monotonic() - start, 2)))
        return results


def run_server_probe(address: tuple[str, int], password: str, *, insecure: bool = False,
                     sni: str | None = None, only: set[str] | None = None,
                     timeout: float = DEFAULT_TIMEOUT,
                     target_host: str = DEFAULT_TARGET_HOST) -> list[CheckResult]:
    """Every check (or those named in ``only``) against the server at ``address``;
    ``timeout`` bounds each expected answer; the targets listen on ``target_host``."""
    with ServerProbe(address, password, insecure=insecure, sni=sni, timeout=timeout,
                     target_host=target_host) as probe:
        return probe.run(only)
