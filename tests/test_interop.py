"""The interop matrix as tests: anytls_ref against every real implementation, both roles.

One test per (client, server, scenario) with anytls_ref on at least one side, and per scenario
of our --wait-synack client ("anytls_ref+wait-synack") against each Go server; the same cases
``make interop`` runs (interop/matrix.py). A peer that is not installed skips its cases with one
clear reason, except under ANYTLS_REQUIRE_PEERS=1 (CI), where that is a failure. A case listed in
interop/expected.py must have exactly the listed outcome; every other case must pass.
"""

from __future__ import annotations


import pytest

from interop.expected import EXPECTED
from interop.matrix import IMPLEMENTATIONS, cases, is_ours, run_case

CASES = cases(set(IMPLEMENTATIONS))


@pytest.mark.interop
@pytest.mark.parametrize("client,server,scenario", CASES,
                         ids=[f"{c}->{s}-{sc}" for c, s, sc in CASES])
def test_interop(client: str, server: str, scenario: str, installed_peer) -> None:
    for impl in (client, server):
        if not is_ours(impl):
            installed_peer(impl)
    result = run_case(client, server, scenario)
    expected = EXPECTED.get((client, server, scenario))
    if expected is not None:
        assert expected.accepts(result.result, result.detail), (
            f"expected {expected.outcome} ({expected.why}), got {result.result}: {result.detail}")
    elif result.result == "unsupported-by-peer":
        # only a documented limit of the pinned peer may make a case not run
        assert result.detail, "unsupported-by-peer needs a documented reason"
    else:
        assert result.result == "pass", result.detail
