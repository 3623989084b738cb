"""Share links (issue 17): anytls-go's docs/uri_scheme.md and what clients in the wild export,
each with the exact settings it gives or the exact one-line error (decisions.md D41); one link
of each family then carries real traffic through our client to our server."""

from __future__ import annotations

import pytest

from anytls_ref.__main__ import build_parser
from anytls_ref.cli.options import client_config
from anytls_ref.config.links import FORM, format_link, parse_link
from anytls_ref.config.model import ClientOptions, ConfigError, User
from anytls_ref.net.client import Client
from anytls_ref.net.inbound import ProxyInbound
from anytls_ref.net.server import Server, ServerConfig
from socks_fetch import get_via_socks

PIN_HEX = "ed78c4a8b0e81bff0640744b21682d146134c1b530181f01f21861910945f8ee"
FP_WARNING = "fp=chrome (a browser TLS fingerprint: the Python ssl module cannot imitate one)"


def opts(host: str, port: int, password: str | None, **fields) -> ClientOptions:
    return ClientOptions(server=(host, port), password=password, **fields)


#: (where the link comes from, the link, the settings it gives)
LINKS = [
    # the three examples of anytls-go's docs/uri_scheme.md
    ("uri_scheme.md example 1 (no port: 443)",
     "anytls://letmein@example.com/?sni=real.example.com",
     opts("example.com", 443, "letmein", sni="real.example.com")),
    ("uri_scheme.md example 2 (IP sni: no SNI sent)",
     "anytls://letmein@example.com/?sni=127.0.0.1&insecure=1",
     opts("example.com", 443, "letmein", sni="127.0.0.1", insecure=True)),
    ("uri_scheme.md example 3 (IPv6)",
     "anytls://0fdf77d7-d4ba-455e-9ed9-a98dd6d5489a@[2409:8a71:6a00:1953::615]:8964/?insecure=1",
     opts("2409:8a71:6a00:1953::615", 8964, "0fdf77d7-d4ba-455e-9ed9-a98dd6d5489a",
          insecure=True)),
    # v2rayN's export (BaseFmt.ToUriQuery): security, fp, type, headerType
    ("v2rayN export",
     "anytls://secret@198.51.100.7:443?security=tls&sni=www.example.com&fp=chrome&type=tcp"
     "&headerType=none#v2rayN%20node",
     opts("198.51.100.7", 443, "secret", sni="www.example.com", name="v2rayN node",
          unsupported=(FP_WARNING,))),
    ("v2rayN export, insecure and allowInsecure both 0",
     "anytls://secret@198.51.100.7:443?security=tls&sni=www.example.com&insecure=0"
     "&allowInsecure=0&type=tcp&headerType=none#x",
     opts("198.51.100.7", 443, "secret", sni="www.example.com", insecure=False, name="x")),
    ("install script: insecure=1&allowInsecure=1",
     "anytls://Abc123456789@168.231.97.89:443?insecure=1&allowInsecure=1&sni=bing.com&fp=chrome"
     "#anytls-hostname",
     opts("168.231.97.89", 443, "Abc123456789", sni="bing.com", insecure=True,
          name="anytls-hostname", unsupported=(FP_WARNING,))),
    ("allowInsecure=true alone",
     "anytls://pw@example.com:443/?allowInsecure=true",
     opts("example.com", 443, "pw", insecure=True)),
    # NekoBox forks: insecure=1, sni, fp, alpn with a comma, a percent-encoded fragment
    ("NekoBox export with alpn",
     "anytls://pw@example.com:8443?insecure=1&sni=edge.example&fp=chrome&alpn=h2%2Chttp%2F1.1"
     "#Edge",
     opts("example.com", 8443, "pw", sni="edge.example", insecure=True, alpn=("h2", "http/1.1"),
          name="Edge", unsupported=(FP_WARNING,))),
    ("NekoBox export with a path and a UTF-8 name",
     "anytls://pw@example.com:8443/?sni=edge.example&insecure=1#Edge%20%E2%9C%93",
     opts("example.com", 8443, "pw", sni="edge.example", insecure=True, name="Edge ✓")),
    # mihomo's converter: user:pass userinfo, hpkp certificate pin
    ("mihomo form: user:pass and hpkp",
     f"anytls://user:pass@example.com:443/?sni=example.com&hpkp={PIN_HEX}",
     opts("example.com", 443, "user:pass", sni="example.com", pin=bytes.fromhex(PIN_HEX))),
    ("percent-encoded password",
     "anytls://p%40ss%3Aw%2Fd%20x@example.com:443/",
     opts("example.com", 443, "p@ss:w/d x")),
    ("UTF-8 password, no port, no path",
     "anytls://%E5%AF%86%E7%A0%81@example.com",
     opts("example.com", 443, "密码")),
    ("IPv6 without a port",
     "anytls://pw@[::1]/",
     opts("::1", 443, "pw")),
    ("whitespace around the link",
     "  anytls://pw@example.com:443/?insecure=1 \n",
     opts("example.com", 443, "pw", insecure=True)),
    ("upper-case scheme and host",
     "ANYTLS://pw@Example.COM:443/?sni=Example.COM",
     opts("example.com", 443, "pw", sni="Example.COM")),
    ("no password (given with -p)",
     "anytls://example.com:443/?sni=x",
     opts("example.com", 443, None, sni="x")),
    ("unknown parameters and an empty fragment",
     "anytls://pw@h:443/?sni=a&udp=1&mux=0#",
     opts("h", 443, "pw", sni="a", unsupported=("udp", "mux"))),
    ("a path and another headerType",
     "anytls://pw@h:443/extra?headerType=http",
     opts("h", 443, "pw", unsupported=("path '/extra'", "headerType=http"))),
    ("a parameter twice with one value",
     "anytls://pw@h:443/?sni=a&sni=a",
     opts("h", 443, "pw", sni="a")),
]

