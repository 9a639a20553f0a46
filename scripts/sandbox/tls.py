"""The sandbox's own certificate authority, so the tools verify TLS exactly as on AWS (verify-full).

At `sandbox up`: a CA, and one server certificate signed by it for the sandbox endpoints' DNS names
(``*.<region>.<zone>`` for both regions: every emulated instance, restored or promoted ones too,
is named ``<identifier>.<region>.<zone>``, scripts/sandbox/rds.py). Every cluster serves it
(``ssl = on`` in the settings they all inherit). The contract's ``access.database.sslrootcert``
names the CA, as a real stack's names AWS's RDS bundle. `cryptography` is the library the field
uses for X.509 in Python; nothing here touches the tools' code path.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


@dataclass(frozen=True)
class ServerTls:
    ca_file: Path
    cert_file: Path
    key_file: Path


def endpoint_names(regions: Iterable[str], zone_name: str) -> list[str]:
    """The names the sandbox's endpoints have: ``*.<region>.<zone>`` (and ``.sandbox`` without a zone)."""
    return [f"*.{region}.{zone}" for region in regions for zone in (zone_name, "sandbox")]


def authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA (P-256, 30 days): the only root the sandbox's connections trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def server_certificate(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                       names: list[str]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``names`` (DNS SANs, wildcards allowed in the first label), signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in names]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def files(ca_dir: Path, server_dir: Path) -> ServerTls:
    """Where :func:`write` puts the CA and the server's certificate and key (what every new cluster serves)."""
    return ServerTls(ca_dir / "ca.pem", server_dir / "server.crt", server_dir / "server.key")


def write(ca_dir: Path, server_dir: Path, names: list[str], owner: tuple[int, int] | None = None) -> ServerTls:
    """Write ``ca.pem`` (public) into ``ca_dir`` and the server's cert and key (0600, ``owner``) into ``server_dir``."""
    ca_key, ca = authority("Pilotlight sandbox CA")
    key, cert = server_certificate(ca_key, ca, names)
    ca_dir.mkdir(parents=True, exist_ok=True)
    server_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls = files(ca_dir, server_dir)
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(tls.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    if owner is not None:
        for path in (server_dir, tls.cert_file, tls.key_file):
            os.chown(path, *owner)
    return tls
