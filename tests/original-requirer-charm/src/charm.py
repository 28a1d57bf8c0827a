#!/usr/bin/env python3
"""lxd-tester: the original lxd-integrator's integration-test requirer, kept in its shape.

canonical/lxd-integrator-operator, tests/integration/relation_tests/application-charm/src/charm.py
(ops 2.8, pylxd, the tls_certificates v3 helpers). Kept as it is there:

- relation-joined makes a CA (RSA 4096) and a client certificate it signs (RSA 4096, subject
  the unit's address plus a unique id, SANs for its addresses, 365 days from now) and writes
  `client_certificates = json.dumps([pem])` to this unit's databag;
- relation-changed reads `event.relation.data[event.unit]`, with NO guard for a change without
  a remote unit (`event.unit is None` when the provider's application databag changes: the
  hook then dies with `KeyError(None)`, which is what the end-to-end test watches for), defers
  until `nodes` is there and every node lists a non-empty `trusted_certs_fp`, then connects to
  each node with `pylxd.Client(endpoint=..., verify=False, cert=(crt, key))`.

Changed, and why:

- `client.trusted` is recorded per node (status and the `get-result` action) instead of
  asserted, so a race of the original's own making (its check only waits for *some*
  fingerprint, not its own) shows as a recorded `untrusted` rather than a failed hook; the
  test asserts on the record.
- The address comes from the `client` binding, not `juju-info` (the simulator has no implicit
  `juju-info` endpoint); the temporary key files are deleted after use (the original leaves
  them in /tmp).
- An action `rotate` (new CA, key and certificate, written again) and `get-result`.
"""

import hashlib
import json
import logging
import os
import tempfile
import uuid
from datetime import datetime, timedelta
from ipaddress import IPv4Address
from typing import Tuple

import ops
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ops.framework import StoredState
from ops.model import WaitingStatus
from pylxd import Client

logger = logging.getLogger(__name__)

ENDPOINT = "client"


class ApplicationCharm(ops.CharmBase):
    """Application charm that connects to the lxd-integrator."""

    _state = StoredState()

    def __init__(self, *args):
        super().__init__(*args)

        self._state.set_default(cert=None, key=None, lxd_nodes=[], results={}, checked_fp="", checks=0)
        self.framework.observe(self.on.start, self._on_start)
        self.framework.observe(self.on.client_relation_joined, self._on_client_relation_joined)
        self.framework.observe(self.on.client_relation_changed, self._on_client_relation_changed)
        self.framework.observe(self.on.rotate_action, self._on_rotate)
        self.framework.observe(self.on.get_result_action, self._on_get_result)

    @property
    def public_ip(self) -> str:
        """Public address of the unit."""
        return self.model.get_binding(ENDPOINT).network.ingress_address.exploded

    @property
    def private_ip(self) -> str:
        """Private address of the unit."""
        return self.model.get_binding(ENDPOINT).network.bind_address.exploded

    def _on_start(self, _):
        self.unit.status = ops.ActiveStatus()

    def _on_client_relation_joined(self, event):
        self._state.cert, self._state.key = self._generate_selfsigned_cert(
            self.public_ip, self.public_ip, self.private_ip
        )
        relation_data = event.relation.data[self.unit]
        relation_data["client_certificates"] = json.dumps([self._state.cert.decode("utf-8")])

    def _on_client_relation_changed(self, event):
        data = event.relation.data[event.unit]
        self._state.lxd_nodes = json.loads(data.get("nodes", "[]"))
        if not self._state.lxd_nodes:
            event.defer()
            self.unit.status = WaitingStatus("Waiting for node info")
            return
        with tempfile.NamedTemporaryFile(delete=False) as cert, tempfile.NamedTemporaryFile(
            delete=False
        ) as key:
            cert.write(self._state.cert)
            cert.close()
            key.write(self._state.key)
            key.close()
            try:
                self.framework.breakpoint("tester")
                results = {}
                for node in self._state.lxd_nodes:
                    trusted_clients_fp = node.get("trusted_certs_fp", [])
                    if not trusted_clients_fp:
                        event.defer()
                        logging.info("client not authenticated yet")
                        return
                    try:
                        client = Client(
                            endpoint=node["endpoint"], verify=False, cert=(cert.name, key.name)
                        )
                        results[node["endpoint"]] = "trusted" if client.trusted else "untrusted"
                    except Exception as e:  # the original asserted; we record
                        results[node["endpoint"]] = f"failed: {type(e).__name__}: {e}"[:300]
                    logger.info(f"connected to {node['endpoint']}: {results[node['endpoint']]}")
            finally:
                os.unlink(cert.name)
                os.unlink(key.name)
        self._state.results = results
        self._state.checked_fp = _fingerprint(self._state.cert)
        self._state.checks += 1
        trusted = sum(1 for v in results.values() if v == "trusted")
        self.unit.status = ops.ActiveStatus(f"trusted={trusted}/{len(results)}")

    def _on_rotate(self, event: ops.ActionEvent) -> None:
        self._state.cert, self._state.key = self._generate_selfsigned_cert(
            self.public_ip, self.public_ip, self.private_ip
        )
        for relation in self.model.relations[ENDPOINT]:
            relation.data[self.unit]["client_certificates"] = json.dumps([self._state.cert.decode("utf-8")])
        event.set_results({"fingerprint": _fingerprint(self._state.cert)})

    def _on_get_result(self, event: ops.ActionEvent) -> None:
        event.set_results({
            "results": json.dumps(dict(self._state.results), sort_keys=True),
            "checked-fingerprint": self._state.checked_fp,
            "fingerprint": _fingerprint(self._state.cert) if self._state.cert else "",
            "checks": str(self._state.checks),
        })

    def _generate_selfsigned_cert(self, hostname, public_ip, private_ip) -> Tuple[bytes, bytes]:
        if not hostname:
            raise Exception("A hostname is required")

        if not public_ip:
            raise Exception("A public IP is required")

        if not private_ip:
            raise Exception("A private IP is required")

        ca_key = generate_private_key(key_size=4096)
        ca_cert = generate_ca(ca_key, hostname)

        key = generate_private_key(key_size=4096)
        csr = generate_csr(
            private_key=key,
            subject=hostname,
            sans_dns=[public_ip, private_ip, hostname],
            sans_ip=[public_ip, private_ip],
        )
        cert = generate_certificate(csr=csr, ca=ca_cert, ca_key=ca_key)
        return cert, key