M = "anytls://PASSWORD@h:443"
#: (what is wrong, the link, the whole error line)
BAD_LINKS = [
    ("security=reality", "anytls://pw@h:443/?security=reality&pbk=X&sid=Y",
     f"link '{M}/?security=reality&pbk=X&sid=Y': security=reality asks for another security "
     "layer; anytls-ref speaks anytls over TLS only"),
    ("REALITY's pbk and sid", "anytls://pw@h:443/?pbk=KEY&sid=ab&fp=chrome",
     f"link '{M}/?pbk=KEY&sid=ab&fp=chrome': pbk, sid are REALITY parameters; anytls-ref "
     "speaks anytls over TLS only and will not ignore them"),
    ("security=none", "anytls://pw@h:443/?security=none",
     f"link '{M}/?security=none': security=none asks for another security layer; anytls-ref "
     "speaks anytls over TLS only"),
    ("another transport", "anytls://pw@h:443/?type=ws&path=%2F",
     f"link '{M}/?type=ws&path=%2F': type=ws asks for another transport; anytls-ref speaks "
     "anytls over TLS only"),
    ("insecure=maybe", "anytls://pw@h:443/?insecure=maybe",
     f"link '{M}/?insecure=maybe': insecure=maybe is not 1, 0, true or false"),
    ("insecure and allowInsecure disagree", "anytls://pw@h:443/?insecure=0&allowInsecure=1",
     f"link '{M}/?insecure=0&allowInsecure=1': insecure=0 and allowInsecure=1 disagree"),
    ("sni twice", "anytls://pw@h:443/?sni=a&sni=b",
     f"link '{M}/?sni=a&sni=b': sni is given twice with different values"),
    ("a bad hpkp", "anytls://pw@h:443/?hpkp=zz",
     f"link '{M}/?hpkp=zz': hpkp 'zz' is not a SHA-256 fingerprint (64 hex digits, colons "
     "allowed)"),
    ("port out of range", "anytls://pw@h:99999/",
     f"link 'anytls://PASSWORD@h:99999/': the port is not a number in 0..65535; the form is "
     f"{FORM}"),
    ("port not a number", "anytls://pw@h:port/",
     f"link 'anytls://PASSWORD@h:port/': the port is not a number in 0..65535; the form is "
     f"{FORM}"),
    ("no host", "anytls://pw@:443/",
     f"link 'anytls://PASSWORD@:443/' has no host; the form is {FORM}"),
    ("unclosed IPv6 literal", "anytls://pw@[::1:443/",
     f"link 'anytls://PASSWORD@[::1:443/': the host is not a valid [IPv6] literal; the form is "
     f"{FORM}"),
    ("another scheme", "vless://pw@h:443",
     f"link 'vless://PASSWORD@h:443' is not {FORM}"),
]


@pytest.mark.parametrize("link,expected", [(link, expected) for _, link, expected in LINKS],
                         ids=[name for name, _, _ in LINKS])
def test_a_link_gives_exactly_these_settings(link, expected):
    assert parse_link(link) == expected
    assert parse_link(link).password == expected.password  # (compared above; repr hides it)


@pytest.mark.parametrize("link,error", [(link, error) for _, link, error in BAD_LINKS],
                         ids=[name for name, _, _ in BAD_LINKS])
def test_a_bad_link_is_one_exact_line_without_the_password(link, error):
    with pytest.raises(ConfigError) as err:
        parse_link(link)
    assert str(err.value) == error
    assert "\n" not in error and "pw@" not in error


def test_the_table_has_at_least_25_links():
    assert len(LINKS) + len(BAD_LINKS) >= 25


