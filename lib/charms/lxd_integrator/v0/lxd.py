# Copyright 2026 lxd-integrator contributors
# Licensed under the Apache License, Version 2.0.
"""Requirer side of the `lxd` interface: get client certificates trusted by LXD, then reach it.

`lxd-integrator` adds the certificates a requirer sends to an LXD server or cluster's trust
store and publishes every online member (`nodes`), the fingerprints LXD trusts on each, and the
server certificate to pin (`server_certificate`, `server_certificate_fingerprint`). This
library writes the requirer's side, reads the provider's, and builds an `ssl.SSLContext` that
presents your client certificate and accepts nothing but the published server certificate.
It needs only `ops` (2.x or 3.x) and the standard library. Interface specification:
https://github.com/canonical/lxd-integrator (docs/interface-lxd.md).

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

        def _on_install(self, event: ops.InstallEvent):
            self.lxd.set_client_certificates([CERT_PEM])  # remembered for every relation

        def _on_lxd_ready(self, event):
            info = self.lxd.info(event.relation)
            context = self.lxd.ssl_context(CERT_PEM, KEY_PEM, event.relation)
            for node in info.nodes:
                conn = http.client.HTTPSConnection(node.host, node.port, context=context)
                conn.request("GET", "/1.0")
                assert json.load(conn.getresponse())["metadata"]["auth"] == "trusted"

Events (each carries `.relation`):

- `lxd_ready`: every certificate set with `set_client_certificates` is trusted on every
  published node, and the server certificate is known. Fired again when that picture changes
  while ready (a node added, the server certificate rotated), so a handler can reconnect.
  A provider of interface 1.0 that predates the server certificate keys can be ready
  without them: then `info().pinned` is False, `ssl_context()` needs the certificate from
  elsewhere (`server_certificate=`), and the library logs a warning saying so.
- `lxd_changed`: what the provider publishes changed and we are not (or no longer) ready.
- `lxd_gone`: the relation is being removed.

Certificates are published in this unit's databag (`set_client_certificates(pems)`), or the
application's (`app=True`, written by the leader). Both sides' data is strings: the provider's
JSON values are decoded and checked here; what does not parse is left out and listed in
`LxdInfo.problems`, never echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import ops

# The unique Charmhub library identifier, never change it.
LIBID = "aed19b7f4fde4478b6e8fac511bdc421"
# Increment this major API version when introducing breaking changes.
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 if you are
# raising the major API version.
LIBPATCH = 1

logger = logging.getLogger(__name__)

KEY_CLIENT_CERTS = "client_certificates"
KEY_VERSION = "version"
KEY_NODES = "nodes"
KEY_SERVER_CERT = "server_certificate"
KEY_SERVER_CERT_FP = "server_certificate_fingerprint"
DEFAULT_PORT = 8443

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)
_HEX64 = re.compile(r"[0-9a-f]{64}")
# OpenSSL's X509_V_FLAG_PARTIAL_CHAIN; `ssl` names it from Python 3.10.
_PARTIAL_CHAIN = getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)


class ServerCertificateUnknown(LookupError):
    """The provider publishes no usable server certificate and none was given."""


def fingerprint(pem: str) -> str:
    """LXD's fingerprint of one PEM certificate: SHA-256 of its DER, lowercase hex."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip())).hexdigest()


def _certificate_ders(pem: str) -> List[bytes]:
    """The DER of every CERTIFICATE block in `pem`; ValueError if any block is not base64."""
    ders = []
    for body in _PEM_CERT.findall(pem):
        try:
            ders.append(base64.b64decode("".join(body.split()), validate=True))
        except binascii.Error as e:
            raise ValueError("a CERTIFICATE block is not base64") from e
    return ders


