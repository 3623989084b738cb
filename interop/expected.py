"""Cases whose result is not "pass", each explained in interop/expected.md with the peer's
own source as evidence. The interop tests assert these outcomes exactly: if such a case starts
to pass (the peer changed), the test says so and this table must be updated. The one exception
is "intermittent": a race or a random delay inside the peer makes the case pass or fail from run
to run, and the evidence for it is in expected.md. ``fail_detail`` narrows a "fail" down to the
explained one: a failure whose detail lacks that text is not accepted."""

from __future__ import annotations

from dataclasses import dataclass

from .matrix import CLOSED_LATE, OURS, WAIT_SYNACK


@dataclass(frozen=True)
class Expected:
    outcome: str  #: "fail", "unsupported-by-peer" or "intermittent" (pass or fail)
    why: str  #: one line; the long form is in expected.md
    #: if set, a "fail" is accepted only when its detail contains this text
    fail_detail: str | None = None

    def accepts(self, result: str, detail: str = "") -> bool:
        if result == "fail" and self.fail_detail is not None and self.fail_detail not in detail:
            return False
        if self.outcome == "intermittent":
            return result in ("pass", "fail")
        return result == self.outcome


_SSRLIVE_NO_SYN = Expected(
    "fail", "ssrlive 0.3.2 client never sends cmdSYN; our server rejects the session with an "
    "Alert (expected.md §1)")
_RS_CLIENT_NO_EOF = Expected(
    "fail", "anytls-rs 0.5.4 client does not pass the stream's end on to its SOCKS client "
    "(expected.md §2)")
_RS_SERVER_NO_FIN = Expected(
    "fail", "anytls-rs 0.5.4 server sends no cmdFIN when the target closes (expected.md §5)")

EXPECTED: dict[tuple[str, str, str], Expected] = {
    # ssrlive client → anytls_ref server
    **{("ssrlive", "anytls_ref", scenario): _SSRLIVE_NO_SYN
       for scenario in ("tcp", "http", "reuse", "udp", "padding-update", "refused")},
    # anytls-rs client → anytls_ref server
    ("anytls-rs", "anytls_ref", "http"): _RS_CLIENT_NO_EOF,
    ("anytls-rs", "anytls_ref", "reuse"): _RS_CLIENT_NO_EOF,
    ("anytls-rs", "anytls_ref", "wrong-password"): Expected(
        "intermittent", "anytls-rs 0.5.4 can open a stream on a session that is closing and then "
        "waits 30 s for its SYNACK (a race in Session::open_stream; expected.md §8)"),
    ("anytls-rs", "anytls_ref", "padding-update"): Expected(
        "fail", "anytls-rs 0.5.4 client cannot apply cmdUpdatePaddingScheme (expected.md §3)"),
    # anytls_ref client → ssrlive server
    ("anytls_ref", "ssrlive", "reuse"): Expected(
        "fail", "ssrlive 0.3.2 server rejects stream ids above 1; our client retries on a new "
        "session and stops reusing (expected.md §4)"),
    ("anytls_ref", "ssrlive", "udp"): Expected(
        "fail", "ssrlive 0.3.2 UoT packets use SocksAddr type bytes, not sing-box UoT v2's "
        "(expected.md §6)"),
    # anytls_ref client → anytls-rs server
    ("anytls_ref", "anytls-rs", "http"): _RS_SERVER_NO_FIN,
    ("anytls_ref", "anytls-rs", "reuse"): _RS_SERVER_NO_FIN,
    # anytls_ref client (it answers before cmdSYNACK) → mihomo server
    (OURS, "mihomo", "early-refused"): Expected(
        "intermittent", "mihomo v1.19.30 answers cmdSYNACK ok before dialling and retries a "
        "refused dial 10 times with random backoff, so the connection closes after 0.1-4.3 s, "
        "not always within 2 s (expected.md §9)", fail_detail=CLOSED_LATE),
    # anytls_ref --wait-synack client → mihomo server
    (WAIT_SYNACK, "mihomo", "refused"): Expected(
        "fail", "mihomo v1.19.30 answers cmdSYNACK ok before dialling, so a client that waits "
        "for it still answers SOCKS5 success; the refusal is only a FIN (expected.md §9)"),
}
