"""Live abuse, shortened for ``make test``: 400 sessions of the malformed kinds in
interop/abuse.py against our server in a child process, a good session every 50 that must
succeed, and the server's threads and fds back to baseline ± 2 afterwards. The full campaign
(10,000 sessions, a good one every 200) is ``python interop/abuse.py``; its figures are in
spec_notes/reliability.md."""

from __future__ import annotations

from interop.abuse import KINDS, run_campaign


def test_400_malformed_sessions_leave_the_server_as_it_was(tmp_path):
    report = run_campaign(400, good_every=50, workers=8, seed=9, log_dir=tmp_path)
    print(report.text())
    assert report.unexpected == []
    assert report.good_failed == [] and report.good_ok == 400 // 50 + 1
    assert report.log_errors == []
    assert set(report.kinds) == {*KINDS, "good_session"}, "every kind ran at least once"
    for now, before in zip(report.after, report.baseline):
        assert now <= before + 2
