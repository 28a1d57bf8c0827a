#!/usr/bin/env python3
"""lxd-https-requirer: consumes `lxd-https` the way charm-lxd's requirers do.

Shaped like charm-lxd's `examples/https-client`: its own key and self-signed certificate made
with openssl on install; `version` and `certificate` (and `projects` when configured) in its
unit databag. In mode `both` the leader also writes them to the application databag, as
canonical/charmed-openshell's gateway does. What the provider publishes is read application
databag first, then the units' (both of those requirers do so), and `probe` connects to every
published address with this unit's key, trusting only the published `certificate`.

`list-instances` is the OpenShell gateway's driver: it uses the provider's `project` (`default`
when absent), pins `certificate_fingerprint` against the certificate each server presents (the
SHA-256 of its DER, compared before any request is sent) and lists the instances in that
project on every published address.
"""

import hashlib
import http.client
import json
import logging
import os
import ssl
import subprocess
import urllib.parse
from pathlib import Path
from typing import Dict, Optional

import ops

logger = logging.getLogger(__name__)

ENDPOINT = "https"
VERSION = "1.0"
CERT, KEY = Path("client.crt"), Path("client.key")
READ_KEYS = ("version", "certificate", "certificate_fingerprint", "addresses", "project")
PROBE_TIMEOUT = 5.0


class HttpsRequirerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        on = self.on
        framework.observe(on.install, self._on_install)
        for event in (on.start, on.config_changed, on.leader_elected, on.upgrade_charm, on.update_status,
                      on[ENDPOINT].relation_created, on[ENDPOINT].relation_joined, on[ENDPOINT].relation_changed,
                      on[ENDPOINT].relation_departed):
            framework.observe(event, self._on_any)
        framework.observe(on[ENDPOINT].relation_broken, self._on_broken)
        framework.observe(on.get_identity_action, self._on_get_identity)
        framework.observe(on.use_identity_action, self._on_use_identity)
        framework.observe(on.rotate_action, self._on_rotate)
        framework.observe(on.get_received_action, self._on_get_received)
        framework.observe(on.probe_action, self._on_probe)
        framework.observe(on.list_instances_action, self._on_list_instances)

    # --- identity, as https-client makes it ---------------------------------------------------

    def _generate(self) -> None:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-sha384",
             "-keyout", str(KEY), "-out", str(CERT), "-nodes", "-subj", f"/CN={self.unit.name.replace('/', '-')}",
             "-days", "3650"],
            capture_output=True, check=True)
        os.chmod(KEY, 0o600)

    def _on_install(self, event: ops.InstallEvent) -> None:
        if not CERT.exists():
            self._generate()
        self._on_any(event)

    # --- what we send -------------------------------------------------------------------------

    def _databag(self) -> Dict[str, str]:
        bag = {"version": VERSION, "certificate": CERT.read_text()}
        projects = str(self.config.get("projects", ""))
        if projects:
            bag["projects"] = projects
        return bag

    def _write(self, relation: ops.Relation) -> None:
        bag = self._databag()
        unit_bag = relation.data[self.unit]
        unit_bag.update(bag)
        if "projects" not in bag:
            unit_bag.pop("projects", None)
        if not self.unit.is_leader():
            return
        app_bag = relation.data[self.app]
        if self.config.get("mode") == "both":
            app_bag.update(bag)
            if "projects" not in bag:
                app_bag.pop("projects", None)
        else:
            for key in ("version", "certificate", "projects"):
                app_bag.pop(key, None)

    # --- what we receive ----------------------------------------------------------------------

    def _received(self, relation: ops.Relation) -> Dict[str, str]:
        """The provider's keys, from its application databag if it has a version, else from the
        first of its units' that does."""
        bags = []
        if relation.app is not None:
            bags.append((relation.app.name, relation.data[relation.app]))
        bags += [(u.name, relation.data[u]) for u in sorted(relation.units, key=lambda u: u.name)]
        for name, bag in bags:
            if bag.get("version"):
                out = {k: bag[k] for k in READ_KEYS if k in bag}
                out["from"] = name
                return out
        return {}

    def _on_any(self, event: ops.EventBase) -> None:
        if not CERT.exists():
            self.unit.status = ops.BlockedStatus("no certificate")
            return
        relation = self.model.get_relation(ENDPOINT)
        if relation is None:
            self.unit.status = ops.WaitingStatus("no https relation")
            return
        self._write(relation)
        got = self._received(relation)
        if got.get("version") != VERSION or not got.get("addresses"):
            self.unit.status = ops.WaitingStatus("nothing received from the provider")
            return
        self.unit.status = ops.ActiveStatus(f"addresses={len(got['addresses'].split(','))} from={got['from']}")

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        self.unit.status = ops.WaitingStatus("no https relation")

    # --- actions ------------------------------------------------------------------------------

    def _on_get_identity(self, event: ops.ActionEvent) -> None:
        pem = CERT.read_text()
        event.set_results({"certificate": pem, "fingerprint": _fingerprint(pem)})

    def _on_use_identity(self, event: ops.ActionEvent) -> None:
        CERT.write_text(str(event.params["cert"]))
        KEY.write_text(str(event.params["key"]))
        os.chmod(KEY, 0o600)
        self._on_any(event)
        event.set_results({"fingerprint": _fingerprint(CERT.read_text())})

    def _on_rotate(self, event: ops.ActionEvent) -> None:
        self._generate()
        self._on_any(event)
        event.set_results({"fingerprint": _fingerprint(CERT.read_text())})

    def _on_get_received(self, event: ops.ActionEvent) -> None:
        relation = self.model.get_relation(ENDPOINT)
        event.set_results({"received": json.dumps(self._received(relation) if relation else {}, sort_keys=True)})

    def _on_probe(self, event: ops.ActionEvent) -> None:
        relation = self.model.get_relation(ENDPOINT)
        got = self._received(relation) if relation else {}
        if not got.get("certificate") or not got.get("addresses"):
            event.fail("nothing published")
            return
        matches = _fingerprint(got["certificate"]) == got.get("certificate_fingerprint")
        results = {a: _probe(a, got["certificate"]) for a in got["addresses"].split(",")}
        event.set_results({"results": json.dumps(results, sort_keys=True), "fingerprint-matches": str(matches).lower()})

    def _on_list_instances(self, event: ops.ActionEvent) -> None:
        relation = self.model.get_relation(ENDPOINT)
        got = self._received(relation) if relation else {}
        if not got.get("certificate_fingerprint") or not got.get("addresses"):
            event.fail("nothing published")
            return
        project = str(event.params.get("project") or "") or got.get("project") or "default"
        pin = got["certificate_fingerprint"]
        results = {a: _list_instances(a, pin, project) for a in got["addresses"].split(",")}
        event.set_results({"project": project, "results": json.dumps(results, sort_keys=True)})


