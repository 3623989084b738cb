"""``anytls-ref padding``: the padding scheme inspector (anytls_ref/tools/inspect_padding.py)."""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from anytls_ref.__main__ import main
from anytls_ref.frame import HEADER_SIZE, Command, FrameDecoder
from anytls_ref.tools.inspect_padding import simulate
from anytls_ref.padding import CHECK, DEFAULT, parse_scheme, plan_packet, split_write

DEFAULT_MD5 = "75cff2ad89aadf5e257059ee571ebe11"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["padding", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path, text: bytes, name: str = "scheme.txt") -> str:
    path = tmp_path / name
    path.write_bytes(text)
    return str(path)


# ---- the acceptance line ----------------------------------------------------------------------


def test_default_prints_the_known_md5_and_stop(capsys):
    code, out, err = run(capsys, "--default")
    assert (code, err) == (0, "")
    assert f"md5:  {DEFAULT_MD5}" in out
    assert re.search(r"^stop: 8 \(packets 0\.\.7 are shaped\)$", out, re.M)


def test_no_scheme_flag_means_the_default(capsys):
    assert run(capsys, "--seed", "1") == run(capsys, "--default", "--seed", "1")


# ---- the entry table ----------------------------------------------------------------------------


def test_table_has_one_row_per_entry_with_the_role_of_each_packet(capsys):
    _, out, _ = run(capsys, "--samples", "0")
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s{2}\S", line)]
    assert [int(r.split()[0]) for r in rows] == list(range(8))
    by_packet = {int(r.split()[0]): r for r in rows}
    assert "padding0 (auth request)" in by_packet[0] and "30-30" in by_packet[0]
    assert "padding0: 30 B, after 34 B of auth" in by_packet[0]
    assert "Settings+SYN+PSH(addr)" in by_packet[1] and "100..399 B" in by_packet[1]
    assert "first user data" in by_packet[2] and "400..499 B" in by_packet[2]
    # packet 2 continues on 8 more rows: c, 500-1000, c, ... (one per entry)
    lines = out.splitlines()
    start = lines.index(by_packet[2])
    entries = [line.split()[0] for line in lines[start + 1 : start + 9]]
    assert entries == ["c", "500-1000"] * 4
    assert "record 5: 500..999 B" in lines[start + 8]
    assert "packets 8 and later: written as they are (stop=8)" in out


def test_packets_without_a_line_are_shown_as_runs(capsys, tmp_path):
    path = write(tmp_path, b"stop=1000\n1=100-200\n500=9-9")
    _, out, _ = run(capsys, "--scheme", path, "--samples", "0")
    assert re.search(r"^\s+0 .*no line: padding0 is empty", out, re.M)
    assert re.search(r"^\s+2-499 .*no line: written as it is", out, re.M)
    assert re.search(r"^\s*501-999 .*no line: written as it is", out, re.M)
    assert len(out.splitlines()) < 20


def test_lines_at_or_after_stop_are_reported_unused(capsys, tmp_path):
    path = write(tmp_path, b"stop=2\n0=5-5\n1=10-20\n7=1-2")
    _, out, _ = run(capsys, "--scheme", path, "--samples", "0")
    assert "never used (at or after stop): line 7" in out


def test_md5_of_a_file_is_over_its_exact_bytes(capsys, tmp_path):
    text = DEFAULT.raw + b"\n"
    _, out, _ = run(capsys, "--scheme", write(tmp_path, text))
    assert f"md5:  {hashlib.md5(text).hexdigest()}" in out
    assert DEFAULT_MD5 not in out
    assert "final newline" in out


def test_output_fits_80_columns(capsys):
    _, out, _ = run(capsys, "--simulate", "3000", "--samples", "2", "--seed", "5")
    assert max(map(len, out.splitlines())) <= 80


# ---- broken schemes: exit 2, one line naming the line -----------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        (b"stop=8\n0=30-30\n1=100-abc\n", 3),
        (b"stop=8\n0=30-30\n1=100-400\n2=0-10\n", 4),
        (b"stop=eight\n", 1),
        (b"stop=8\n\nnonsense\n", 3),
        (b"stop=8\n0=30-30\n\xff\n", 3),
    ],
)
def test_broken_scheme_exits_2_naming_its_line(capsys, tmp_path, text, line):
    path = write(tmp_path, text)
    code, out, err = run(capsys, "--scheme", path)
    assert code == 2
    assert out == ""
    assert err.startswith(f"anytls-ref: error: padding scheme {path}: line {line}: ")
    assert err.count("\n") == 1


def test_scheme_without_stop_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "--scheme", write(tmp_path, b"0=30-30\n"))
    assert code == 2
    assert "no stop=N line" in err and err.count("\n") == 1


def test_missing_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "--scheme", str(tmp_path / "nope.txt"))
    assert code == 2
    assert err == f"anytls-ref: error: padding scheme {tmp_path / 'nope.txt'}: No such file or directory\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--default", "--scheme", "x"],
        ["--samples", "-1"],
        ["--simulate", "-5"],
        ["--simulate", str((1 << 24) + 1)],
        ["--seed", "abc"],
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("anytls-ref: error: ") and err.count("\n") == 1


# ---- sampled plans ------------------------------------------------------------------------------


