"""anytls_ref.settings — spec "cmdSettings", "cmdServerSettings", "cmdAlert", "cmdUpdatePaddingScheme".

Theory of operation: the settings payloads are UTF-8 text, one ``key=value`` item per line:

    v=2
    client=anytls-rs/0.0.8
    padding-md5=(md5)

"key and value are connected with `=`, both are string types. Different items are separated by
`\\n`." Real clients send the keys in random order (Go maps), and newer ones leave ``client``
empty or out, so the parser accepts any order, ignores lines without ``=`` and never requires
``client`` (peers.md §2). A missing or non-numeric ``v`` means version 1 (decisions.md D6).
cmdAlert carries plain UTF-8 text; cmdUpdatePaddingScheme carries the raw scheme bytes
(parsed by padding.py).
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_kv(data: bytes) -> dict[str, str]:
    """``key=value`` lines → dict. Never raises: bad UTF-8 is replaced, odd lines are ignored.

    A key given twice keeps its last value (as a Go map assignment does).
    """
    items: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep:
            items[key] = value
    return items


def encode_kv(items: dict[str, str]) -> bytes:
    """dict → ``key=value`` lines joined by ``\\n`` (no trailing newline, like Go)."""
    for key, value in items.items():
        if "=" in key or "\n" in key or "\n" in value:
            raise ValueError(f"settings item {key!r} cannot be encoded")
    return "\n".join(f"{k}={v}" for k, v in items.items()).encode("utf-8")


def _version(items: dict[str, str]) -> int:
    value = items.get("v", "").strip()
    # Go: strconv.Atoi(m["v"]); anything that is not a small non-negative integer counts as v1
    if value.isascii() and value.isdigit() and len(value) <= 9:
        return max(int(value), 1)
    return 1


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """The data of cmdSettings."""

    version: int  #: "`v` is the protocol version number implemented by the client"
    client: str | None = None  #: software name and version; None when the key is absent
    padding_md5: str | None = None  #: md5 of the client's current padding scheme, lowercase hex

    def encode(self) -> bytes:
        items = {"v": str(self.version)}
        if self.client is not None:
            items["client"] = self.client
        if self.padding_md5 is not None:
            items["padding-md5"] = self.padding_md5
        return encode_kv(items)

    @classmethod
    def decode(cls, data: bytes) -> ClientSettings:
        items = parse_kv(data)
        return cls(_version(items), items.get("client"), items.get("padding-md5"))


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The data of cmdServerSettings."""

    version: int  #: "`v` is the protocol version number implemented by the server"

    def encode(self) -> bytes:
        return encode_kv({"v": str(self.version)})

    @classmethod
    def decode(cls, data: bytes) -> ServerSettings:
        return cls(_version(parse_kv(data)))


def encode_alert(message: str) -> bytes:
    return message.encode("utf-8")


def decode_alert(data: bytes) -> str:
    """Alert text for a log line: decoded leniently, control characters made visible."""
    text = data.decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