def pinned_context(server_certificate: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A TLS client context for LXD: presents `cert_pem`/`key_pem`, trusts only `server_certificate`.

    `server_certificate` (one or more PEM certificates: LXD's cluster certificate, or the CA in
    LXD's PKI mode) is the only trust anchor: the system CAs are not loaded. A server passes
    when the certificate it presents is one of them, or chains up to one (signatures,
    validity dates, serverAuth usage, checked by OpenSSL). Host names are not checked: LXD's
    certificates name the host (`root@host`, loopback addresses), never the address dialled.
    Partial chains are allowed so that a pinned certificate that is not self-signed (a
    PKI-mode server certificate pinned directly) is itself a trust anchor.
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
    context.load_verify_locations(cadata=server_certificate)
    # `ssl` loads keys from files only: a private directory, removed as soon as they are read.
    with tempfile.TemporaryDirectory(prefix="lxd-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        context.load_cert_chain(cert_path, key_path)
    return context


@dataclass(frozen=True)
class LxdNode:
    """One online LXD member as the provider publishes it."""

    name: str
    endpoint: str
    host: str
    port: int
    trusted_certs_fp: FrozenSet[str]


@dataclass(frozen=True)
class LxdInfo:
    """What the provider publishes on one relation, decoded and checked."""

    version: str
    nodes: Tuple[LxdNode, ...]
    # PEM (one or more certificates), when published and valid.
    server_certificate: Optional[str]
    server_certificate_fingerprint: Optional[str]
    # Whether the provider publishes the server certificate keys at all (False: a 1.0
    # provider that predates them).
    publishes_server_certificate: bool
    # What was left out, and why; never the values themselves.
    problems: Tuple[str, ...]

    @property
    def pinned(self) -> bool:
        """A server certificate to pin is known."""
        return self.server_certificate is not None

    def is_trusted(self, fingerprint: str) -> bool:
        """Every published node lists `fingerprint` (and there is at least one node)."""
        fp = _normal_fp(fingerprint)
        return bool(self.nodes) and all(fp in node.trusted_certs_fp for node in self.nodes)


def _normal_fp(fp: str) -> str:
    return fp.replace(":", "").strip().lower()


def _parse_node(raw: Any, index: int, problems: List[str]) -> Optional[LxdNode]:
    where = f"nodes[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: not an object")
        return None
    name, endpoint, fps = raw.get("name"), raw.get("endpoint"), raw.get("trusted_certs_fp", [])
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: no name")
        return None
    if not isinstance(endpoint, str):
        problems.append(f"{where}: no endpoint")
        return None
    try:
        url = urlsplit(endpoint)
        scheme, host = url.scheme, url.hostname
        port = DEFAULT_PORT if url.port is None else url.port  # .port raises on a bad port
    except ValueError:
        scheme, host, port = "", None, 0
    if scheme != "https" or not host or not port:
        problems.append(f"{where}: endpoint is not an https URL with a host")
        return None
    if not isinstance(fps, list):
        problems.append(f"{where}: trusted_certs_fp is not a list")
        fps = []
    normal = [_normal_fp(fp) if isinstance(fp, str) else "" for fp in fps]
    valid = frozenset(fp for fp in normal if _HEX64.fullmatch(fp))
    bad = sum(1 for fp in normal if not _HEX64.fullmatch(fp))
    if bad:
        problems.append(f"{where}: {bad} trusted_certs_fp entries are not SHA-256 fingerprints")
    return LxdNode(name=name, endpoint=endpoint, host=host, port=port, trusted_certs_fp=valid)


def _parse_server_certificate(bag: Mapping[str, str], problems: List[str]) -> Tuple[Optional[str], Optional[str]]:
    pem, fp = bag.get(KEY_SERVER_CERT), bag.get(KEY_SERVER_CERT_FP)
    if pem is None and fp is None:
        return None, None
    if not pem or not fp:
        problems.append("server_certificate and server_certificate_fingerprint are not both set")
        return None, None
    try:
        ders = _certificate_ders(pem)
        # OpenSSL's own parse: what `pinned_context` will load must load.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ValueError, ssl.SSLError):
        ders = []
    if not ders:
        problems.append("server_certificate is not a PEM certificate")
        return None, None
    if hashlib.sha256(ders[0]).hexdigest() != _normal_fp(fp):
        problems.append("server_certificate_fingerprint does not match server_certificate")
        return None, None
    return pem, _normal_fp(fp)


def parse_provider_data(bag: Mapping[str, str]) -> Optional[LxdInfo]:
    """The provider's databag decoded; None if it publishes nothing (no `version`)."""
    version = bag.get(KEY_VERSION)
    if version is None:
        return None
    problems: List[str] = []
    raw_nodes: Any = []
    try:
        raw_nodes = json.loads(bag.get(KEY_NODES, "[]"))
    except ValueError:
        problems.append("nodes is not JSON")
    if not isinstance(raw_nodes, list):
        problems.append("nodes is not a list")
        raw_nodes = []
    parsed = (_parse_node(raw, i, problems) for i, raw in enumerate(raw_nodes))
    nodes = tuple(node for node in parsed if node is not None)
    cert, fp = _parse_server_certificate(bag, problems)
    return LxdInfo(
        version=version,
        nodes=nodes,
        server_certificate=cert,
        server_certificate_fingerprint=fp,
        publishes_server_certificate=KEY_SERVER_CERT in bag or KEY_SERVER_CERT_FP in bag,
        problems=tuple(problems),
    )


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
        self._stored.set_default(certificates=None, app=False, seen={})
        events = charm.on[relation_name]
        observe = charm.framework.observe
        observe(events.relation_created, self._on_joined)
        observe(events.relation_joined, self._on_joined)
        observe(events.relation_changed, self._on_changed)
        observe(events.relation_departed, self._on_changed)
        observe(events.relation_broken, self._on_broken)
        observe(charm.on.leader_elected, self._on_leader_elected)

    # --- what we send --------------------------------------------------------------------

    def set_client_certificates(self, pems: Sequence[str], app: bool = False) -> None:
        """Publish `pems` as `client_certificates` on every relation, now and on later ones.

        With `app=True` they go to the application databag (written by the leader; the unit
        databag's copy is removed), else to this unit's. Raises ValueError for an entry that is
        not one PEM certificate; nothing is published then.
        """
        pems = [pem.strip() + "\n" for pem in pems]
        for pem in pems:
            fingerprint(pem)  # ValueError when not a PEM certificate
        self._stored.certificates = pems
        self._stored.app = app
        for relation in self.model.relations[self._relation_name]:
            self._publish(relation)

    def clear_client_certificates(self) -> None:
        """Stop asking: `client_certificates` is removed from our databags (the application's
        on the leader), and the library leaves the key alone from then on."""
        self._stored.certificates = None
        for relation in self.model.relations[self._relation_name]:
            bags = [relation.data[self.model.unit]]
            if self.model.unit.is_leader():
                bags.append(relation.data[self.model.app])
            for bag in bags:
                bag.pop(KEY_CLIENT_CERTS, None)

    @property
    def client_fingerprints(self) -> FrozenSet[str]:
        """Fingerprints of the certificates we ask the provider to trust."""
        return frozenset(fingerprint(pem) for pem in self._stored.certificates or [])

    def _publish(self, relation: ops.Relation) -> None:
        """Writes our certificates to the chosen databag and removes them from the other. Until
        `set_client_certificates` is called, the key is the charm's own business: untouched."""
        pems = self._stored.certificates
        if pems is None:
            return
        value = json.dumps(list(pems))
        bags = [(relation.data[self.model.unit], not self._stored.app)]
        if self.model.unit.is_leader():
            bags.append((relation.data[self.model.app], bool(self._stored.app)))
        for bag, chosen in bags:
            if not chosen:
                bag.pop(KEY_CLIENT_CERTS, None)
            elif bag.get(KEY_CLIENT_CERTS) != value:
                bag[KEY_CLIENT_CERTS] = value

    # --- what we read --------------------------------------------------------------------

    def _relation(self, relation: Optional[ops.Relation]) -> Optional[ops.Relation]:
        return relation if relation is not None else self.model.get_relation(self._relation_name)

    def info(self, relation: Optional[ops.Relation] = None) -> Optional[LxdInfo]:
        """What the provider publishes (its application databag first, then its units');
        None without a relation or before the provider wrote anything."""
        relation = self._relation(relation)
        if relation is None:
            return None
        bags: List[Mapping[str, str]] = []
        if relation.app is not None:
            bags.append(relation.data[relation.app])
        bags.extend(relation.data[unit] for unit in sorted(relation.units, key=lambda u: u.name))
        for bag in bags:
            info = parse_provider_data(bag)
            if info is not None:
                return info
        return None

    def is_trusted(self, fingerprint: str, relation: Optional[ops.Relation] = None) -> bool:
        """`fingerprint` is trusted on every published node."""
        info = self.info(relation)
        return info is not None and info.is_trusted(fingerprint)

    def is_ready(self, relation: Optional[ops.Relation] = None) -> bool:
        """Our certificates are trusted on every node and the server certificate is known (or
        the provider publishes none: see `LxdInfo.pinned`)."""
        return self._ready(self.info(relation))

    def _ready(self, info: Optional[LxdInfo]) -> bool:
        fps = self.client_fingerprints
        if info is None or not fps or not all(info.is_trusted(fp) for fp in fps):
            return False
        return info.pinned or not info.publishes_server_certificate

    def ssl_context(
        self,
        cert_pem: str,
        key_pem: str,
        relation: Optional[ops.Relation] = None,
        server_certificate: Optional[str] = None,
    ) -> ssl.SSLContext:
        """`pinned_context` with the published server certificate (or `server_certificate`,
        obtained some other way, when given). Raises ServerCertificateUnknown without either."""
        if server_certificate is None:
            info = self.info(relation)
            server_certificate = info.server_certificate if info is not None else None
        if server_certificate is None:
            raise ServerCertificateUnknown("the provider publishes no usable server_certificate")
        return pinned_context(server_certificate, cert_pem, key_pem)

    # --- events --------------------------------------------------------------------------

    def _on_joined(self, event: ops.RelationEvent) -> None:
        self._publish(event.relation)
        self._evaluate(event.relation)

    def _on_changed(self, event: ops.RelationEvent) -> None:
        self._evaluate(event.relation)

    def _on_leader_elected(self, _: ops.LeaderElectedEvent) -> None:
        if self._stored.app:
            for relation in self.model.relations[self._relation_name]:
                self._publish(relation)

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        seen: Dict[str, str] = dict(self._stored.seen)
        seen.pop(str(event.relation.id), None)
        self._stored.seen = seen
        self.on.lxd_gone.emit(event.relation, app=event.app)

    def _evaluate(self, relation: ops.Relation) -> None:
        """Fires lxd_ready or lxd_changed when the picture differs from the last one reported."""
        info = self.info(relation)
        ready = self._ready(info)
        picture = {
            "ready": ready,
            "ours": sorted(self.client_fingerprints),
            "nodes": [] if info is None else [[n.name, n.endpoint, sorted(n.trusted_certs_fp)] for n in info.nodes],
            "server": None if info is None else info.server_certificate_fingerprint,
            "problems": [] if info is None else list(info.problems),
        }
        digest = hashlib.sha256(json.dumps(picture, sort_keys=True).encode()).hexdigest()
        seen: Dict[str, str] = dict(self._stored.seen)
        before = seen.get(str(relation.id))
        if before == digest:
            return
        seen[str(relation.id)] = digest
        self._stored.seen = seen
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
