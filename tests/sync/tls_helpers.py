"""Throwaway PKI for the TLS tests, made at test time with `cryptography`: a CA, a server certificate
for 127.0.0.1/localhost and a client certificate, mosquitto.conf lines for a TLS listener, and a TLS
server that offers at most TLS 1.2."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def listener(self, require_certificate: bool) -> list[str]:
        """mosquitto.conf lines that turn the Mosquitto helper's listener into a TLS one."""
        return [f"cafile {self.ca}", f"certfile {self.server_cert}", f"keyfile {self.server_key}",
                f"require_certificate {'true' if require_certificate else 'false'}"]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-gate tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             issuer_key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False))


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(f"{name} test CA"), _name(f"{name} test CA"), key, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(key, directory / f"{name}.key")
    return _write_cert(cert, directory / f"{name}.pem"), key, cert


def _issue(directory: Path, stem: str, cn: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
           *, server: bool) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(_name(cn), ca_cert.subject, key, ca_key)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _write_cert(cert, directory / f"{stem}.pem"), _write_key(key, directory / f"{stem}.key")


def make_pki(directory: Path, client_cn: str = "gate-a") -> Pki:
    ca, ca_key, ca_cert = make_ca(directory)
    server_cert, server_key = _issue(directory, "server", "127.0.0.1", ca_key, ca_cert, server=True)
    client_cert, client_key = _issue(directory, "client", client_cn, ca_key, ca_cert, server=False)
    return Pki(ca, server_cert, server_key, client_cert, client_key)


def tls12_only_server(pki: Pki, handshakes: list[str], stop: threading.Event) -> int:
    """A TLS server that speaks at most TLS 1.2 (no MQTT); records each handshake's version or error."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.1)

    def serve() -> None:
        with srv:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                conn.settimeout(5)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        handshakes.append(str(tls.version()))
                except (ssl.SSLError, OSError) as exc:
                    handshakes.append(f"error: {exc}")
                finally:
                    conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])
