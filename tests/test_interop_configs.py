"""The configs the interop harness writes for sing-box and mihomo start anytls-ref (issue 17,
decisions.md D43): ``anytls-ref server -c`` with the peer's server config serves the real peer's
client, ``anytls-ref client -c`` with the peer's client config uses the real peer's server, and
the interop scenarios tcp, reuse and udp pass. The files come from interop/peers.py's own
writers, the ones the peers are started with; anytls-ref runs as its command line does, in a
process of its own, and starts without a warning (every field of those files is supported)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from interop import matrix
from interop import peers as peer_mod
from interop.targets import HTTPTarget

PEERS = ["sing-box", "mihomo"]
SCENARIOS = ["tcp", "reuse", "udp"]
#: our process's log lines that mark a new TLS session, per role (server: info; client: debug)
NEW_SESSION = {"server": re.compile(r"conn \d+ from \S+: user u$", re.M),
               "client": re.compile(r"sess \d+: new session to ", re.M)}


@contextlib.contextmanager
def anytls_ref(role: str, config: Path, port: int, workdir: Path) -> Iterator[Path]:
    """``python -m anytls_ref --log-level debug ROLE -c CONFIG``, up on ``port``; its log."""
    log_path = workdir / f"anytls-ref-{role}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "anytls_ref", "--log-level", "debug",
                                 role, "-c", str(config)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path  # for wait_for_port's message
    try:
        peer_mod.wait_for_port("127.0.0.1", port, timeout=20, proc=proc)
        yield log_path
    finally:
        peer_mod.stop(proc)


def sessions_in(log_path: Path, role: str) -> int:
    return len(NEW_SESSION[role].findall(log_path.read_text(errors="replace")))


def scenario_reuse(client: matrix.ClientSide, log_path: Path, role: str) -> str:
    """matrix's reuse, observed in our process's log: 3 requests, 1 TLS session."""
    target = HTTPTarget()
    try:
        before = sessions_in(log_path, role)
        for _ in range(3):
            matrix.http_get(client, target)
    finally:
        target.close()
    used = sessions_in(log_path, role) - before
    assert used == 1, f"3 sequential connections used {used} TLS sessions"
    return "3 requests, 1 TLS session"


@pytest.mark.interop
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("peer_id", PEERS)
def test_the_peer_config_starts_anytls_ref(peer_id: str, role: str, scenario: str,
                                           installed_peer) -> None:
    peer = installed_peer(peer_id)
    workdir = Path(tempfile.mkdtemp(prefix=f"interop-config-{peer_id}-{role}-{scenario}-"))
    server_port, socks_port = peer_mod.free_port(), peer_mod.free_port()
    procs = []
    try:
        cert, key = peer_mod.make_cert(workdir)
        with contextlib.ExitStack() as running:
            if role == "server":  # ours with the peer's server config, the peer's client
                config = peer.write_server_config(workdir, server_port, matrix.PASSWORD,
                                                  cert=cert, key=key)
                log_path = running.enter_context(anytls_ref("server", config, server_port, workdir))
                procs.append(peer.start_client(workdir, socks_port, server_port, matrix.PASSWORD))
                peer_mod.wait_for_port("127.0.0.1", socks_port, proc=procs[-1])
            else:  # the peer's server, ours with the peer's client config
                procs.append(peer.start_server(workdir, server_port, matrix.PASSWORD,
                                               cert=cert, key=key))
                peer_mod.wait_for_port("127.0.0.1", server_port, proc=procs[-1])
                config = peer.write_client_config(workdir, socks_port, server_port,
                                                  matrix.PASSWORD)
                log_path = running.enter_context(anytls_ref("client", config, socks_port, workdir))
            assert "WARNING" not in log_path.read_text(errors="replace")
            client = matrix.ClientSide(socks_port, None)
            if scenario == "reuse":
                scenario_reuse(client, log_path, role)
            else:
                func, _ = matrix.SCENARIO_FUNCS[scenario]
                func(client, matrix.ServerSide(server_port, None), workdir)
    except matrix.CaseFailed as exc:
        pytest.fail(f"{exc} (logs in {workdir})")
    finally:
        for proc in procs:
            peer_mod.stop(proc)
    shutil.rmtree(workdir, ignore_errors=True)
