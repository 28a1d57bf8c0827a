# Copyright 2026 lxd-integrator contributors
# Licensed under the Apache License, Version 2.0.
"""Requirer side of the `lxd` interface: get client certificates trusted by LXD, then reach it.

`lxd-integrator` adds the certificates a requirer sends to an LXD server or cluster's trust
store and publishes every online member (`nodes`), the fingerprints LXD trusts on each, the
server certificate to pin (`server_certificate`, `server_certificate_fingerprint`), and why it
refused a certificate (`refused`). This library writes the requirer's side, reads the
provider's, and builds an `ssl.SSLContext` that presents your client certificate and accepts
nothing but the published server certificate. It needs only `ops` (2.x or 3.x) and the
standard library. Interface specification: `docs/interface-lxd.md` in the lxd-integrator
repository.

Fetch it with `charmcraft fetch-lib charms.lxd_integrator.v0.lxd`, declare
`requires: {lxd: {interface: lxd}}` in your metadata, then::

    import http.client, json
    import ops
    from charms.lxd_integrator.v0.lxd import LxdRequirer

    class MyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.lxd = LxdRequirer(self, "lxd")
            framework.observe(self.on.install, self._on_install)
            framework.observe(self.lxd.on.lxd_ready, self._on_lxd_ready)
            framework.observe(self.lxd.on.lxd_changed, self._on_lxd_changed)

        def _on_install(self, event: ops.InstallEvent):
            self.lxd.set_client_certificates([CERT_PEM])  # remembered for every relation

        def _on_lxd_changed(self, event: ops.RelationEvent):
            # Not (or no longer) ready, and why: e.g. "certificate 3f1c0a9b2e7d refused by
            # the provider: expired", "certificate ... trusted on 1 of 3 nodes".
            self.unit.status = ops.WaitingStatus(self.lxd.not_ready_reason(event.relation) or "")

        def _on_lxd_ready(self, event: ops.RelationEvent):
            info = self.lxd.info(event.relation)
            if info is None or not info.pinned:
                # A provider that predates `server_certificate`: obtain LXD's certificate
                # some other way and pass it as ssl_context(..., server_certificate=PEM).
                self.unit.status = ops.BlockedStatus("LXD's server certificate is not published")
                return
            context = self.lxd.ssl_context(CERT_PEM, KEY_PEM, event.relation)
            for node in info.nodes:
                conn = http.client.HTTPSConnection(node.host, node.port, context=context, timeout=10)
                conn.request("GET", "/1.0")
                auth = json.load(conn.getresponse())["metadata"]["auth"]  # "trusted"
            self.unit.status = ops.ActiveStatus()

Events (each carries `.relation`):

- `lxd_ready`: every certificate set with `set_client_certificates` is trusted on every
  published node, and the server certificate is known. Fired once per change of that picture
  while ready (a node added or moved, the server certificate rotated, our certificates
  changed), so a handler can reconnect; never twice for the same picture.
  A provider of interface 1.0 that predates the server certificate keys can be ready
  without them: then `info().pinned` is False, `ssl_context()` needs the certificate from
  elsewhere (`server_certificate=`), and the library logs a warning saying so.
- `lxd_changed`: what the provider publishes changed and we are not (or no longer) ready;
  `not_ready_reason()` and `refused()` say why.
- `lxd_gone`: the relation is being removed.

Readiness is evaluated in every relation hook of the endpoint, when the charm sets or clears
its certificates (the event is then emitted from inside that call), and on `start`,
`config-changed`, `update-status`, `leader-elected` and `upgrade-charm`; `refresh()` does the
same from any other hook or action (it also re-publishes our certificates), so a certificate
the provider already trusts when it is set is reported ready at once.

Certificates are published in this unit's databag (`set_client_certificates(pems)`), or the
application's (`app=True`, written by the leader). Each entry must be exactly one PEM
`CERTIFICATE` block holding an X.509 certificate; bundles, keys, requests and anything else
raise `ValueError` saying what is wrong (never echoing the value). What is published is the
canonical PEM of each certificate (64-column base64, `\\n` line ends).

**Why a certificate is not trusted.** The provider names each certificate it refused in
`refused`: `LxdInfo.refused` maps fingerprint to reason code, and `refused()` restricts that
to ours. Codes today (`REFUSAL_REASONS` describes them; later providers may add codes, kept
as they are): `not-a-certificate`, `expired`, `not-yet-valid`, `held-by-another-application`,
`projects-outside-ceiling`, `unknown-project`, `reserved`, `too-many`, `rejected-by-lxd`.
`LxdInfo.registered_fingerprints` lists what the provider confirms is in LXD's trust store
(from `registered_certificates`).

**Rotating a client certificate without losing access.** Set the old and the new one together
(`set_client_certificates([OLD, NEW])`), wait for `lxd_ready` (both trusted on every node),
switch your connections to the new key, then drop the old one
(`set_client_certificates([NEW])`): the provider removes the old trust entry.

**Several relations** on the endpoint: pass `relation` to every helper. Without it,
`is_ready()` and `is_trusted()` answer for every relation together (true only when true on
each, false without any), `refused()` merges all relations, and `info()`, `ssl_context()` and
`not_ready_reason()` raise `SeveralRelationsError` (a `ValueError`, and an
`ops.TooManyRelatedAppsError` as before) naming the relation ids to choose from.

**Versions.** `LxdInfo.version` is what the provider says it speaks, `major`/`minor` its parts.
A missing or malformed version is a problem and never ready. A later version is read through
the `1.0` keys, which the interface requires every later provider to keep publishing.

**Provider data location.** Every provider unit writes the same content to its own unit
databag; the library reads the first unit databag (by unit name) that has a `version`, and the
provider's application databag only when no unit databag has one (older releases of the
provider also wrote it there). No hook assumes a remote unit: a `-relation-changed` for an
application databag change is handled like any other.

**Untrusted input.** Nothing the provider writes can raise out of, or stall, a hook: every
value is bounded before it is parsed (`LIMITS`: size, JSON nesting and item counts), PEM is
scanned in linear time without regular expressions, JSON nesting is measured before decoding,
and every certificate is checked as X.509 DER. What does not parse is left out and listed in
`LxdInfo.problems`, never echoed; the info is then not ready when what failed is needed
(`version`, `nodes`, a published server certificate). The X.509 check is a small DER parser in
this module rather than the `cryptography` package: charm libraries are copied into charms
that may not ship compiled dependencies, and the check needed here is structural (the
certificate's fields and exact lengths); signatures and dates are the provider's and LXD's to
judge, and the TLS handshake checks the server's.
"""