def _fingerprint(pem: bytes) -> str:
    """LXD's fingerprint: SHA-256 of the DER, lowercase hex."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


# The tls_certificates_interface v3 helpers the original imports (LIBPATCH 0), reduced to what
# it calls, with the same defaults.


def generate_private_key(key_size: int = 2048, public_exponent: int = 65537) -> bytes:
    private_key = rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size)
    return private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=serialization.NoEncryption(),
    )


def generate_ca(private_key: bytes, subject: str, validity: int = 365, country: str = "US") -> bytes:
    private_key_object = serialization.load_pem_private_key(private_key, password=None)
    subject_name = issuer = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, subject),
        ]
    )
    key_identifier = x509.SubjectKeyIdentifier.from_public_key(private_key_object.public_key()).digest
    key_usage = x509.KeyUsage(
        digital_signature=True,
        key_encipherment=True,
        key_cert_sign=True,
        key_agreement=False,
        content_commitment=False,
        data_encipherment=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer)
        .public_key(private_key_object.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.utcnow())
        .not_valid_after(datetime.utcnow() + timedelta(days=validity))
        .add_extension(x509.SubjectKeyIdentifier(digest=key_identifier), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=key_identifier, authority_cert_issuer=None, authority_cert_serial_number=None
            ),
            critical=False,
        )
        .add_extension(key_usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key_object, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def generate_csr(private_key: bytes, subject: str, sans_ip=None, sans_dns=None) -> bytes:
    signing_key = serialization.load_pem_private_key(private_key, password=None)
    subject_name = [
        x509.NameAttribute(x509.NameOID.COMMON_NAME, subject),
        x509.NameAttribute(x509.NameOID.X500_UNIQUE_IDENTIFIER, str(uuid.uuid4())),
    ]
    csr = x509.CertificateSigningRequestBuilder(subject_name=x509.Name(subject_name))
    sans = []
    if sans_ip:
        sans.extend([x509.IPAddress(IPv4Address(san)) for san in sans_ip])
    if sans_dns:
        sans.extend([x509.DNSName(san) for san in sans_dns])
    if sans:
        csr = csr.add_extension(x509.SubjectAlternativeName(set(sans)), critical=False)
    return csr.sign(signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def generate_certificate(csr: bytes, ca: bytes, ca_key: bytes, validity: int = 365) -> bytes:
    csr_object = x509.load_pem_x509_csr(csr)
    ca_pem = x509.load_pem_x509_certificate(ca)
    private_key = serialization.load_pem_private_key(ca_key, password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr_object.subject)
        .issuer_name(ca_pem.issuer)
        .public_key(csr_object.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.utcnow())
        .not_valid_after(datetime.utcnow() + timedelta(days=validity))
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=ca_pem.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.key_identifier,
                authority_cert_issuer=None,
                authority_cert_serial_number=None,
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr_object.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    try:
        san = csr_object.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [x509.DNSName(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [x509.IPAddress(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(private_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


if __name__ == "__main__":
    ops.main(ApplicationCharm)
