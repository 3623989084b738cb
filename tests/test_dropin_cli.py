"""Command lines users already have (issue 17): every anytls-go command line of its ``-h`` and
README runs with ``anytls-ref`` in its place, in both ``-flag VALUE`` and ``-flag=VALUE`` forms
(decisions.md D42); a mistyped single-dash flag is an error naming it, never another flag's
value; the password can stay off the command line (D46); the CLI contract's flags keep working."""

from __future__ import annotations

import pytest

from anytls_ref.__main__ import build_parser, main
from anytls_ref.cli.options import client_config, server_config
from anytls_ref.config.model import User
from anytls_ref.padding import DEFAULT_SCHEME
from anytls_ref.params import DEFAULT_IDLE_CHECK_INTERVAL, DEFAULT_IDLE_TIMEOUT

SCHEME = b"stop=2\n0=40-40\n1=100-200"


@pytest.fixture
def scheme_file(tmp_path):
    path = tmp_path / "padding.txt"
    path.write_bytes(SCHEME)
    return str(path)


@pytest.fixture(autouse=True)
def no_password_env(monkeypatch):
    monkeypatch.delenv("ANYTLS_PASSWORD", raising=False)


def server(argv: list[str]):
    return server_config(build_parser().parse_args(["server", *argv]))


def client(argv: list[str]):
    return client_config(build_parser().parse_args(["client", *argv]))


def both_forms(argv: list[str]) -> list[list[str]]:
    """``-flag VALUE`` as given, and the same line as ``-flag=VALUE``."""
    joined, n = [], 0
    while n < len(argv):
        if argv[n].startswith("-") and n + 1 < len(argv) and not argv[n + 1].startswith("-"):
            joined.append(f"{argv[n]}={argv[n + 1]}")
            n += 2
        else:
            joined.append(argv[n])
            n += 1
    return [argv, joined]


# ---- anytls-go's command lines -----------------------------------------------------------------

#: anytls-go's cmd/server: its README line, its -h defaults, and the flags the interop harness
#: uses (interop/peers.py); (argv, listen, password, padding scheme)
SERVER_LINES = [
    (["-l", "0.0.0.0:8443", "-p", "密码"], ("0.0.0.0", 8443), "密码", DEFAULT_SCHEME),
    (["-p", "pw"], ("0.0.0.0", 8443), "pw", DEFAULT_SCHEME),  # -l's default "0.0.0.0:8443"
    (["-l", "127.0.0.1:9443", "-p", "pw", "-padding-scheme", "{scheme}"], ("127.0.0.1", 9443),
     "pw", SCHEME),
    (["-padding-scheme", "{scheme}", "-p", "pw"], ("0.0.0.0", 8443), "pw", SCHEME),
    # docs/faq.md: "the server sets --padding-scheme ./padding.txt"
    (["-p", "pw", "--padding-scheme", "{scheme}"], ("0.0.0.0", 8443), "pw", SCHEME),
]

#: anytls-go's cmd/client: README lines, -h defaults (-l 127.0.0.1:1080), -sni, -m, v0.0.13's
#: -dr; (argv, listen, server, password, sni, min idle, disable reuse)
CLIENT_LINES = [
    (["-l", "127.0.0.1:1080", "-s", "203.0.113.5:8443", "-p", "密码"], ("127.0.0.1", 1080),
     ("203.0.113.5", 8443), "密码", None, 0, False),
    (["-l", "127.0.0.1:1080", "-s", "anytls://password@host.example:8443"], ("127.0.0.1", 1080),
     ("host.example", 8443), "password", None, 0, False),
    (["-s", "203.0.113.5:8443", "-p", "pw"], ("127.0.0.1", 1080), ("203.0.113.5", 8443), "pw",
     None, 0, False),
    (["-l", "127.0.0.1:2080", "-s", "127.0.0.1:9443", "-p", "pw", "-sni", "localhost"],
     ("127.0.0.1", 2080), ("127.0.0.1", 9443), "pw", "localhost", 0, False),
    (["-s", "127.0.0.1:9443", "-p", "pw", "-m", "5"], ("127.0.0.1", 1080), ("127.0.0.1", 9443),
     "pw", None, 5, False),
    (["-s", "127.0.0.1:9443", "-p", "pw", "-dr"], ("127.0.0.1", 1080), ("127.0.0.1", 9443),
     "pw", None, 0, True),
]