@pytest.mark.parametrize("host,port,password,sni,pin,name", [
    ("server.example", 8443, "a long password", None, None, None),
    ("2001:db8::7", 443, "p@ss:w/ord#?", "cdn.example", bytes(range(32)), "Node ✓ #1"),
])
def test_format_link_reads_back(host, port, password, sni, pin, name):
    link = format_link(host, port, password, sni=sni, pin=pin, name=name)
    assert parse_link(link) == opts(host, port, password, sni=sni, pin=pin, name=name)


# ---- one link of each family carries traffic ---------------------------------------------------

PASSWORD = "family password"


def family_links(port: int, pin_hex: str) -> dict[str, str]:
    """One link per family, pointed at our server on 127.0.0.1:port."""
    return {
        "uri_scheme.md": f"anytls://family%20password@127.0.0.1:{port}/?sni=localhost&insecure=1",
        "v2rayN": f"anytls://family%20password@127.0.0.1:{port}?security=tls&sni=localhost"
                  "&fp=chrome&type=tcp&headerType=none&insecure=1&allowInsecure=1#v2rayN",
        "NekoBox": f"anytls://family%20password@127.0.0.1:{port}?insecure=1&sni=localhost"
                   "&alpn=h2%2Chttp%2F1.1#Neko",
        # mihomo's form with our user:pass rule, verified by its hpkp pin (no insecure)
        "mihomo": f"anytls://family:password@127.0.0.1:{port}/?sni=localhost&hpkp={pin_hex}",
    }


@pytest.mark.parametrize("family", ["uri_scheme.md", "v2rayN", "NekoBox", "mihomo"])
def test_one_link_of_each_family_carries_traffic(family, http_server):
    # the user:pass link authenticates as the whole userinfo
    users = (User("spaced", PASSWORD), User("colon", "family:password"))
    server = Server(ServerConfig(("127.0.0.1", 0), users=users))
    with server:
        link = family_links(server.address[1], server.fingerprint.hex())[family]
        config, _ = client_config(build_parser().parse_args(
            ["client", "-l", "127.0.0.1:0", "-s", link]))
        with ProxyInbound(("127.0.0.1", 0), Client(config)) as proxy:
            body = get_via_socks(proxy.address[1], http_server.address, f"/{family}")
        assert server.stats.sessions == 1
    assert body.endswith(f"path=/{family}\n".encode())
    if family == "mihomo":
        assert config.pin == server.fingerprint and not config.insecure


def test_the_link_command_prints_the_running_servers_link(capsys):
    """``anytls-ref link``: the share link with the password, pinned to the certificate the
    server presents (self-signed here, so no CA trusts it)."""
    from anytls_ref.__main__ import main

    with Server(ServerConfig(("127.0.0.1", 0), "p@ss word")) as server:
        port = server.address[1]
        assert main(["link", f"127.0.0.1:{port}", "-p", "p@ss word", "--name", "Node 1",
                     "--sni", "localhost"]) == 0
    printed = capsys.readouterr().out
    assert printed == (f"anytls://p%40ss%20word@127.0.0.1:{port}/?sni=localhost"
                       f"&hpkp={server.fingerprint.hex()}#Node%201\n")
    assert parse_link(printed) == opts("127.0.0.1", port, "p@ss word", sni="localhost",
                                       pin=server.fingerprint, name="Node 1")


@pytest.mark.parametrize("link,server_name,alpn", [
    # uri_scheme.md: "when the value of sni is an IP address, the client must not send SNI"
    ("anytls://pw@127.0.0.1:{port}/?sni=127.0.0.1&insecure=1&alpn=h2,http/1.1", None, "h2"),
    ("anytls://pw@127.0.0.1:{port}/?sni=localhost&insecure=1&alpn=http/1.1", "localhost",
     "http/1.1"),
    ("anytls://pw@127.0.0.1:{port}/?sni=localhost&insecure=1", "localhost", None),
])
def test_the_links_sni_and_alpn_reach_the_tls_handshake(link, server_name, alpn, tmp_path):
    """What the client's TLS handshake offers, as a TLS server sees it."""
    import socket
    import ssl
    import threading

    from anytls_ref.net.tls import client_context, connect_tls, write_self_signed

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*write_self_signed(str(tmp_path)))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    seen = {}
    ctx.sni_callback = lambda sock, name, _: seen.update(name=name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            seen["alpn"] = tls.selected_alpn_protocol()

    thread = threading.Thread(target=serve, name="tls-observer")
    thread.start()
    try:
        config, _ = client_config(build_parser().parse_args(
            ["client", "-s", link.format(port=listener.getsockname()[1])]))
        raw = socket.create_connection(config.server, timeout=5)
        tls = connect_tls(client_context(insecure=config.insecure, alpn=config.alpn), raw,
                          config.sni or config.server[0])
        tls.close()
    finally:
        thread.join(5)
        listener.close()
    assert seen == {"name": server_name, "alpn": alpn}
