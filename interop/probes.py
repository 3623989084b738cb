"""The ``probe`` tool against every implementation: ``probe server`` against each server,
``probe client`` against each client (driven through its local SOCKS5 port).

anytls_ref itself runs first, as the baseline (all PASS is the expectation there). A peer is
started from interop/peers.py exactly as the matrix starts it (same password, a certificate for
"localhost", no certificate verification). A FAIL against a peer is information about the peer,
not an error of this suite: interop/run_matrix.py puts every table in interop/report.json
(key "probes") and prints the summary.

    python interop/probes.py [--only IMPL] [--role server|client]   (just the probes, with tables)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tabulate import tabulate  # noqa: E402

from anytls_ref.net.client import Client, ClientConfig  # noqa: E402
from anytls_ref.net.inbound import ProxyInbound  # noqa: E402
from anytls_ref.net.server import Server, ServerConfig  # noqa: E402
from anytls_ref.probe.client_probe import ClientProbe  # noqa: E402
from anytls_ref.probe.report import CheckResult, counts, table  # noqa: E402
from anytls_ref.probe.scripting import ExpectationFailed  # noqa: E402
from anytls_ref.probe.server_checks import open_and_echo  # noqa: E402
from anytls_ref.probe.server_probe import ServerProbe, run_server_probe  # noqa: E402
from interop import peers as peer_mod  # noqa: E402

OURS = "anytls_ref"
IMPLEMENTATIONS = [OURS, "anytls-go", "sing-box", "mihomo", "ssrlive", "anytls-rs"]
PASSWORD = "interop-password"
ROLES = ("server", "client")
#: Each expected answer may take this long (a loaded CI machine runs several Go processes).
TIMEOUT = 5.0


def wait_until_serving(address: tuple[str, int], timeout: float = 10.0) -> None:
    """Poll until a stream through the server at ``address`` echoes. An open port is not
    enough: mihomo opens its listeners before its tunnel runs and drops streams until then
    (hub/executor/executor.go: updateListeners before tunnel.OnRunning; tunnel.isHandle)."""
    deadline = time.monotonic() + timeout
    with ServerProbe(address, PASSWORD, insecure=True, sni="localhost") as probe:
        while True:
            try:
                with probe.session() as peer:
                    open_and_echo(probe, peer, 1, b"ready?")
                return
            except (ExpectationFailed, OSError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)


def probe_server_of(impl: str, workdir: Path) -> list[CheckResult]:
    """Start ``impl``'s server and run every ``probe server`` check against it."""
    cert, key = peer_mod.make_cert(workdir)
    if impl == OURS:
        with Server(ServerConfig(("127.0.0.1", 0), PASSWORD, str(cert), str(key))) as server:
            return run_server_probe(server.address, PASSWORD, insecure=True, sni="localhost",
                                    timeout=TIMEOUT)
    port = peer_mod.free_port()
    proc = peer_mod.get_peer(impl).start_server(workdir, port, PASSWORD, None, cert, key)
    try:
        peer_mod.wait_for_port("127.0.0.1", port, proc=proc)
        wait_until_serving(("127.0.0.1", port))
        return run_server_probe(("127.0.0.1", port), PASSWORD, insecure=True, sni="localhost",
                                timeout=TIMEOUT)
    finally:
        peer_mod.stop(proc)


def probe_client_of(impl: str, workdir: Path) -> tuple[list[CheckResult], list[str]]:
    """Start ``impl``'s client against a probe server and run ``probe client`` through it;
    returns the results and the notes on the probe's own traffic."""
    with ClientProbe(password=PASSWORD) as probe:
        if impl == OURS:
            client = Client(ClientConfig(probe.address, PASSWORD, sni="localhost", insecure=True))
            with ProxyInbound(("127.0.0.1", 0), client) as inbound:
                probe.drive(inbound.address)
                return probe.evaluate(), probe.notes
        port = peer_mod.free_port()
        proc = peer_mod.get_peer(impl).start_client(workdir, port, probe.address[1], PASSWORD)
        try:
            peer_mod.wait_for_port("127.0.0.1", port, proc=proc)
            probe.drive(("127.0.0.1", port))
            return probe.evaluate(), probe.notes
        finally:
            peer_mod.stop(proc)


def run_probes(installed: set[str], *, only: str | None = None,
               roles: tuple[str, ...] = ROLES, progress=print) -> dict:
    """{implementation: {role: {"counts", "checks", "seconds"} or {"error"}}} for anytls_ref and
    every installed peer (``only``: just that implementation)."""
    report: dict[str, dict] = {}
    for impl in IMPLEMENTATIONS:
        if (impl != OURS and impl not in installed) or only not in (None, impl):
            continue
        for role in roles:
            workdir = Path(tempfile.mkdtemp(prefix=f"probe-{impl}-{role}-"))
            start = time.monotonic()
            try:
                if role == "server":
                    results, notes = probe_server_of(impl, workdir), []
                else:
                    results, notes = probe_client_of(impl, workdir)
                entry = {"counts": counts(results), "checks": [r.as_dict() for r in results],
                         "notes": notes}
                summary = ", ".join(f"{n} {k}" for k, n in entry["counts"].items())
            except Exception as exc:  # a peer that does not start is reported, not raised
                entry = {"error": f"{type(exc).__name__}: {exc}"}
                summary = entry["error"]
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            entry["seconds"] = round(time.monotonic() - start, 1)
            report.setdefault(impl, {})[role] = entry
            progress(f"probe {role:6} {impl:>10}: {summary} ({entry['seconds']} s)")
    return report


def summary_table(probes: dict) -> str:
    """One row per implementation and role: the counts and the checks that FAILed."""
    rows = []
    for impl, roles in probes.items():
        for role, entry in roles.items():
            if "error" in entry:
                rows.append([impl, role, "", "", "", entry["error"]])
                continue
            failed = [c["check"] for c in entry["checks"] if c["result"] == "FAIL"]
            n = entry["counts"]
            rows.append([impl, role, n["PASS"], n["FAIL"], n["INFO"], ", ".join(failed)])
    return tabulate(rows, headers=["implementation", "probe", "PASS", "FAIL", "INFO",
                                   "failed checks"], tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=IMPLEMENTATIONS, help="just this implementation")
    parser.add_argument("--role", choices=ROLES, help="just this probe")
    args = parser.parse_args(argv)
    installed = {p.id for p in peer_mod.all_peers().values() if p.installed()}
    probes = run_probes(installed, only=args.only,
                        roles=(args.role,) if args.role else ROLES)
    for impl, roles in probes.items():
        for role, entry in roles.items():
            if "checks" in entry:
                print(f"\nprobe {role} — {impl}")
                print(table([CheckResult(**c) for c in entry["checks"]]))
    print()
    print(summary_table(probes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