@pytest.mark.parametrize("form", ["-flag VALUE", "-flag=VALUE"])
@pytest.mark.parametrize("argv,listen,password,scheme", SERVER_LINES,
                         ids=[" ".join(line[0]) for line in SERVER_LINES])
def test_anytls_go_server_command_lines(argv, listen, password, scheme, form, scheme_file):
    argv = [a.format(scheme=scheme_file) for a in argv]
    config = server(both_forms(argv)[form == "-flag=VALUE"])
    assert (config.listen, config.users, config.padding_scheme) == (
        listen, (User("default", password),), scheme)


@pytest.mark.parametrize("form", ["-flag VALUE", "-flag=VALUE"])
@pytest.mark.parametrize("argv,listen,address,password,sni,min_idle,disable_reuse", CLIENT_LINES,
                         ids=[" ".join(line[0]) for line in CLIENT_LINES])
def test_anytls_go_client_command_lines(argv, listen, address, password, sni, min_idle,
                                        disable_reuse, form):
    config, local = client(both_forms(argv)[form == "-flag=VALUE"])
    assert (local, config.server, config.password, config.sni, config.params.min_idle_session,
            config.disable_reuse) == (listen, address, password, sni, min_idle, disable_reuse)
    # where anytls-go never verifies the certificate, ours still does (safe default)
    assert not config.insecure


@pytest.mark.parametrize("word,disable_reuse", [("-dr", True), ("-dr=true", True),
                                                 ("-dr=false", False), ("-dr=1", True),
                                                 ("--disable-reuse", True)])
def test_dr_takes_go_boolean_forms(word, disable_reuse):
    config, _ = client(["-s", "127.0.0.1:9443", "-p", "pw", word])
    assert config.disable_reuse is disable_reuse


def test_padding_scheme_with_equals_uses_the_file_and_keeps_the_password(scheme_file):
    """Before issue 17 argparse read this as -p "adding-scheme=FILE": the password replaced,
    the default scheme used."""
    config = server([f"-padding-scheme={scheme_file}", "-p", "the password"])
    assert config.padding_scheme == SCHEME
    assert config.users == (User("default", "the password"),)


# ---- mistyped flags: an error naming them, never a value ---------------------------------------