# Changelog
# - LIBPATCH 2:
#   * Provider data: read from the provider's unit databags (first by unit name with a
#     `version`), its application databag only as a fallback (older providers).
#   * Every provider value bounded before parsing (size, JSON depth measured before decoding,
#     item counts), PEM scanned in linear time: no RecursionError, TypeError or regex
#     backtracking from relation data; problems recorded, never echoed.
#   * Certificates checked as X.509 DER; set_client_certificates refuses bundles, keys, requests
#     and garbage with a ValueError saying what is wrong, and publishes canonical PEM.
#   * Readiness also evaluated when certificates are set or cleared, on start, config-changed,
#     update-status, leader-elected and upgrade-charm, and by the new refresh(). lxd_ready fires
#     once per change of the picture (only our own certificates' trust counts); after upgrading
#     from LIBPATCH 1, once more on the first evaluation.
#   * New: LxdInfo.refused, registered_fingerprints, nodes_complete, major, minor,
#     not_ready_reason(); LxdRequirer.refused(), not_ready_reason(), refresh();
#     SeveralRelationsError; REFUSAL_REASONS; LIMITS.
#   * `version` checked (MAJOR.MINOR; later versions read through the 1.0 keys); malformed
#     node entries make the info not ready; node hosts validated.
#   * Several relations: documented behaviour instead of ops' TooManyRelatedAppsError.
#   * Types clean under mypy --strict with ops 2.x and 3.x.
# - LIBPATCH 1: first release.

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import ipaddress
import json
import logging
import os
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import ops

# The unique Charmhub library identifier, never change it.
LIBID = "aed19b7f4fde4478b6e8fac511bdc421"
# Increment this major API version when introducing breaking changes.
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 if you are
# raising the major API version.
LIBPATCH = 2

logger = logging.getLogger(__name__)

KEY_CLIENT_CERTS = "client_certificates"
KEY_VERSION = "version"
KEY_NODES = "nodes"
KEY_REGISTERED = "registered_certificates"
KEY_SERVER_CERT = "server_certificate"
KEY_SERVER_CERT_FP = "server_certificate_fingerprint"
KEY_REFUSED = "refused"
PROVIDER_KEYS = (KEY_VERSION, KEY_NODES, KEY_REGISTERED, KEY_SERVER_CERT, KEY_SERVER_CERT_FP, KEY_REFUSED)
DEFAULT_PORT = 8443

_MIB = 1024 * 1024
# Every bound applied to what the provider writes, and to what the charm asks to send.
# Characters of a value are counted before anything else is done with it.
LIMITS: Mapping[str, int] = MappingProxyType(
    {
        # Juju stores a databag as one 16 MiB document: nothing a controller delivers is larger.
        "value_chars": 16 * _MIB,
        "version_chars": 16,
        # The provider keeps what it writes to one databag under 8 MiB.
        "nodes_chars": 8 * _MIB,
        "registered_chars": 8 * _MIB,
        # One certificate, or a bundle an operator pinned: a few KiB each.
        "server_certificate_chars": 1 * _MIB,
        "server_certificate_fingerprint_chars": 256,
        "refused_chars": 1 * _MIB,
        # JSON: nesting measured before decoding (the provider's values nest 3 deep); `[` and
        # `{` anywhere in a value, strings included; `"` and `\` counted when nesting must be
        # measured (more openings than json_depth), which bounds the scan that measures it.
        "json_depth": 32,
        "json_openings": 20_000,
        "json_quotes": 1_000_000,
        "json_backslashes": 100_000,
        # `,` anywhere in a value: bounds every list before it is decoded.
        "json_commas": 500_000,
        "nodes": 1_000,
        "node_name_chars": 255,
        "endpoint_chars": 300,
        # trusted_certs_fp entries of all nodes together.
        "trusted_fingerprints": 200_000,
        "registered": 10_000,
        "refused": 1_000,
        "reason_chars": 64,
        "pem_blocks": 1_000,
        "certificate_der_bytes": 64 * 1024,
        # set_client_certificates: the provider takes at most 1,000 certificates per databag.
        "client_certificates": 1_000,
        "client_certificate_chars": 256 * 1024,
        # Problems named one by one per key; the rest are counted.
        "problems_per_key": 5,
    }
)

REFUSAL_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "not-a-certificate": "not a valid X.509 certificate",
        "expired": "expired",
        "not-yet-valid": "not yet valid (check this machine's clock)",
        "held-by-another-application": "already trusted for another application",
        "projects-outside-ceiling": "asks for projects outside what the provider may grant",
        "unknown-project": "asks for a project LXD does not have",
        "reserved": "is the provider's own or LXD's server certificate",
        "too-many": "past the provider's limit of certificates per databag",
        "rejected-by-lxd": "rejected by LXD",
    }
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_REASON = re.compile(r"[a-z0-9-]{1,64}")
_PEM_LABEL = re.compile(r"[A-Z0-9]+(?: [A-Z0-9]+)*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# A JSON string (escapes followed), or an escape pair outside one. Used only to drop strings
# before measuring nesting: each unescaped quote starts at most one attempt, and an attempt
# that fails (an unterminated string) leaves no later quote unescaped, so the scan is linear.
_JSON_STRING_OR_ESCAPE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|\\.', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# OpenSSL's X509_V_FLAG_PARTIAL_CHAIN; `ssl` names it from Python 3.10.
_PARTIAL_CHAIN = getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)


class ServerCertificateUnknown(LookupError):
    """The provider publishes no usable server certificate and none was given."""


class SeveralRelationsError(ops.TooManyRelatedAppsError, ValueError):
    """A helper needs one relation and the endpoint has several: pass `relation`.

    Both a `ValueError` and ops' `TooManyRelatedAppsError` (what LIBPATCH 1 raised)."""

    def __init__(self, relation_name: str, relation_ids: Sequence[int]):
        super().__init__(relation_name, len(relation_ids), 1)
        ids = ", ".join(str(i) for i in relation_ids)
        self.relation_ids = tuple(relation_ids)
        self.args = (f"{len(relation_ids)} relations on endpoint {relation_name!r} (ids {ids}): pass the relation to use",)

    def __str__(self) -> str:
        return str(self.args[0])


# --- PEM and X.509, in linear time --------------------------------------------------------


def _pem_blocks(text: str) -> Tuple[List[Tuple[str, bytes]], bool]:
    """Every PEM block in `text` as (label, DER bytes), and whether anything but whitespace is
    outside them. Linear: `str.find` only, each search starting where the last one ended.
    ValueError naming the fault (never the text): a BEGIN line without END, a broken armour
    line, an armour line inside a block, a body that is not base64, too many blocks."""
    blocks: List[Tuple[str, bytes]] = []
    outside = False
    pos = 0
    begin = "-----BEGIN "
    while True:
        i = text.find(begin, pos)
        gap = text[pos:] if i < 0 else text[pos:i]
        if gap and not gap.isspace():
            outside = True
        if i < 0:
            return blocks, outside
        if len(blocks) >= LIMITS["pem_blocks"]:
            raise ValueError(f"more than {LIMITS['pem_blocks']} PEM blocks")
        label_start = i + len(begin)
        j = text.find("-----", label_start, label_start + 64 + 5)
        if j < 0 or not _PEM_LABEL.fullmatch(text, label_start, j):
            raise ValueError("a malformed PEM BEGIN line")
        label = text[label_start:j]
        end = f"-----END {label}-----"
        k = text.find(end, j + 5)
        if k < 0:
            raise ValueError("a PEM block without its END line")
        body = text[j + 5 : k]
        if "-----" in body:
            raise ValueError("an armour line inside a PEM block")
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except ValueError:  # binascii.Error, or non-ASCII text
            raise ValueError("a PEM block whose body is not base64") from None
        blocks.append((label, der))
        pos = k + len(end)


