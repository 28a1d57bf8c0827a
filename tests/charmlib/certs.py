"""Test certificates made with `cryptography` (a test-only dependency), shaped like LXD's."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)
Key = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]


@dataclass(frozen=True)
class Identity:
    cert_pem: str
    key_pem: str
    cert: x509.Certificate
    key: Key

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "linuxcontainers.org"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make(
    cn: str,
    issuer: Optional[Identity] = None,
    ca: bool = False,
    server: bool = True,
    valid_days: int = 30,
    expired: bool = False,
    key_ids: bool = True,
    key_type: str = "ec384",
    not_yet_valid: bool = False,
) -> Identity:
    """LXD's shape by default: self-signed, CA:FALSE, no key identifiers, keyUsage without
    keyCertSign, serverAuth (or clientAuth) only, a SAN naming the host. Issued certificates
    name their issuer's key (authorityKeyIdentifier) unless `key_ids` is False. `key_type`:
    ec384, ec256, rsa2048 or ed25519."""
    key = new_key(key_type)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - 30 * DAY, now - DAY) if expired else (now - DAY, now + valid_days * DAY)
    if not_yet_valid:
        start, end = now + DAY, now + valid_days * DAY
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=not ca,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("vm")]), critical=False)
    if issuer is not None and key_ids:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA384())
    return Identity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        cert=cert,
        key=key,
    )


def new_key(key_type: str) -> Key:
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(key_type)


def der(identity: Identity) -> bytes:
    return identity.cert.public_bytes(serialization.Encoding.DER)


def pem_of(der_bytes: bytes, label: str = "CERTIFICATE") -> str:
    """`der_bytes` armoured as PEM (64 columns) under `label`."""
    b64 = base64.b64encode(der_bytes).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def csr_pem(identity: Identity) -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name("requirer")).sign(identity.key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def public_key_pem(identity: Identity) -> str:
    return identity.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