@pytest.mark.parametrize("argv,error", [
    (["server", "-paddingscheme=x", "-p", "pw"],
     "unknown flag -paddingscheme (did you mean -padding-scheme?)"),
    (["server", "-pSECRET"], "unknown flag -p… (write -p VALUE or -p=VALUE; a value glued to "
                             "a flag is not accepted)"),
    (["client", "-s", "h:1", "-p", "pw", "-snix"], "unknown flag -snix (did you mean -sni?)"),
    (["client", "-s", "h:1", "-p", "pw", "-m5"],
     "unknown flag -m… (write -m VALUE or -m=VALUE; a value glued to a flag is not accepted)"),
    (["client", "-s", "h:1", "-p", "pw", "-d"], "unknown flag -d (did you mean -dr?)"),
    (["client", "-s", "h:1", "-p", "pw", "-x"], "unknown flag -x"),
    (["client", "-s", "h:1", "-p", "pw", "--ins"], "unrecognized arguments: --ins"),
    (["server", "--pass", "pw"], "unrecognized arguments: --pass pw"),
    (["client", "-s", "h:1", "-p", "pw", "-dr=maybe"], "argument -dr: 'maybe' is not true or "
                                                       "false"),
])
def test_a_mistyped_flag_is_one_line_naming_it(argv, error, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"anytls-ref: error: {error}\n"
    assert "SECRET" not in err


def test_a_value_starting_with_a_dash_goes_after_equals():
    config = server(["-p=-starts-with-a-dash"])
    assert config.users == (User("default", "-starts-with-a-dash"),)


# ---- secrets off the command line ----------------------------------------------------------------

def test_password_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "pw"
    path.write_text("from a file\n")
    assert server(["--password-file", str(path)]).users == (User("default", "from a file"),)
    config, _ = client(["-s", "h:1", "--password-file", str(path)])
    assert config.password == "from a file"
    monkeypatch.setenv("ANYTLS_PASSWORD", "from the environment")
    assert server([]).users == (User("default", "from the environment"),)
    assert client(["-s", "h:1"])[0].password == "from the environment"
    # anything on the command line wins over the environment
    assert server(["-p", "flag"]).users == (User("default", "flag"),)
    assert client(["-s", "anytls://link@h:1"])[0].password == "link"


@pytest.mark.parametrize("argv,error", [
    (["server", "-p", ""], "-p: an empty password is refused"),
    (["client", "-s", "h:1", "-p", ""], "-p: an empty password is refused"),
    (["server", "--password-file", "{empty}"], "password file {empty}: empty"),
    (["server", "-p", "x", "--password-file", "{empty}"],
     "-p and --password-file: give one of them"),
    (["server", "--password-file", "{missing}"], "password file {missing}: No such file or "
                                                 "directory"),
    (["server", "--user", "alice"], "--user takes NAME:PASSWORD (a name, a colon, then the "
                                    "password)"),
    (["server", "--user", "alice:"], "user 'alice': an empty password is refused"),
    (["server", "--user", "a:same", "--user", "b:same"],
     "users 'a' and 'b' have the same password: the server could not tell them apart"),
    (["server", "--user", "a:1", "--user", "a:2"], "user 'a' is given twice"),
    (["client", "--pin", "abcd", "-s", "h:1", "-p", "x"],
     "--pin 'abcd' is not a SHA-256 fingerprint (64 hex digits, colons allowed)"),
])
def test_bad_secrets_are_one_line(argv, error, tmp_path, capsys):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.write_text("\n")
    argv = [a.format(empty=empty, missing=missing) for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"anytls-ref: error: {error.format(empty=empty, missing=missing)}\n")


def test_users_and_password_together():
    config = server(["-p", "one", "--user", "alice:two", "--user", "bob:th:ree"])
    assert config.users == (User("default", "one"), User("alice", "two"), User("bob", "th:ree"))


# ---- the CLI contract (shared/design/architecture.md) keeps working ----------------------------

def test_the_contract_server_flags(tmp_path, scheme_file):
    from anytls_ref.net.tls import write_self_signed

    cert, key = write_self_signed(str(tmp_path))
    config = server(["-l", "127.0.0.1:9443", "-p", "pw", "--cert", cert, "--key", key,
                     "--padding-scheme", scheme_file, "--fallback", "127.0.0.1:80",
                     "--min-version", "2", "--trace"])
    assert (config.listen, config.users, config.cert_file, config.key_file,
            config.padding_scheme, config.fallback, config.min_version, config.trace) == (
        ("127.0.0.1", 9443), (User("default", "pw"),), cert, key, SCHEME, ("127.0.0.1", 80), 2,
        True)


def test_the_contract_client_flags(tmp_path):
    from anytls_ref.net.tls import write_self_signed

    ca, _ = write_self_signed(str(tmp_path))
    config, listen = client(["-l", "127.0.0.1:2080", "-s", "127.0.0.1:9443", "-p", "pw",
                             "--sni", "name.example", "--insecure", "--ca", ca, "-m", "2",
                             "--idle-timeout", "9", "--idle-check", "4", "--disable-reuse",
                             "--trace", "--heartbeat", "5", "--fast-open"])
    assert listen == ("127.0.0.1", 2080)
    assert (config.server, config.password, config.sni, config.insecure, config.ca_file,
            config.params.min_idle_session, config.params.idle_session_timeout,
            config.params.idle_session_check_interval, config.disable_reuse, config.trace,
            config.heartbeat, config.wait_synack) == (
        ("127.0.0.1", 9443), "pw", "name.example", True, ca, 2, 9.0, 4.0, True, True, 5.0, False)
    # --fast-open, once an option, is the default now and still accepted (decisions.md D34)
    config, _ = client(["-s", "127.0.0.1:9443", "-p", "pw", "--wait-synack"])
    assert config.wait_synack is True
    config, _ = client(["-l", "127.0.0.1:2080",
                        "-s", "anytls://pw@127.0.0.1:9443/?sni=n.example&insecure=1"])
    assert (config.server, config.password, config.sni, config.insecure) == (
        ("127.0.0.1", 9443), "pw", "n.example", True)
    assert (config.params.idle_session_timeout, config.params.idle_session_check_interval,
            config.params.min_idle_session, config.disable_reuse) == (
        DEFAULT_IDLE_TIMEOUT, DEFAULT_IDLE_CHECK_INTERVAL, 0, False)