def _tlv(der: bytes, pos: int, end: int) -> Tuple[int, int, int]:
    """One DER element inside der[pos:end]: (tag, value start, value end)."""
    if end - pos < 2:
        raise ValueError("truncated")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise ValueError("a multi-byte tag")
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise ValueError("an indefinite length (BER, not DER)")
        if count > 4 or count > end - pos:
            raise ValueError("truncated")
        length = int.from_bytes(der[pos : pos + count], "big")
        if der[pos] == 0 or length < 0x80:
            raise ValueError("a length not in its shortest form")
        pos += count
    if length > end - pos:
        raise ValueError("truncated")
    return tag, pos, pos + length


def _expect(der: bytes, pos: int, end: int, tag: int, what: str) -> Tuple[int, int]:
    got, start, stop = _tlv(der, pos, end)
    if got != tag:
        raise ValueError(f"{what} missing")
    return start, stop


def _time(der: bytes, pos: int, end: int, what: str) -> Tuple[datetime.datetime, int]:
    tag, start, stop = _tlv(der, pos, end)
    raw = der[start:stop]
    if tag == 0x17 and len(raw) == 13:  # UTCTime YYMMDDHHMMSSZ
        year = int(raw[:2]) if raw[:2].isdigit() else -1
        text = (b"19" if year >= 50 else b"20") + raw
    elif tag == 0x18 and len(raw) == 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        text = raw
    else:
        raise ValueError(f"{what} is not a DER time")
    if not (text[:14].isdigit() and text[14:] == b"Z"):
        raise ValueError(f"{what} is not a DER time")
    d = [int(text[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))]
    try:
        when = datetime.datetime(d[0], d[1], d[2], d[3], d[4], d[5], tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ValueError(f"{what} is not a valid date") from None
    return when, stop


def _algorithm(der: bytes, pos: int, end: int, what: str) -> int:
    start, stop = _expect(der, pos, end, 0x30, what)
    oid_start, oid_stop = _expect(der, start, stop, 0x06, what)
    if oid_start == oid_stop:
        raise ValueError(f"{what} has an empty OID")
    return stop


@dataclass(frozen=True)
class _Certificate:
    der: bytes
    fingerprint: str
    not_before: datetime.datetime
    not_after: datetime.datetime


def _x509(der: bytes) -> _Certificate:
    """`der` checked as one X.509 certificate (RFC 5280's structure: exact DER lengths, the
    tbsCertificate's fields in order, no trailing bytes); ValueError naming what is wrong."""
    if len(der) > LIMITS["certificate_der_bytes"]:
        raise ValueError(f"larger than {LIMITS['certificate_der_bytes']} bytes")
    start, end = _expect(der, 0, len(der), 0x30, "the Certificate SEQUENCE")
    if end != len(der):
        raise ValueError("bytes after the certificate")
    tbs_start, tbs_end = _expect(der, start, end, 0x30, "tbsCertificate")
    pos = _algorithm(der, tbs_end, end, "signatureAlgorithm")
    sig_start, sig_end = _expect(der, pos, end, 0x03, "signatureValue")
    if sig_end == sig_start or der[sig_start] > 7 or sig_end != end:
        raise ValueError("signatureValue malformed, or bytes after it")
    # tbsCertificate
    pos = tbs_start
    tag, start, stop = _tlv(der, pos, tbs_end)
    if tag == 0xA0:  # [0] EXPLICIT version
        v_start, v_stop = _expect(der, start, stop, 0x02, "version")
        if v_stop != stop or v_stop - v_start != 1 or der[v_start] > 2:
            raise ValueError("version is not v1, v2 or v3")
        pos = stop
    serial_start, serial_stop = _expect(der, pos, tbs_end, 0x02, "serialNumber")
    if serial_stop == serial_start:
        raise ValueError("serialNumber empty")
    pos = _algorithm(der, serial_stop, tbs_end, "signature")
    _, pos = _expect(der, pos, tbs_end, 0x30, "issuer")
    validity_start, validity_end = _expect(der, pos, tbs_end, 0x30, "validity")
    not_before, after = _time(der, validity_start, validity_end, "notBefore")
    not_after, after = _time(der, after, validity_end, "notAfter")
    if after != validity_end:
        raise ValueError("validity malformed")
    _, pos = _expect(der, validity_end, tbs_end, 0x30, "subject")
    spki_start, spki_end = _expect(der, pos, tbs_end, 0x30, "subjectPublicKeyInfo")
    key_pos = _algorithm(der, spki_start, spki_end, "subjectPublicKeyInfo algorithm")
    key_start, key_end = _expect(der, key_pos, spki_end, 0x03, "subjectPublicKey")
    if key_end == key_start or key_end != spki_end:
        raise ValueError("subjectPublicKeyInfo malformed")
    pos = spki_end
    # issuerUniqueID [1], subjectUniqueID [2], extensions [3]: optional, in this order.
    for allowed in ((0x81, 0xA1), (0x82, 0xA2), (0xA3,)):
        if pos < tbs_end and der[pos] in allowed:
            tag, start, stop = _tlv(der, pos, tbs_end)
            if tag == 0xA3:
                ext_start, ext_stop = _expect(der, start, stop, 0x30, "extensions")
                if ext_stop != stop or ext_stop == ext_start:
                    raise ValueError("extensions malformed")
            pos = stop
    if pos != tbs_end:
        raise ValueError("unexpected fields in tbsCertificate")
    return _Certificate(der, hashlib.sha256(der).hexdigest(), not_before, not_after)


_LABELS_REFUSED = {
    "PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "ENCRYPTED PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "RSA PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "EC PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "DSA PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "OPENSSH PRIVATE KEY": "a private key, not a certificate (never send a key)",
    "PUBLIC KEY": "a public key, not a certificate",
    "RSA PUBLIC KEY": "a public key, not a certificate",
    "CERTIFICATE REQUEST": "a certificate signing request, not a certificate",
    "NEW CERTIFICATE REQUEST": "a certificate signing request, not a certificate",
    "TRUSTED CERTIFICATE": "an OpenSSL TRUSTED CERTIFICATE block, not a plain CERTIFICATE",
    "X509 CRL": "a certificate revocation list, not a certificate",
}


def _one_certificate(pem: Any) -> _Certificate:
    """`pem` checked as exactly one PEM CERTIFICATE block holding an X.509 certificate, with
    nothing but whitespace around it; ValueError saying what is wrong, never echoing it."""
    if not isinstance(pem, str):
        raise ValueError("not a string")
    if len(pem) > LIMITS["client_certificate_chars"]:
        raise ValueError(f"longer than {LIMITS['client_certificate_chars']} characters")
    if not pem.isascii():
        raise ValueError("not ASCII text, so not PEM")
    blocks, outside = _pem_blocks(pem)
    if not blocks:
        raise ValueError("not PEM: no -----BEGIN line")
    for label, _ in blocks:
        if label != "CERTIFICATE":
            raise ValueError(_LABELS_REFUSED.get(label, "a PEM block that is not a CERTIFICATE"))
    if len(blocks) > 1:
        raise ValueError(f"a bundle of {len(blocks)} certificates: give each as its own entry")
    if outside:
        raise ValueError("text outside the CERTIFICATE block")
    try:
        return _x509(blocks[0][1])
    except ValueError as e:
        raise ValueError(f"not an X.509 certificate: {e}") from None


def _canonical_pem(der: bytes) -> str:
    """PEM as the provider writes it: 64-column base64, `\\n` line ends, one trailing newline.
    (Not `ssl.DER_cert_to_PEM_cert`: its `textwrap` is quadratic on a long line.)"""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def fingerprint(pem: str) -> str:
    """LXD's fingerprint of one PEM certificate: SHA-256 of its DER, lowercase hex.

    ValueError when `pem` is not exactly one X.509 certificate in PEM (a bundle, a key,
    garbage); the message says what is wrong."""
    return _one_certificate(pem).fingerprint


def pinned_context(server_certificate: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A TLS client context for LXD: presents `cert_pem`/`key_pem`, trusts only `server_certificate`.

    `server_certificate` (one or more PEM certificates: LXD's cluster certificate, or the CA in
    LXD's PKI mode) is the only trust anchor: the system CAs are not loaded. A server passes
    when the certificate it presents is one of them, or chains up to one (signatures,
    validity dates, serverAuth usage, checked by OpenSSL). Host names are not checked: LXD's
    certificates name the host (`root@host`, loopback addresses), never the address dialled.
    Partial chains are allowed so that a pinned certificate that is not self-signed (a
    PKI-mode server certificate pinned directly) is itself a trust anchor.

    Its CERTIFICATE blocks are taken (text and other blocks around them are ignored) and
    checked as X.509: ValueError when there is none or one is not a certificate.
    `ssl.SSLError` when OpenSSL refuses them, or the key does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= _PARTIAL_CHAIN
    # The pin is the trust decision. VERIFY_X509_STRICT (set by Python >= 3.13's
    # create_default_context, kept off here whatever the caller's Python) adds RFC 5280 profile
    # checks that refuse what private CAs commonly issue, e.g. no authorityKeyIdentifier.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=_anchors(server_certificate))
    # `ssl` loads keys from files only: a private directory, removed as soon as they are read.
    with tempfile.TemporaryDirectory(prefix="lxd-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        context.load_cert_chain(cert_path, key_path)
    return context


def _anchors(server_certificate: str) -> str:
    """The canonical PEM of every CERTIFICATE block of `server_certificate`, each checked."""
    if not isinstance(server_certificate, str):
        raise ValueError("server_certificate is not a string")
    blocks, _ = _pem_blocks(server_certificate)
    ders = [der for label, der in blocks if label == "CERTIFICATE"]
    if not ders:
        raise ValueError("server_certificate holds no PEM CERTIFICATE block")
    for n, der in enumerate(ders):
        try:
            _x509(der)
        except ValueError as e:
            raise ValueError(f"server_certificate block {n + 1} is not an X.509 certificate: {e}") from None
    return "".join(_canonical_pem(der) for der in ders)


# --- what the provider publishes ----------------------------------------------------------


@dataclass(frozen=True)
class LxdNode:
    """One online LXD member as the provider publishes it."""

    name: str
    endpoint: str
    host: str
    port: int
    trusted_certs_fp: FrozenSet[str]


def _version_parts(version: str) -> Optional[Tuple[int, int]]:
    if len(version) > LIMITS["version_chars"]:
        return None
    major, dot, minor = version.partition(".")
    for part in (major, minor):
        if not (dot and part.isascii() and part.isdigit() and len(part) <= 6):
            return None
    return int(major), int(minor)


@dataclass(frozen=True)
class LxdInfo:
    """What the provider publishes on one relation, decoded and checked."""

    # The provider's interface version as published ("1.0"); "" when missing.
    version: str
    nodes: Tuple[LxdNode, ...]
    # Canonical PEM (one or more certificates), when published and valid.
    server_certificate: Optional[str]
    server_certificate_fingerprint: Optional[str]
    # Whether the provider publishes the server certificate keys at all (False: a 1.0
    # provider that predates them).
    publishes_server_certificate: bool
    # What was left out, and why; never the values themselves.
    problems: Tuple[str, ...]
    # Fingerprint -> reason code, for every certificate of this relation the provider refused
    # (`refused`; well-formed entries only). See REFUSAL_REASONS.
    refused: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # Fingerprints of `registered_certificates`: in LXD's trust store, as the provider confirms.
    registered_fingerprints: FrozenSet[str] = frozenset()
    # Every entry of `nodes` was understood (False: at least one was malformed or the list was
    # unreadable, so "trusted on every node" cannot be judged).
    nodes_complete: bool = True

    @property
    def pinned(self) -> bool:
        """A server certificate to pin is known."""
        return self.server_certificate is not None

    @property
    def major(self) -> Optional[int]:
        """The major interface version the provider speaks; None when `version` is malformed."""
        parts = _version_parts(self.version)
        return None if parts is None else parts[0]

    @property
    def minor(self) -> Optional[int]:
        """The minor interface version; None when `version` is malformed."""
        parts = _version_parts(self.version)
        return None if parts is None else parts[1]

    def is_trusted(self, fingerprint: str) -> bool:
        """Every published node lists `fingerprint` (there is at least one node, and every
        entry of `nodes` was understood)."""
        fp = _normal_fp(fingerprint)
        return self.nodes_complete and bool(self.nodes) and all(fp in node.trusted_certs_fp for node in self.nodes)

    def not_ready_reason(self, fingerprints: Iterable[str]) -> Optional[str]:
        """Why a requirer asking for `fingerprints` is not ready with this info; None when it is.
        Short, for a status message: names no value but our own fingerprints' first 12 digits."""
        if self.major is None or self.major < 1:
            return "the provider's interface version is missing or not understood"
        if not self.nodes_complete:
            return "the provider's node list could not be read"
        if self.publishes_server_certificate and not self.pinned:
            return "the provider's server certificate could not be read"
        fps = sorted({_normal_fp(fp) for fp in fingerprints})
        if not fps:
            return "no client certificate set"
        for fp in fps:
            trusted = sum(1 for node in self.nodes if fp in node.trusted_certs_fp)
            if trusted == len(self.nodes) and self.nodes:
                continue
            reason = self.refused.get(fp)
            if reason is not None:
                return f"certificate {fp[:12]} refused by the provider: {REFUSAL_REASONS.get(reason, reason)}"
            if not self.nodes:
                return "no LXD node is online"
            return f"certificate {fp[:12]} trusted on {trusted} of {len(self.nodes)} nodes"
        return None


def _normal_fp(fp: str) -> str:
    return fp.replace(":", "").strip().lower()


class _Problems:
    """Problems per key, at most `problems_per_key` named each, the rest counted."""

    def __init__(self) -> None:
        self.items: List[str] = []
        self._counts: Dict[str, int] = {}

    def add(self, key: str, text: str) -> None:
        n = self._counts.get(key, 0) + 1
        self._counts[key] = n
        if n <= LIMITS["problems_per_key"]:
            self.items.append(f"{key}: {text}")

    def done(self) -> Tuple[str, ...]:
        extra = [f"{key}: {n - LIMITS['problems_per_key']} more problems" for key, n in self._counts.items() if n > LIMITS["problems_per_key"]]
        return tuple(self.items + extra)


def _json_shape_fault(raw: str) -> Optional[str]:
    """Why `raw` must not reach `json.loads` (nested too deep, or too much structure to measure
    cheaply), or None. Linear, and bounded before any Python-level loop."""
    if raw.count(",") > LIMITS["json_commas"]:
        return f"more than {LIMITS['json_commas']} JSON items"
    openings = raw.count("[") + raw.count("{")
    if openings <= LIMITS["json_depth"]:
        return None  # cannot nest deeper than it has openings
    if openings > LIMITS["json_openings"]:
        return f"more than {LIMITS['json_openings']} JSON arrays and objects"
    if raw.count('"') > LIMITS["json_quotes"]:
        return f"more than {LIMITS['json_quotes']} JSON quotes"
    if raw.count("\\") > LIMITS["json_backslashes"]:
        return f"more than {LIMITS['json_backslashes']} JSON escapes"
    brackets = _NOT_BRACKET.sub("", _JSON_STRING_OR_ESCAPE.sub("", raw))
    depth = 0
    for c in brackets:  # at most json_openings * 2 characters
        if c in "[{":
            depth += 1
            if depth > LIMITS["json_depth"]:
                return f"JSON nested deeper than {LIMITS['json_depth']} levels"
        else:
            depth -= 1
    return None


_Raw = Union[str, int]  # a value, or the length of one too long to read


def _load_json(key: str, raw: _Raw, problems: _Problems) -> Tuple[bool, Any]:
    """`raw` decoded, once its size and nesting are within bounds; (False, None) otherwise,
    with the problem recorded."""
    if isinstance(raw, int):
        problems.add(key, f"longer than {_cap(key)} characters")
        return False, None
    fault = _json_shape_fault(raw)
    if fault is not None:
        problems.add(key, fault)
        return False, None
    try:
        # No key of the interface holds a number: numbers are read as floats, because int() of
        # a long run of digits is quadratic where Python does not cap it (before 3.11).
        return True, json.loads(raw, parse_int=float)
    except ValueError:  # JSONDecodeError
        problems.add(key, "not JSON")
        return False, None


def _cap(key: str) -> int:
    return {
        KEY_VERSION: LIMITS["version_chars"],
        KEY_NODES: LIMITS["nodes_chars"],
        KEY_REGISTERED: LIMITS["registered_chars"],
        KEY_SERVER_CERT: LIMITS["server_certificate_chars"],
        KEY_SERVER_CERT_FP: LIMITS["server_certificate_fingerprint_chars"],
        KEY_REFUSED: LIMITS["refused_chars"],
    }.get(key, LIMITS["value_chars"])


def _host(netloc: str) -> Optional[Tuple[str, int]]:
    """(host, port) of `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address
    (no zone), port 1-65535 (8443 when absent); None otherwise."""
    if netloc.startswith("["):
        close = netloc.find("]")
        if close < 0:
            return None
        host, rest = netloc[1:close], netloc[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:  # AddressValueError; zones ("%eth0") are refused here too
            return None
        if "%" in host:
            return None
    else:
        host, colon, port_text = netloc.partition(":")
        rest = colon + port_text
        if not host or len(host) > 253:
            return None
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if all(label.isascii() and label.isdigit() for label in labels):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                return None
        elif not all(_HOST_LABEL.fullmatch(label) for label in labels):
            return None
    if not rest:
        return host, DEFAULT_PORT
    port_text = rest[1:]
    if rest[0] != ":" or not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None
    port = int(port_text)
    return (host, port) if 1 <= port <= 65535 else None


def _parse_node(raw: Any, index: int, problems: _Problems, budget: List[int]) -> Optional[LxdNode]:
    """One entry of `nodes`, or None (recorded) when it is malformed."""
    where = f"entry {index}"
    if not isinstance(raw, dict):
        problems.add(KEY_NODES, f"{where}: not an object")
        return None
    name, endpoint, fps = raw.get("name"), raw.get("endpoint"), raw.get("trusted_certs_fp", [])
    if not isinstance(name, str) or not name or len(name) > LIMITS["node_name_chars"] or not name.isprintable():
        problems.add(KEY_NODES, f"{where}: no name, or not a printable name of at most {LIMITS['node_name_chars']} characters")
        return None
    if not isinstance(endpoint, str) or len(endpoint) > LIMITS["endpoint_chars"] or not endpoint.startswith("https://"):
        problems.add(KEY_NODES, f"{where}: endpoint is not an https:// URL")
        return None
    netloc = endpoint[len("https://") :]
    if netloc.endswith("/"):
        netloc = netloc[:-1]
    hostport = _host(netloc)
    if hostport is None:
        problems.add(KEY_NODES, f"{where}: endpoint is not https://<host name, IPv4 or [IPv6]>[:port]")
        return None
    if not isinstance(fps, list):
        problems.add(KEY_NODES, f"{where}: trusted_certs_fp is not a list")
        return None
    budget[0] -= len(fps)
    if budget[0] < 0:
        problems.add(KEY_NODES, f"more than {LIMITS['trusted_fingerprints']} trusted_certs_fp entries in all")
        return None
    valid = set()
    bad = 0
    for fp in fps:
        if isinstance(fp, str) and len(fp) <= 128:
            fp = _normal_fp(fp) if len(fp) != 64 or not _HEX64.fullmatch(fp) else fp
            if _HEX64.fullmatch(fp):
                valid.add(fp)
                continue
        bad += 1
    if bad:
        problems.add(KEY_NODES, f"{where}: {bad} trusted_certs_fp entries are not SHA-256 fingerprints")
    return LxdNode(name=name, endpoint=endpoint, host=hostport[0], port=hostport[1], trusted_certs_fp=frozenset(valid))


def _parse_nodes(raw: Optional[_Raw], problems: _Problems) -> Tuple[Tuple[LxdNode, ...], bool]:
    """(nodes understood, whether every entry was)."""
    if raw is None:
        return (), True  # nothing published yet: no node, so not ready, but not a problem
    ok, value = _load_json(KEY_NODES, raw, problems)
    if not ok:
        return (), False
    if not isinstance(value, list):
        problems.add(KEY_NODES, "not a list")
        return (), False
    if len(value) > LIMITS["nodes"]:
        problems.add(KEY_NODES, f"more than {LIMITS['nodes']} entries")
        return (), False
    budget = [LIMITS["trusted_fingerprints"]]
    parsed = [_parse_node(entry, i, problems, budget) for i, entry in enumerate(value)]
    nodes = tuple(node for node in parsed if node is not None)
    return nodes, len(nodes) == len(value)


def _server_ders(pem: str) -> List[bytes]:
    """The DER of every block of a published server_certificate: PEM CERTIFICATE blocks only,
    each X.509; ValueError saying what is wrong."""
    blocks, outside = _pem_blocks(pem)
    if not blocks:
        raise ValueError("no PEM CERTIFICATE block")
    if outside or any(label != "CERTIFICATE" for label, _ in blocks):
        raise ValueError("something besides PEM CERTIFICATE blocks")
    ders = []
    for n, (_, der) in enumerate(blocks):
        try:
            ders.append(_x509(der).der)
        except ValueError as e:
            raise ValueError(f"block {n + 1} is not an X.509 certificate ({e})") from None
    return ders


def _parse_server_certificate(pem: Optional[_Raw], fp: Optional[_Raw], problems: _Problems) -> Tuple[Optional[str], Optional[str]]:
    if pem is None and fp is None:
        return None, None
    if not pem or not fp:
        problems.add(KEY_SERVER_CERT, "server_certificate and server_certificate_fingerprint are not both set")
        return None, None
    if isinstance(fp, int):
        problems.add(KEY_SERVER_CERT_FP, f"longer than {LIMITS['server_certificate_fingerprint_chars']} characters")
        return None, None
    if not _HEX64.fullmatch(_normal_fp(fp)):
        problems.add(KEY_SERVER_CERT_FP, "not a SHA-256 fingerprint")
        return None, None
    if isinstance(pem, int):
        problems.add(KEY_SERVER_CERT, f"longer than {LIMITS['server_certificate_chars']} characters")
        return None, None
    if not pem.isascii():
        problems.add(KEY_SERVER_CERT, "not ASCII text")
        return None, None
    try:
        ders = _server_ders(pem)
    except ValueError as e:  # our own messages, which never quote the text
        problems.add(KEY_SERVER_CERT, str(e))
        return None, None
    canonical = "".join(_canonical_pem(der) for der in ders)
    try:
        # OpenSSL's own parse: what `pinned_context` will load must load. TypeError and
        # UnicodeEncodeError (a ValueError) are what `cadata` raises on text it cannot take;
        # canonical PEM is ASCII, but a parser's every exception is caught here.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=canonical)
    except ssl.SSLError:
        problems.add(KEY_SERVER_CERT, "OpenSSL refuses to load it")
        return None, None
    except (ValueError, TypeError):
        problems.add(KEY_SERVER_CERT, "OpenSSL cannot take it as text")
        return None, None
    if hashlib.sha256(ders[0]).hexdigest() != _normal_fp(fp):
        problems.add(KEY_SERVER_CERT_FP, "does not match server_certificate")
        return None, None
    return canonical, _normal_fp(fp)


def _parse_registered(raw: Optional[_Raw], problems: _Problems) -> FrozenSet[str]:
    if raw is None:
        return frozenset()
    ok, value = _load_json(KEY_REGISTERED, raw, problems)
    if not ok:
        return frozenset()
    if not isinstance(value, list):
        problems.add(KEY_REGISTERED, "not a list")
        return frozenset()
    if len(value) > LIMITS["registered"]:
        problems.add(KEY_REGISTERED, f"more than {LIMITS['registered']} entries: the first {LIMITS['registered']} read")
        value = value[: LIMITS["registered"]]
    fps = set()
    bad = 0
    for pem in value:
        try:
            fps.add(_one_certificate(pem).fingerprint)
        except ValueError:
            bad += 1
    if bad:
        problems.add(KEY_REGISTERED, f"{bad} entries are not one PEM X.509 certificate")
    return frozenset(fps)


def _parse_refused(raw: Optional[_Raw], problems: _Problems) -> Mapping[str, str]:
    if raw is None:
        return MappingProxyType({})
    ok, value = _load_json(KEY_REFUSED, raw, problems)
    if not ok:
        return MappingProxyType({})
    if not isinstance(value, list):
        problems.add(KEY_REFUSED, "not a list")
        return MappingProxyType({})
    if len(value) > LIMITS["refused"]:
        problems.add(KEY_REFUSED, f"more than {LIMITS['refused']} entries: the first {LIMITS['refused']} read")
        value = value[: LIMITS["refused"]]
    refused: Dict[str, str] = {}
    bad = 0
    for entry in value:
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if (
            isinstance(fp, str)
            and isinstance(reason, str)
            and len(fp) == 64
            and len(reason) <= LIMITS["reason_chars"]
            and _HEX64.fullmatch(fp)
            and _REASON.fullmatch(reason)
        ):
            refused.setdefault(fp, reason)
        else:
            bad += 1
    if bad:
        problems.add(KEY_REFUSED, f"{bad} entries are not {{fingerprint, reason}} with a SHA-256 fingerprint and a reason code")
    return MappingProxyType(dict(sorted(refused.items())))


def _raw_values(bag: Mapping[str, str]) -> Tuple[Tuple[str, _Raw], ...]:
    """The provider's keys present in `bag`; a value longer than its key's cap (or not a
    string) is replaced by its length, so it is never parsed, hashed or kept."""
    out: List[Tuple[str, _Raw]] = []
    for key in PROVIDER_KEYS:
        value = bag.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            out.append((key, -1))
        elif len(value) > _cap(key):
            out.append((key, len(value)))
        else:
            out.append((key, value))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _parse_raw(raw: Tuple[Tuple[str, _Raw], ...]) -> Optional[LxdInfo]:
    """parse_provider_data on `_raw_values`: cached, so that the helpers a charm calls in one
    hook parse each databag once."""
    if not raw:
        return None
    values = dict(raw)
    problems = _Problems()
    version = values.get(KEY_VERSION)
    if version is None:
        problems.add(KEY_VERSION, "missing")
        version = ""
    elif isinstance(version, int):
        problems.add(KEY_VERSION, f"longer than {LIMITS['version_chars']} characters")
        version = ""
    else:
        parts = _version_parts(version)
        if parts is None:
            problems.add(KEY_VERSION, "not MAJOR.MINOR")
        elif parts[0] < 1:
            problems.add(KEY_VERSION, "a major version before 1")
    nodes, complete = _parse_nodes(values.get(KEY_NODES), problems)
    cert, fp = _parse_server_certificate(values.get(KEY_SERVER_CERT), values.get(KEY_SERVER_CERT_FP), problems)
    registered = _parse_registered(values.get(KEY_REGISTERED), problems)
    refused = _parse_refused(values.get(KEY_REFUSED), problems)
    return LxdInfo(
        version=version,
        nodes=nodes,
        server_certificate=cert,
        server_certificate_fingerprint=fp,
        publishes_server_certificate=KEY_SERVER_CERT in values or KEY_SERVER_CERT_FP in values,
        problems=problems.done(),
        refused=refused,
        registered_fingerprints=registered,
        nodes_complete=complete,
    )


def parse_provider_data(bag: Mapping[str, str]) -> Optional[LxdInfo]:
    """One provider databag decoded and checked; None when it holds none of the provider's keys.

    Never raises on what the bag holds: every value is bounded before it is parsed (`LIMITS`),
    and what does not parse is left out and named in `problems` (never echoed). A missing or
    malformed `version` is such a problem."""
    return _parse_raw(_raw_values(bag))


def _ready(info: Optional[LxdInfo], fingerprints: FrozenSet[str]) -> bool:
    return info is not None and info.not_ready_reason(fingerprints) is None


# --- events and the requirer --------------------------------------------------------------


class LxdReadyEvent(ops.RelationEvent):
    """Our certificates are trusted on every node and the server certificate is known."""


class LxdChangedEvent(ops.RelationEvent):
    """What the provider publishes changed; not (or no longer) ready."""


class LxdGoneEvent(ops.RelationEvent):
    """The relation to the provider is being removed."""


class LxdRequirerEvents(ops.ObjectEvents):
    """The events `LxdRequirer` emits."""

    lxd_ready = ops.EventSource(LxdReadyEvent)
    lxd_changed = ops.EventSource(LxdChangedEvent)
    lxd_gone = ops.EventSource(LxdGoneEvent)


class LxdRequirer(ops.Object):
    """The requirer end of an `lxd` relation endpoint."""

    on = LxdRequirerEvents()
    # ops declares StoredState.__init__ without annotations.
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, charm: ops.CharmBase, relation_name: str = "lxd"):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        # certificates: PEMs to publish (None: publish nothing); app: in the app databag;
        # seen: relation id -> digest of the picture last reported, to fire once per change.
        self._state.set_default(certificates=None, app=False, seen={})
        events = charm.on[relation_name]
        observe = charm.framework.observe
        observe(events.relation_created, self._on_relation)
        observe(events.relation_joined, self._on_relation)
        observe(events.relation_changed, self._on_relation)
        observe(events.relation_departed, self._on_relation)
        observe(events.relation_broken, self._on_broken)
        for event in (charm.on.start, charm.on.config_changed, charm.on.update_status, charm.on.leader_elected, charm.on.upgrade_charm):
            observe(event, self._on_other_hook)

    @property
    def _state(self) -> Any:
        # ops 2's BoundStoredState.__getattr__ is overloaded in a way mypy cannot follow.
        return self._stored

    # --- what we send --------------------------------------------------------------------

    def set_client_certificates(self, pems: Sequence[str], app: bool = False) -> None:
        """Publish `pems` as `client_certificates` on every relation, now and on later ones.

        With `app=True` they go to the application databag (written by the leader; the unit
        databag's copy is removed), else to this unit's. Each entry must be exactly one PEM
        certificate: ValueError saying which entry and what is wrong (a bundle, a key, not
        X.509, ...) otherwise, and nothing is published. What is published is each
        certificate's canonical PEM, once (duplicates dropped).

        Readiness is evaluated at once: `lxd_ready` (or `lxd_changed`) may be emitted from
        inside this call when the provider already trusts (or refused) them.
        """
        if isinstance(pems, (str, bytes)):
            raise ValueError("pems is one string: pass a list of PEM certificates")
        pems = list(pems)
        if len(pems) > LIMITS["client_certificates"]:
            raise ValueError(f"{len(pems)} certificates: the provider takes at most {LIMITS['client_certificates']}")
        canonical: Dict[str, str] = {}
        for n, pem in enumerate(pems):
            try:
                cert = _one_certificate(pem)
            except ValueError as e:
                raise ValueError(f"client certificate {n + 1} of {len(pems)}: {e}") from None
            now = datetime.datetime.now(datetime.timezone.utc)
            if not cert.not_before <= now <= cert.not_after:
                logger.warning(
                    "lxd: client certificate %s is %s here; the provider will refuse it if it is on its clock",
                    cert.fingerprint[:12],
                    "expired" if now > cert.not_after else "not yet valid",
                )
            canonical.setdefault(cert.fingerprint, _canonical_pem(cert.der))
        self._state.certificates = list(canonical.values())
        self._state.app = app
        self.refresh()

    def clear_client_certificates(self) -> None:
        """Stop asking: `client_certificates` is removed from our databags (the application's
        on the leader), and the library leaves the key alone from then on. Readiness is
        evaluated at once (`lxd_changed` when we were ready)."""
        self._state.certificates = None
        for relation in self.model.relations[self._relation_name]:
            bags = [relation.data[self.model.unit]]
            if self.model.unit.is_leader():
                bags.append(relation.data[self.model.app])
            for bag in bags:
                bag.pop(KEY_CLIENT_CERTS, None)
        self.refresh()

    @property
    def client_fingerprints(self) -> FrozenSet[str]:
        """Fingerprints of the certificates we ask the provider to trust."""
        return self._ours()[0]

    def _ours(self) -> Tuple[FrozenSet[str], int]:
        """Our fingerprints, and how many stored certificates are not certificates (stored by
        LIBPATCH 1, which checked less): such a set can never be ready."""
        fps = set()
        bad = 0
        for pem in self._state.certificates or []:
            try:
                fps.add(_one_certificate(pem).fingerprint)
            except ValueError:
                bad += 1
        return frozenset(fps), bad

    def _publish(self, relation: ops.Relation) -> None:
        """Writes our certificates to the chosen databag and removes them from the other. Until
        `set_client_certificates` is called, the key is the charm's own business: untouched."""
        pems = self._state.certificates
        if pems is None:
            return
        value = json.dumps(list(pems))
        bags = [(relation.data[self.model.unit], not self._state.app)]
        if self.model.unit.is_leader():
            bags.append((relation.data[self.model.app], bool(self._state.app)))
        for bag, chosen in bags:
            if not chosen:
                bag.pop(KEY_CLIENT_CERTS, None)
            elif bag.get(KEY_CLIENT_CERTS) != value:
                bag[KEY_CLIENT_CERTS] = value

    # --- what we read --------------------------------------------------------------------

    def _relations(self) -> List[ops.Relation]:
        return list(self.model.relations[self._relation_name])

    def _one(self, relation: Optional[ops.Relation]) -> Optional[ops.Relation]:
        """`relation`, else the endpoint's only relation (None without any); several:
        SeveralRelationsError."""
        if relation is not None:
            return relation
        relations = self._relations()
        if len(relations) > 1:
            raise SeveralRelationsError(self._relation_name, sorted(r.id for r in relations))
        return relations[0] if relations else None

    def info(self, relation: Optional[ops.Relation] = None) -> Optional[LxdInfo]:
        """What the provider publishes on `relation` (default: the endpoint's only relation;
        SeveralRelationsError when it has several); None without a relation or before the
        provider wrote anything.

        Read from the provider's unit databags, the first by unit name that has a `version`
        (every unit writes the same); its application databag when none has one (older
        providers wrote it there); else the first databag holding any provider key, whose
        info then names the missing version as a problem."""
        relation = self._one(relation)
        return None if relation is None else self._read(relation)

    def _read(self, relation: ops.Relation) -> Optional[LxdInfo]:
        bags: List[Mapping[str, str]] = [relation.data[unit] for unit in sorted(relation.units, key=lambda u: u.name)]
        # ops types Relation.app as always set; Juju can leave it unknown (ops 2).
        if relation.app is not None:
            bags.append(relation.data[relation.app])
        for bag in bags:
            if KEY_VERSION in bag:
                return parse_provider_data(bag)
        for bag in bags:
            info = parse_provider_data(bag)
            if info is not None:
                return info
        return None

    def is_trusted(self, fingerprint: str, relation: Optional[ops.Relation] = None) -> bool:
        """`fingerprint` is trusted on every node published on `relation` (default: on every
        relation of the endpoint, and there is at least one)."""
        relations = [relation] if relation is not None else self._relations()
        if not relations:
            return False
        for rel in relations:
            info = self._read(rel)
            if info is None or not info.is_trusted(fingerprint):
                return False
        return True

    def is_ready(self, relation: Optional[ops.Relation] = None) -> bool:
        """Our certificates are trusted on every node and the server certificate is known (or
        the provider publishes none: see `LxdInfo.pinned`), the provider's version and node
        list understood. Default: ready on every relation of the endpoint (at least one)."""
        relations = [relation] if relation is not None else self._relations()
        if not relations:
            return False
        ours, bad = self._ours()
        return bad == 0 and all(_ready(self._read(rel), ours) for rel in relations)

    def not_ready_reason(self, relation: Optional[ops.Relation] = None) -> Optional[str]:
        """Why we are not ready on `relation` (default: the endpoint's only relation;
        SeveralRelationsError when it has several), in a few words fit for a status message;
        None when ready. E.g. "certificate 3f1c0a9b2e7d refused by the provider: expired"."""
        relation = self._one(relation)
        if relation is None:
            return f"no {self._relation_name} relation"
        ours, bad = self._ours()
        if bad:
            return f"{bad} stored client certificates are not certificates: set them again"
        info = self._read(relation)
        if info is None:
            return "nothing published by the provider yet"
        return info.not_ready_reason(ours)

    def refused(self, relation: Optional[ops.Relation] = None) -> Dict[str, str]:
        """Our certificates the provider refused: fingerprint -> reason code (see
        `REFUSAL_REASONS`; unknown codes are kept as they are). Default: every relation of the
        endpoint, the lowest relation id first when two disagree."""
        relations = [relation] if relation is not None else sorted(self._relations(), key=lambda r: r.id)
        ours = self.client_fingerprints
        out: Dict[str, str] = {}
        for rel in relations:
            info = self._read(rel)
            if info is not None:
                for fp, reason in info.refused.items():
                    if fp in ours:
                        out.setdefault(fp, reason)
        return dict(sorted(out.items()))

    def ssl_context(
        self,
        cert_pem: str,
        key_pem: str,
        relation: Optional[ops.Relation] = None,
        server_certificate: Optional[str] = None,
    ) -> ssl.SSLContext:
        """`pinned_context` with the published server certificate (or `server_certificate`,
        obtained some other way, when given). Raises ServerCertificateUnknown without either;
        without `relation` and `server_certificate`, SeveralRelationsError when the endpoint
        has several relations."""
        if server_certificate is None:
            info = self.info(relation)
            server_certificate = info.server_certificate if info is not None else None
        if server_certificate is None:
            raise ServerCertificateUnknown("the provider publishes no usable server_certificate")
        return pinned_context(server_certificate, cert_pem, key_pem)

    # --- events --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-publish our certificates and evaluate readiness on every relation now, emitting
        `lxd_ready` or `lxd_changed` if the picture changed since it was last reported (as
        tls-certificates' `sync()`). Done already in the hooks listed in the module docstring;
        call it from any other hook or action."""
        for relation in self._relations():
            self._publish(relation)
            self._evaluate(relation)

    def _on_relation(self, event: ops.RelationEvent) -> None:
        # No remote unit is assumed: a change of the provider's application databag has none.
        self._publish(event.relation)
        self._evaluate(event.relation)

    def _on_other_hook(self, _: ops.EventBase) -> None:
        self.refresh()

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        seen: Dict[str, str] = dict(self._state.seen)
        seen.pop(str(event.relation.id), None)
        self._state.seen = seen
        self.on.lxd_gone.emit(event.relation, app=event.app)

    def _evaluate(self, relation: ops.Relation) -> None:
        """Fires lxd_ready or lxd_changed when the picture differs from the last one reported.

        Ready, the picture is what a connected charm would reconnect for: our certificates,
        the nodes (name, endpoint), the server certificate, the major version. Not ready, it
        is everything that could explain why (the trust of our certificates on each node, the
        refusals of ours, the problems). Other requirers' certificates coming and going on the
        same nodes change neither."""
        info = self._read(relation)
        ours, bad = self._ours()
        ready = bad == 0 and _ready(info, ours)
        picture: Dict[str, Any] = {"ready": ready, "ours": sorted(ours)}
        if ready and info is not None:
            picture.update(
                nodes=sorted([n.name, n.endpoint] for n in info.nodes),
                server=info.server_certificate_fingerprint,
                major=info.major,
            )
        elif info is not None:
            picture.update(
                bad=bad,
                version=info.version,
                nodes=[[n.name, n.endpoint, sorted(ours & n.trusted_certs_fp)] for n in info.nodes],
                complete=info.nodes_complete,
                server=info.server_certificate_fingerprint,
                publishes_server=info.publishes_server_certificate,
                refused=sorted([fp, r] for fp, r in info.refused.items() if fp in ours),
                problems=list(info.problems),
            )
        digest = hashlib.sha256(json.dumps(picture, sort_keys=True).encode()).hexdigest()
        seen: Dict[str, str] = dict(self._state.seen)
        before = seen.get(str(relation.id))
        if before == digest:
            return
        seen[str(relation.id)] = digest
        self._state.seen = seen
        if info is not None and info.problems:
            logger.warning("lxd relation %d: ignored from the provider: %s", relation.id, "; ".join(info.problems))
        if ready and info is not None and not info.pinned:
            logger.warning(
                "lxd relation %d: ready, but the provider publishes no server certificate "
                "(an lxd interface 1.0 provider that predates it): authenticate LXD some other way",
                relation.id,
            )
        if ready:
            self.on.lxd_ready.emit(relation, app=relation.app)
        elif info is not None or before is not None:
            self.on.lxd_changed.emit(relation, app=relation.app)
