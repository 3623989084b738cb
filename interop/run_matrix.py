"""``make interop``: run the interop matrix and print it.

Runs every case (client × server × scenario) with anytls_ref on at least one side, and our
--wait-synack client ("anytls_ref+wait-synack") against each Go server, among the peers installed by
``make peers``; prints one progress line per case, then the matrix (cells show
passed/total) and a per-scenario table, and writes interop/report.json. Then it runs
``anytls-ref probe server`` / ``probe client`` against every implementation (interop/probes.py)
and adds their tables to the report (key "probes") and a summary to the output.

    python interop/run_matrix.py [--baseline] [--only IMPL] [--scenario NAME] [--json PATH]
                                 [--no-probes]

ANYTLS_REQUIRE_PEERS=1 makes a missing peer an error (CI); elsewhere missing peers are skipped
with one line each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tabulate import tabulate  # noqa: E402

from interop import peers as peer_mod  # noqa: E402
from interop.expected import EXPECTED  # noqa: E402
from interop.matrix import ALL_SCENARIOS, IMPLEMENTATIONS, cases, run_case  # noqa: E402

REPORT = Path(__file__).resolve().parent / "report.json"
MARK = {"pass": "ok", "fail": "FAIL", "unsupported-by-peer": "n/a"}


def installed_peers(require: bool) -> set[str]:
    found = set()
    for peer_id, peer in peer_mod.all_peers().items():
        if peer.installed():
            found.add(peer_id)
        elif require:
            sys.exit(f"interop: peer {peer_id} {peer.version} is not installed in {peer.home} "
                     "(ANYTLS_REQUIRE_PEERS=1); run `make peers`")
        else:
            print(f"interop: skipping {peer_id} {peer.version}: not installed (run `make peers`)")
    return found


def explained(result: dict) -> bool:
    """The result is the one interop/expected.py lists for its case."""
    expected = EXPECTED.get((result["client"], result["server"], result["scenario"]))
    return expected is not None and expected.accepts(result["result"], result["detail"])


def matrix_table(results: list[dict]) -> str:
    # rows: clients, columns: servers (the wait-synack variant is a client only)
    clients = [i for i in IMPLEMENTATIONS if any(r["client"] == i for r in results)]
    servers = [i for i in IMPLEMENTATIONS if any(r["server"] == i for r in results)]
    rows = []
    for client in clients:
        row = [client]
        for server in servers:
            cell = [r for r in results if r["client"] == client and r["server"] == server]
            if not cell:
                row.append("")
                continue
            ran = [r for r in cell if r["result"] != "unsupported-by-peer"]
            passed = sum(r["result"] == "pass" for r in ran)
            text = f"{passed}/{len(ran)}"
            if len(ran) < len(cell):
                text += f" ({len(cell) - len(ran)} n/a)"
            row.append(text)
        rows.append(row)
    return tabulate(rows, headers=["client \\ server", *servers], tablefmt="github")


def scenario_table(results: list[dict]) -> str:
    rows = []
    for scenario in ALL_SCENARIOS:
        mine = [r for r in results if r["scenario"] == scenario]
        if not mine:
            continue
        failed = [f"{r['client']}→{r['server']}" for r in mine if r["result"] == "fail"]
        rows.append([scenario, sum(r["result"] == "pass" for r in mine),
                     len(failed), sum(r["result"] == "unsupported-by-peer" for r in mine),
                     ", ".join(failed)])
    return tabulate(rows, headers=["scenario", "pass", "fail", "n/a", "failed cells"],
                    tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true",
                        help="also run each peer against itself")
    parser.add_argument("--only", help="only cells with this implementation on one side")
    parser.add_argument("--scenario", action="append", choices=ALL_SCENARIOS)
    parser.add_argument("--json", type=Path, default=REPORT)
    parser.add_argument("--no-probes", action="store_true",
                        help="skip `anytls-ref probe` against each implementation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    require = os.environ.get("ANYTLS_REQUIRE_PEERS") == "1"
    installed = installed_peers(require)
    todo = [(c, s, sc) for c, s, sc in cases(installed, baseline=args.baseline)
            if args.only in (None, c, s) and sc in (args.scenario or ALL_SCENARIOS)]
    results = []
    start = time.monotonic()
    for n, (client, server, scenario) in enumerate(todo, 1):
        result = run_case(client, server, scenario).as_dict()
        expected = EXPECTED.get((client, server, scenario))
        if expected is not None:
            result["expected"] = expected.outcome
            result["explained"] = expected.why
        results.append(result)
        note = " (expected, see interop/expected.md)" if result["result"] != "pass" and \
            explained(result) else ""
        print(f"[{n:3}/{len(todo)}] {client:>20} → {server:<10} {scenario:17} "
              f"{MARK[result['result']]:4} {result['seconds']:6.2f}s  {result['detail']}{note}",
              flush=True)
    report = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.monotonic() - start, 1),
        "peers": {p.id: (f"custom: {p.bin(p.binaries[0])}" if p.overridden else p.version)
                  for p in peer_mod.all_peers().values() if p.id in installed},
        "results": results,
    }
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print()
    print(matrix_table(results))
    print()
    print(scenario_table(results))
    # ---- probes (issue 7): `probe server` / `probe client` against every implementation; a FAIL
    # there describes the implementation and does not change the exit code (interop/probes.py)
    if not args.no_probes:
        from interop.probes import run_probes, summary_table

        print("\nprobes:")
        report["probes"] = run_probes(installed, only=args.only)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print()
        print(summary_table(report["probes"]))
        print()
    unexpected = [r for r in results if r["result"] == "fail" and not explained(r)]
    print(f"\n{len(results)} cases in {report['seconds']} s; "
          f"{sum(r['result'] == 'pass' for r in results)} passed, "
          f"{sum(r['result'] == 'fail' for r in results)} failed "
          f"({len(unexpected)} unexplained); report: {args.json}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
