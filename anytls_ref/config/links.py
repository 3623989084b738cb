"""anytls_ref.config.links — share links, as anytls-go's docs/uri_scheme.md defines them.

    anytls://[auth@]hostname[:port]/?[key=value]&[key=value]...

From the document: ``auth`` is the password ("actually the username part of a standard URI, so
special characters need percent-encoding"); "if the port is omitted, it defaults to 443";
``sni`` is the TLS server name ("when the value of sni is an IP address, the client must not
send SNI"); ``insecure`` "accepts 1 for true, 0 for false". Third parties may add parameters
but "should not assume that other implementations understand them".

What clients in the wild emit, and what we make of it (spec_notes/decisions.md D41):

- the whole userinfo is the password, ``user:pass`` included, as anytls-go takes it
  (``url.User.String()``); mihomo's converter would take only ``pass``;
- percent-encoding is decoded, as the document says (anytls-go v0.0.12's client does not: it
  uses the still-encoded text);
- ``insecure`` also as ``true``/``false``, and the ``allowInsecure`` / ``allow_insecure``
  spellings v2rayN and NekoBox forks export (conflicting values are an error);
- ``alpn`` (a comma-separated list, as NekoBox exports it) is honoured;
- ``hpkp``, the certificate fingerprint mihomo's converter reads, is honoured as a pin;
- ``#name`` is the node's name;
- ``security=tls``, ``type=tcp`` and ``headerType=none`` (v2rayN) are what anytls is anyway;
- another ``security`` (``reality``, ``none``), REALITY's ``pbk`` / ``sid`` / ``spx`` or another
  ``type`` (transport) is an error: ignoring them would silently downgrade to plain TLS;
- ``fp`` (a browser TLS fingerprint, which the stdlib cannot imitate) and any other parameter
  is named in a warning (``ClientOptions.unsupported``);
- whitespace around the link is dropped (a copied link often ends in a space or newline).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .model import ClientOptions, ConfigError
from .pin import parse_pin

SCHEME = "anytls"
#: "If the port is omitted, it defaults to 443."
DEFAULT_PORT = 443
#: how the link looks, for error messages
FORM = "anytls://PASSWORD@HOST:PORT/?sni=NAME (PORT defaults to 443)"

_INSECURE_KEYS = ("insecure", "allowInsecure", "allow_insecure")
_TRUE, _FALSE = ("1", "true"), ("0", "false")
#: parameters that ask for another security layer than TLS: an error, never ignored
_REALITY_KEYS = ("pbk", "sid", "spx", "pqv")
#: parameters that describe what anytls is anyway
_PLAIN_VALUES = {"security": ("", "tls"), "type": ("", "tcp", "raw"), "headerType": ("", "none")}


def parse_link(link: str) -> ClientOptions:
    """An ``anytls://`` link → the client settings it gives (ConfigError for a bad one)."""
    link = link.strip()
    shown = _masked(link)
    try:
        url = urlsplit(link)
    except ValueError:  # an unclosed "[" of an IPv6 literal
        raise ConfigError(f"link {shown!r}: the host is not a valid [IPv6] literal; "
                          f"the form is {FORM}") from None
    try:
        port = url.port
    except ValueError:
        raise ConfigError(f"link {shown!r}: the port is not a number in 0..65535; "
                          f"the form is {FORM}") from None
    if url.scheme != SCHEME:
        raise ConfigError(f"link {shown!r} is not {FORM}")
    userinfo, at, _ = url.netloc.rpartition("@")
    if not url.hostname:
        raise ConfigError(f"link {shown!r} has no host; the form is {FORM}")
    params = _params(url.query, shown)
    unsupported = [f"path {url.path!r}"] if url.path not in ("", "/") else []
    for key in params:
        if key not in ("sni", "alpn", "hpkp", "fp", *_INSECURE_KEYS, *_PLAIN_VALUES):
            unsupported.append(key)
    for key, allowed in _PLAIN_VALUES.items():
        value = params.get(key, "")
        if value in allowed:
            continue
        if key == "headerType":
            unsupported.append(f"headerType={value}")
        else:
            raise ConfigError(f"link {shown!r}: {key}={value} asks for another "
                              f"{'security layer' if key == 'security' else 'transport'}; "
                              "anytls-ref speaks anytls over TLS only")
    reality = [key for key in _REALITY_KEYS if key in params]
    if reality:
        raise ConfigError(f"link {shown!r}: {', '.join(reality)} are REALITY parameters; "
                          "anytls-ref speaks anytls over TLS only and will not ignore them")
    if "fp" in params:
        unsupported.append(f"fp={params['fp']} (a browser TLS fingerprint: the Python ssl "
                           "module cannot imitate one)")
    alpn = tuple(p for p in params.get("alpn", "").split(",") if p) or None
    return ClientOptions(
        server=(url.hostname, DEFAULT_PORT if port is None else port),
        password=unquote(userinfo) if at and userinfo else None,
        sni=params.get("sni") or None,
        insecure=_insecure(params, shown),
        pin=parse_pin(params["hpkp"], what=f"link {shown!r}: hpkp") if params.get("hpkp") else None,
        alpn=alpn,
        name=unquote(url.fragment) or None,
        unsupported=tuple(unsupported),
    )


def _params(query: str, shown: str) -> dict[str, str]:
    """The query as a dict; a parameter given twice with different values is an error."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        value = value.strip()
        if params.get(key, value) != value:
            raise ConfigError(f"link {shown!r}: {key} is given twice with different values")
        params[key] = value
    return params


def _insecure(params: dict[str, str], shown: str) -> bool | None:
    said = {}
    for key in _INSECURE_KEYS:
        if key in params:
            value = params[key].lower()
            if value not in _TRUE + _FALSE:
                raise ConfigError(f"link {shown!r}: {key}={params[key]} is not 1, 0, true or false")
            said[key] = value in _TRUE
    if len(set(said.values())) > 1:
        raise ConfigError(f"link {shown!r}: {' and '.join(f'{k}={params[k]}' for k in said)} "
                          "disagree")
    return next(iter(said.values()), None)


def _masked(link: str) -> str:
    """The link as error messages show it: the password replaced by PASSWORD."""
    scheme, sep, rest = link.partition("://")
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, _ = rest[:authority_end].rpartition("@")
    if not sep or not at or not userinfo:
        return link
    return f"{scheme}://PASSWORD@{rest[len(userinfo) + 1:]}"


def format_link(host: str, port: int, password: str, *, sni: str | None = None,
                pin: bytes | None = None, name: str | None = None) -> str:
    """The share link for a server: what ``anytls-ref link`` prints."""
    try:
        bracketed = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        bracketed = host
    params = {}
    if sni:
        params["sni"] = sni
    if pin is not None:
        params["hpkp"] = pin.hex()
    query = f"?{urlencode(params)}" if params else ""
    fragment = f"#{quote(name, safe='')}" if name else ""
    return f"{SCHEME}://{quote(password, safe='')}@{bracketed}:{port}/{query}{fragment}"