def sample_rows(out: str) -> list[tuple[int, list[str]]]:
    """(packet, sizes) of each row of the sampled plans table."""
    section = out.split("Sampled plans", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in section.splitlines()[3:]:
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            if line.startswith(" " * 10):  # no sample number in this row
                rows.append((int(fields[0]), fields[1:]))
            else:
                rows.append((int(fields[1]), fields[2:]))
    return rows


def test_samples_are_repeatable_with_a_seed_and_differ_without(capsys):
    first = run(capsys, "--samples", "4", "--seed", "42")[1]
    assert run(capsys, "--samples", "4", "--seed", "42")[1] == first
    assert run(capsys, "--samples", "4", "--seed", "43")[1] != first
    assert "--seed 42 repeats them" in first


def test_unseeded_run_prints_the_seed_that_repeats_it(capsys):
    out = run(capsys, "--samples", "2")[1]
    seed = re.search(r"--seed (\d+) repeats them", out).group(1)
    assert run(capsys, "--samples", "2", "--seed", seed)[1] == out


def test_sampled_sizes_stay_in_their_ranges(capsys):
    out = run(capsys, "--samples", "20", "--seed", "7")[1]
    rows = sample_rows(out)
    assert len(rows) == 20 * 8
    for packet, sizes in rows:
        entries = DEFAULT.packets[packet]
        assert len(sizes) == len(entries)
        for size, entry in zip(sizes, entries):
            if entry == "c":
                assert size == "c"
            else:
                assert entry.low <= int(size) < max(entry.high, entry.low + 1)


def test_samples_match_plan_packet_with_the_same_seed(capsys):
    out = run(capsys, "--samples", "1", "--seed", "9")[1]
    rng = random.Random(9)
    expected = [["c" if s == CHECK else str(s) for s in plan_packet(DEFAULT, p, rng)]
                for p in range(8)]
    assert [sizes for _, sizes in sample_rows(out)] == expected


def test_zero_samples_print_no_sample_section(capsys):
    assert "Sampled plans" not in run(capsys, "--samples", "0")[1]


# ---- --simulate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 50, 120, 450, 1200, 5000, 70000])
def test_simulation_accounts_for_every_byte(size):
    rng = random.Random(size)
    records = simulate(DEFAULT, size, rng)
    for packet in range(1, 8):
        mine = [r for r in records if r.packet == packet and r.number]
        assert sum(r.payload for r in mine) == size
        for r in mine:
            assert r.size == r.payload + r.waste
            assert r.waste == 0 or r.waste >= HEADER_SIZE + 1


def test_simulation_is_split_write_of_plan_packet():
    """Each packet's records are exactly what split_write makes of the same plan."""
    size = 700
    records = simulate(DEFAULT, size, random.Random(3))
    rng = random.Random(3)
    for packet in range(1, 8):
        plan = plan_packet(DEFAULT, packet, rng)
        expected = split_write(bytes(size), plan)
        assert [r.size for r in records if r.packet == packet and r.number] == \
            [len(x) for x in expected]
        # and the Waste bytes are really one Waste frame per record
        for r, raw in zip([r for r in records if r.packet == packet and r.number], expected):
            if r.waste:
                decoder = FrameDecoder()
                decoder.feed(raw[r.payload :])
                (frame,) = decoder.frames()
                assert frame.command == Command.WASTE and len(frame.data) == r.waste - HEADER_SIZE


def test_simulation_notes_check_marks_and_the_rest(capsys):
    out = run(capsys, "--simulate", "300", "--seed", "1", "--samples", "0")[1]
    assert "c: write used up, no more records" in out  # packet 2: 300 B fit the first record
    big = run(capsys, "--simulate", "20000", "--seed", "1", "--samples", "0")[1]
    assert "rest of the write, sent directly" in big
    assert "c: write used up" not in big
    assert "packets 8 and later: one write, as it is" in big


def test_simulation_of_a_write_for_packet_2_default_is_five_records_at_most(capsys):
    out = run(capsys, "--simulate", "100", "--seed", "2", "--samples", "0")[1]
    table = out.split("frame header):", 1)[1]
    packet2 = table.split("\n    2 ", 1)[1].split("\n    3 ", 1)[0]
    # 100 bytes fit record 1 (400..499 B): payload + Waste, then the check mark stops
    assert "end of the payload + Waste" in packet2
    assert "c: write used up" in packet2


def test_stop_of_zero_or_one_shapes_no_write(capsys, tmp_path):
    for text in (b"stop=0\n0=30-30", b"stop=1\n0=30-30"):
        out = run(capsys, "--scheme", write(tmp_path, text), "--simulate", "10")[1]
        assert "every write is sent as it is" in out


def test_inspector_accepts_what_the_server_accepts(tmp_path):
    # the inspector and `server --padding-scheme` share read_scheme (strict parsing)
    from anytls_ref.cli.inputs import UsageError, read_scheme

    good = write(tmp_path, b"stop=3\n0=1-2\n1=5-9,c\n", "good.txt")
    assert parse_scheme(read_scheme(good)).stop == 3
    with pytest.raises(UsageError, match="line 2"):
        read_scheme(write(tmp_path, b"stop=3\n0=x\n", "bad.txt"))