def _fingerprint(pem: str) -> str:
    """LXD's fingerprint of the first certificate of `pem`: SHA-256 of its DER, lowercase hex."""
    end = "-----END CERTIFICATE-----"
    first = pem[: pem.index(end) + len(end)]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first.strip())).hexdigest()


def _context(server_certificate: str) -> ssl.SSLContext:
    """This unit's key; the published certificate as the only trust anchor; no host name check
    (LXD's certificates never name the address dialled); partial chains, so a pinned certificate
    that is not self-signed anchors itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    context.load_verify_locations(cadata=server_certificate)
    context.load_cert_chain(str(CERT), str(KEY))
    return context


def _probe(address: str, server_certificate: str) -> str:
    """`GET /1.0` at `host:port`: LXD's `auth` for our key, or why it failed."""
    host, _, port = address.rpartition(":")
    conn: Optional[http.client.HTTPSConnection] = None
    try:
        conn = http.client.HTTPSConnection(host.strip("[]"), int(port), context=_context(server_certificate), timeout=PROBE_TIMEOUT)
        conn.request("GET", "/1.0")
        answer = json.loads(conn.getresponse().read(1 << 20))
        return str(answer.get("metadata", {}).get("auth", "no auth field"))
    except (OSError, ValueError, http.client.HTTPException) as e:
        return f"failed: {type(e).__name__}: {e}"[:300]
    finally:
        if conn is not None:
            conn.close()


def _list_instances(address: str, pin: str, project: str) -> Dict[str, object]:
    """`GET /1.0/instances?project=<project>` at `host:port`, as the gateway's driver sends it:
    the chain is not verified; the certificate the server presents must have `pin` as its
    SHA-256 fingerprint, checked after the handshake and before the request is written.
    Returns {"presented": fp, "status": HTTP status, "instances": [...]} or {"error": why}."""
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(str(CERT), str(KEY))
    conn: Optional[http.client.HTTPSConnection] = None
    try:
        conn = http.client.HTTPSConnection(host.strip("[]"), int(port), context=context, timeout=PROBE_TIMEOUT)
        conn.connect()
        der = conn.sock.getpeercert(binary_form=True) if conn.sock else None
        presented = hashlib.sha256(der).hexdigest() if der else ""
        if presented != pin:
            return {"error": "pin mismatch", "presented": presented}
        conn.request("GET", "/1.0/instances?" + urllib.parse.urlencode({"project": project}))
        response = conn.getresponse()
        answer = json.loads(response.read(1 << 20))
        out: Dict[str, object] = {"presented": presented, "status": response.status}
        if isinstance(answer.get("metadata"), list):
            out["instances"] = answer["metadata"]
        else:
            out["error"] = str(answer.get("error", ""))[:300]
        return out
    except (OSError, ValueError, http.client.HTTPException) as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    finally:
        if conn is not None:
            conn.close()


if __name__ == "__main__":
    ops.main(HttpsRequirerCharm)
