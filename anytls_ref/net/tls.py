"""TLS contexts: the server's (its own certificate, or a fresh self-signed one) and the client's.

"The anytls protocol parameters do not include TLS parameters" — these are ours: TLS 1.2 or
newer; the client verifies the server's certificate unless told ``--insecure``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

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
