"""TLS contexts: the server's (its own certificate, or a fresh self-signed one) and the client's.

"The anytls protocol parameters do not include TLS parameters" — these are ours: TLS 1.2 or
newer; the client verifies the server's certificate unless told ``--insecure``.
"""

from __future__ import annotations

import datetime
import errno
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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


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
    else:
        with tempfile.TemporaryDirectory(prefix="anytls-ref-cert-") as tmp:
            ctx.load_cert_chain(*write_self_signed(tmp))
    return ctx


def client_context(*, insecure: bool = False, ca_file: str | None = None) -> ssl.SSLContext:
    """Client context: verifies against the system CAs or ``ca_file`` unless ``insecure``."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


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
