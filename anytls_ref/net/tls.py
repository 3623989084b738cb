"""TLS contexts: the server's (its own certificate, or a fresh self-signed one) and the client's.

"The anytls protocol parameters do not include TLS parameters" — these are ours: TLS 1.2 or
newer; the client verifies the server's certificate unless told ``--insecure``, or checks its
pin instead (``--pin``: the SHA-256 of the server's leaf certificate, decisions.md D45), and
offers the ALPN protocols a share link or config names.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import ipaddress
import os
import select
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..config.pin import format_fingerprint


def self_signed_pem(common_name: str = "localhost") -> tuple[bytes, bytes]:
    """A fresh P-256 key and a one-year certificate for ``common_name``, localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.SubjectAlternativeName([
        x509.DNSName(common_name),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_self_signed(directory: str, common_name: str = "localhost") -> tuple[str, str]:
    """Write a self-signed pair into ``directory``; returns (cert path, key path)."""
    cert_pem, key_pem = self_signed_pem(common_name)
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert_pem)
    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key_pem)
    return cert_path, key_path


def server_context(cert_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    """Server context; without files, a self-signed certificate made now (like anytls-go)."""
    return server_identity(cert_file, key_file)[0]


def server_identity(cert_file: str | None = None,
                    key_file: str | None = None) -> tuple[ssl.SSLContext, bytes]:
    """The server context and the certificate it presents (PEM, as in the file or made now)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # A peer's TCP FIN without close_notify reads as a plain EOF instead of a fatal error that
    # would also fail every later write: a fallback visitor that half-closes after its request
    # must still get the answer (net/relay.py relay_sockets).
    ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    # one TLS 1.3 ticket per connection, as Go servers send (OpenSSL's default is two): a client
    # offers each ticket once, to resume one new connection (decisions.md D38)
    ctx.num_tickets = 1
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
        with open(cert_file, "rb") as f:
            cert_pem = f.read()
    else:
        with tempfile.TemporaryDirectory(prefix="anytls-ref-cert-") as tmp:
            cert_path, key_path = write_self_signed(tmp)
            ctx.load_cert_chain(cert_path, key_path)
            with open(cert_path, "rb") as f:
                cert_pem = f.read()
    return ctx, cert_pem


class IdentityFileError(ValueError):
    """A certificate, key or CA file that cannot be used: one line naming the file and why."""


def _certificates(data: bytes, path: str, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        pass
    if b"PRIVATE KEY-----" in data:
        swapped = " (--cert and --key swapped?)" if what == "certificate" else ""
        raise IdentityFileError(f"{what} {path}: holds a private key, not a certificate"
                                f"{swapped}")
    raise IdentityFileError(f"{what} {path}: no PEM certificate in it (expected "
                            "-----BEGIN CERTIFICATE-----)")


def check_server_files(cert_file: str, cert_pem: bytes, key_file: str, key_pem: bytes,
                       now: datetime.datetime | None = None) -> list[str]:
    """Check a certificate and key (the files' bytes) before the server loads them, so that
    every mistake is one line naming the file: not PEM, swapped, encrypted, or the key of
    another certificate (IdentityFileError). Returns warnings for a certificate that loads but
    that clients verifying it will refuse (expired, not yet valid)."""
    leaf = _certificates(cert_pem, cert_file, "certificate")[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise IdentityFileError(f"key {key_file}: encrypted with a passphrase; give it "
                                "decrypted (openssl pkey -in KEY -out PLAIN.pem)") from None
    except (ValueError, UnsupportedAlgorithm):
        if b"BEGIN CERTIFICATE" in key_pem:
            raise IdentityFileError(f"key {key_file}: holds a certificate, not a private key "
                                    "(--cert and --key swapped?)") from None
        raise IdentityFileError(f"key {key_file}: no PEM private key in it (expected "
                                "-----BEGIN PRIVATE KEY-----)") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise IdentityFileError(f"key {key_file} is not the key of certificate {cert_file} "
                                "(their public keys differ)")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if leaf.not_valid_after_utc < now:
        return [f"certificate {cert_file} expired on {leaf.not_valid_after_utc:%Y-%m-%d}: "
                "clients that verify it will refuse it (a --pin still matches)"]
    if leaf.not_valid_before_utc > now:
        return [f"certificate {cert_file} is valid only from "
                f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: clients that verify it will "
                "refuse it until then (is this machine's clock right?)"]
    return []


def check_ca_file(path: str, data: bytes) -> None:
    """IdentityFileError unless ``data`` (the file ``path``) holds a PEM certificate."""
    _certificates(data, path, "CA file")


def leaf_fingerprint(cert_pem: bytes) -> bytes:
    """SHA-256 of the first certificate in ``cert_pem`` (the leaf): what ``--pin`` names."""
    pem = cert_pem.decode("ascii", "replace")
    end_marker = "-----END CERTIFICATE-----"
    first = pem[pem.index("-----BEGIN CERTIFICATE-----"):pem.index(end_marker) + len(end_marker)]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).digest()


def client_context(*, insecure: bool = False, ca_file: str | None = None,
                   pin: bytes | None = None, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """Client context: verifies against the system CAs or ``ca_file`` unless ``insecure``.

    With a ``pin`` and no ``ca_file`` the chain is not verified: ``connect_tls`` checks the
    leaf certificate's SHA-256 instead, which is what a pin of a self-signed certificate needs.
    """
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure or (pin is not None and ca_file is None):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class CertificateError(ssl.SSLCertVerificationError):
    """The server's certificate is not trusted: the message says what to add."""

    def __init__(self, message: str) -> None:
        super().__init__(1, message)  # (errno, strerror): str() is then the message alone


class PinMismatchError(CertificateError):
    """The server's leaf certificate is not the one ``--pin`` names."""


#: what the client's certificate error says to add (the server logs its fingerprint at start)
TRUST_HINT = ("add --pin SHA256 (the fingerprint the server logs at start), --ca FILE, or "
              "--insecure")
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: a trusted
#: certificate for another name than the one the client asked for
NAME_MISMATCH = (62, 64)
NAME_HINT = ("set --sni to a name the certificate holds, or check it with --pin SHA256 "
             "instead, or --insecure")


def connect_tls(ctx: ssl.SSLContext, raw: socket.socket, server_hostname: str,
                session: ssl.SSLSession | None = None, pin: bytes | None = None) -> ssl.SSLSocket:
    """The client's TLS handshake on ``raw``, then the pin check, before any byte of anytls.

    A certificate the context does not trust fails with a message that says what to add; a pin
    that does not match fails with one line naming both fingerprints.
    """
    try:
        tls = ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in NAME_MISMATCH:
            raise CertificateError(f"certificate verify failed: it is not for "
                                   f"{server_hostname!r} (SNI mismatch): {NAME_HINT}") from None
        raise CertificateError(f"certificate verify failed ({exc.verify_message or exc}): "
                               f"{TRUST_HINT}") from None
    if pin is not None:
        got = hashlib.sha256(tls.getpeercert(binary_form=True) or b"").digest()
        if got != pin:
            tls.close()
            raise PinMismatchError(f"server certificate sha256 {format_fingerprint(got)} is not "
                                   f"the pinned {format_fingerprint(pin)}")
    return tls


T = TypeVar("T")


class ThreadSafeTLS:
    """A connected SSLSocket that one reader and one writer at a time may use at once.

    OpenSSL: "You cannot call SSL_write() and SSL_read() on different threads to each other for
    the *same* SSL object", and Python's ssl module does not serialise them. Used that way on
    this machine (OpenSSL 3.0), a TLS 1.3 NewSessionTicket handled by the reader while a writer
    encrypted gave "bad record mac", reads returned a false EOF, and a stress run crashed the
    interpreter. So here the socket is non-blocking, every call into the SSL object is made
    under one lock, and a thread that has to wait for the socket waits in poll() *without* the
    lock: a writer stuck on a full TCP window never stops the reader (which would deadlock two
    peers that both write). Writers must still not interleave with each other: Session has its
    write lock, the fallback relay one writer per direction.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        # a plain socket (tests run sessions over socketpairs) may be shared as it is
        self._is_tls = isinstance(sock, ssl.SSLSocket)
        if self._is_tls:
            sock.setblocking(False)

    def _call(self, call: Callable[..., T], *args) -> T:
        if not self._is_tls:
            return call(*args)
        while True:
            with self._lock:
                try:
                    return call(*args)
                except ssl.SSLWantReadError:
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT
            self._wait(events)

    def _wait(self, events: int) -> None:
        """Wait, without the lock, until the socket is ready for the SSL call to be retried."""
        fd = self.sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "socket closed")
        poller = select.poll()
        poller.register(fd, events)
        poller.poll()  # shutdown() wakes it too (hang-up); the retried call then fails

    def recv(self, max_bytes: int) -> bytes:
        return self._call(self.sock.recv, max_bytes)

    def recv_into(self, buffer) -> int:
        return self._call(self.sock.recv_into, buffer)

    def recv_into_full(self, view: memoryview) -> int:
        """Fill ``view``; fewer bytes only at EOF. A record's worth per SSL_read, all of them
        read under one lock hold while they are there (a large frame's data: fewer round trips
        through the lock and the Python wrappers than one recv_into call per record)."""
        pos, end = 0, len(view)
        if not self._is_tls:
            while pos < end and (n := self.sock.recv_into(view[pos:])):
                pos += n
            return pos
        read = self.sock.read  # SSLSocket.read(len, buffer): recv_into without its checks
        while pos < end:
            with self._lock:
                try:
                    while pos < end:
                        n = read(end - pos, view[pos:])
                        if n == 0:
                            return pos
                        pos += n
                    return pos
                except ssl.SSLWantReadError:
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT
            self._wait(events)
        return pos

    def sendall(self, data: bytes | memoryview) -> None:
        if not self._is_tls:
            self.sock.sendall(data)
            return
        # a retried SSL_write must be given the same bytes again, which ``view`` still is
        view = memoryview(data)
        while view:
            view = view[self._call(self.sock.send, view):]

    def resumable_session(self) -> ssl.SSLSession | None:
        """This connection's TLS session if the server gave a ticket to resume it with, else
        None. Read under the lock: TLS 1.3 tickets arrive after the handshake, and the reader
        handles them (and replaces the session) inside an SSL read."""
        if not self._is_tls:
            return None
        with self._lock:
            session = self.sock.session
        return session if session is not None and session.has_ticket else None

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        """The plain socket's shutdown (no SSL call): wakes every thread waiting on it."""
        socket.socket.shutdown(self.sock, how)


def peer_certificate(address: tuple[str, int], server_hostname: str,
                     timeout: float = 10.0) -> tuple[bytes, bool]:
    """SHA-256 of the certificate a TLS server presents, and whether this machine's CAs trust
    it for ``server_hostname`` (``anytls-ref link``: a trusted certificate needs no pin)."""
    checks = (client_context(), client_context(insecure=True))
    for trusted, ctx in zip((True, False), checks):
        with socket.create_connection(address, timeout=timeout) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    der = tls.getpeercert(binary_form=True) or b""
                    return hashlib.sha256(der).digest(), trusted
            except ssl.SSLCertVerificationError:
                continue
    raise ssl.SSLError("no certificate")  # unreachable: the second context verifies nothing
