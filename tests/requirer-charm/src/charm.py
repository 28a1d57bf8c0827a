#!/usr/bin/env python3
"""lxd-requirer: consumes the `lxd` interface the way Anbox Cloud's AMS charm does.

Sends `client_certificates` (whatever the `set-certificates` action stored, verbatim) in its unit
databag, or its app databag, and records what the provider publishes.

Or, after `use-identity`, it is a charm built on the requirers' library
(`charms.lxd_integrator.v0.lxd`): the library sends its certificate, and on `lxd_ready` the charm
connects to every published node with its own key, pinning the published server certificate,
and shows how many said `auth: trusted`.
"""

import http.client
import json
import logging
import ssl
from typing import Dict, Optional

import ops
from charms.lxd_integrator.v0.lxd import LxdInfo, LxdRequirer, ServerCertificateUnknown

logger = logging.getLogger(__name__)

ENDPOINT = "lxd"
SEND_KEY = "client_certificates"
READ_KEYS = ("version", "nodes", "registered_certificates", "server_certificate_fingerprint")
PROBE_TIMEOUT = 5.0


class LxdRequirerCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # value: None = never set / cleared (send nothing); app: write the app databag.
        # identity: {"cert", "key"} once use-identity ran (the library sends the certificate);
        # reached: what the last lxd_ready probe found, {"node": "trusted" | reason}.
        # ready_events: how many times the library fired lxd_ready on this unit.
        self._stored.set_default(value=None, app=False, received="{}", identity=None, reached="{}", ready_events=0)
        self.lxd = LxdRequirer(self, ENDPOINT)
        framework.observe(self.lxd.on.lxd_ready, self._on_lxd_ready)
        framework.observe(self.lxd.on.lxd_changed, self._on_lxd_changed)
        framework.observe(self.lxd.on.lxd_gone, self._on_lxd_changed)
        on = self.on
        observe = framework.observe
        observe(on[ENDPOINT].relation_created, self._on_relation_created)
        observe(on[ENDPOINT].relation_joined, self._on_relation_created)
        observe(on[ENDPOINT].relation_changed, self._on_relation_changed)
        observe(on[ENDPOINT].relation_departed, self._on_relation_changed)
        observe(on[ENDPOINT].relation_broken, self._on_relation_broken)
        for event in (on.install, on.start, on.config_changed):
            observe(event, self._on_other)
        observe(on.update_status, self._on_update_status)
        observe(on.set_certificates_action, self._on_set_certificates)
        observe(on.clear_certificates_action, self._on_clear_certificates)
        observe(on.get_received_action, self._on_get_received)
        observe(on.use_identity_action, self._on_use_identity)
        observe(on.probe_action, self._on_probe)
        observe(on.lib_state_action, self._on_lib_state)

    # --- what we send -----------------------------------------------------------------------

    def _write(self, relation: ops.Relation) -> None:
        """Put the stored value in the chosen databag and remove it from the other one."""
        if self._stored.identity is not None:
            return  # the library sends the identity's certificate
        value = self._stored.value
        unit_bag = relation.data[self.unit]
        app_bag = relation.data[self.app] if self.unit.is_leader() else None
        if value is None:
            unit_bag.pop(SEND_KEY, None)
            if app_bag is not None:
                app_bag.pop(SEND_KEY, None)
            return
        if self._stored.app:
            unit_bag.pop(SEND_KEY, None)
            if app_bag is None:
                logger.warning("app databag chosen but this unit is not the leader; not writing")
            else:
                app_bag[SEND_KEY] = value
        else:
            unit_bag[SEND_KEY] = value
            if app_bag is not None:
                app_bag.pop(SEND_KEY, None)

    def _write_all(self) -> None:
        for relation in self.model.relations[ENDPOINT]:
            self._write(relation)

    # --- what we receive --------------------------------------------------------------------

    def _collect(self, skip_id=None) -> dict:
        received = {}
        for relation in self.model.relations[ENDPOINT]:
            if relation.id == skip_id:
                continue
            entry = {"app": {}, "units": {}}
            if relation.app is not None:
                entry["app"] = _pick(relation.data[relation.app])
            for unit in sorted(relation.units, key=lambda u: u.name):
                entry["units"][unit.name] = _pick(relation.data[unit])
            received[str(relation.id)] = entry
        return received

    def _refresh(self, skip_id=None) -> None:
        received = self._collect(skip_id)
        self._stored.received = json.dumps(received, sort_keys=True)
        self._set_status(received)

    def _set_status(self, received: dict) -> None:
        if not received:
            self.unit.status = ops.WaitingStatus("no lxd relation")
            return
        nodes = registered = None
        for entry in received.values():
            for bag in [entry["app"], *entry["units"].values()]:
                nodes = _max_len(nodes, bag.get("nodes"))
                registered = _max_len(registered, bag.get("registered_certificates"))
        if nodes is None and registered is None:
            self.unit.status = ops.WaitingStatus("nothing received from the provider")
            return
        message = f"nodes={_show(nodes)} registered={_show(registered)}"
        if self._stored.identity is not None:
            reached = json.loads(self._stored.reached)
            trusted = sum(1 for v in reached.values() if v == "trusted")
            message += f" reached={trusted}/{len(reached)}" if reached else " reached=none"
        self.unit.status = ops.ActiveStatus(message)

    # --- handlers ---------------------------------------------------------------------------

    def _on_relation_created(self, event: ops.RelationEvent) -> None:
        self._write(event.relation)
        self._refresh()

    def _on_relation_changed(self, event: ops.RelationEvent) -> None:
        self._refresh()

    def _on_relation_broken(self, event: ops.RelationEvent) -> None:
        self._refresh(skip_id=event.relation.id)

    def _on_other(self, event: ops.EventBase) -> None:
        self._set_status(json.loads(self._stored.received))

    def _on_update_status(self, event: ops.EventBase) -> None:
        # The library evaluates readiness on update-status itself; refresh() is what a charm
        # calls from hooks the library does not observe, and must be harmless here.
        self.lxd.refresh()
        self._on_other(event)

    def _on_set_certificates(self, event: ops.ActionEvent) -> None:
        app = bool(event.params.get("app", False))
        if app and not self.unit.is_leader():
            event.fail("app=true needs the leader unit")
            return
        self._forget_identity()
        self._stored.value = str(event.params["value"])
        self._stored.app = app
        self._write_all()
        event.set_results({"relations": str(len(self.model.relations[ENDPOINT]))})

    def _on_clear_certificates(self, event: ops.ActionEvent) -> None:
        self._forget_identity()
        self._stored.value = None
        self._stored.app = False
        self._write_all()

    def _on_get_received(self, event: ops.ActionEvent) -> None:
        event.set_results({
            "received": self._stored.received,
            "sent": json.dumps({"value": self._stored.value, "app": self._stored.app}),
        })


    # --- the library's way: own key, pinned server ------------------------------------------

    def _forget_identity(self) -> None:
        if self._stored.identity is not None:
            self._stored.identity = None
            self._stored.reached = "{}"
            self.lxd.clear_client_certificates()

    def _on_use_identity(self, event: ops.ActionEvent) -> None:
        cert, key = str(event.params["cert"]), str(event.params["key"])
        app = bool(event.params.get("app", False))
        before = self._stored.identity
        # Set first: the library may fire lxd_ready from inside set_client_certificates (the
        # provider already trusts the certificate), and that handler probes with it.
        self._stored.identity = {"cert": cert, "key": key}
        try:
            self.lxd.set_client_certificates([cert], app=app)
        except ValueError as e:
            self._stored.identity = before
            event.fail(f"cert is not one PEM certificate: {e}")
            return
        self._stored.value = None
        self._stored.app = False
        self._refresh()
        event.set_results({"fingerprint": sorted(self.lxd.client_fingerprints)[0]})

    def _on_lxd_ready(self, event: ops.RelationEvent) -> None:
        self._stored.ready_events += 1
        info = self.lxd.info(event.relation)
        if info is not None and self._stored.identity is not None:
            self._stored.reached = json.dumps(self._probe(event.relation, info, via=None))
        self._refresh()

    def _on_lxd_changed(self, event: ops.RelationEvent) -> None:
        self._stored.reached = "{}"
        self._refresh()

    def _on_probe(self, event: ops.ActionEvent) -> None:
        """Connect to every node now (or to VIA instead of each node's own address)."""
        relation = self.model.get_relation(ENDPOINT)
        info = self.lxd.info(relation) if relation is not None else None
        if relation is None or info is None or self._stored.identity is None:
            event.fail("no identity or nothing published")
            return
        via = str(event.params.get("via", "")) or None
        results = self._probe(relation, info, via)
        event.set_results({"pinned": str(info.pinned).lower(), "results": json.dumps(results, sort_keys=True)})

    def _on_lib_state(self, event: ops.ActionEvent) -> None:
        """What the library says now. A pure read: no refresh, so that `ready-events` counts
        only what the hooks fired."""
        relations = self.model.relations[ENDPOINT]
        problems, versions = [], []
        for relation in relations:
            info = self.lxd.info(relation)
            if info is not None:
                problems.extend(info.problems)
                versions.append(info.version)
        event.set_results({
            "ready": str(self.lxd.is_ready()).lower(),
            "ready-events": str(self._stored.ready_events),
            "refused": json.dumps(self.lxd.refused(), sort_keys=True),
            "problems": json.dumps(problems),
            "version": ",".join(versions),
            "reason": (self.lxd.not_ready_reason(relations[0]) or "") if len(relations) == 1 else "",
        })

    def _probe(self, relation: ops.Relation, info: LxdInfo, via: Optional[str]) -> Dict[str, str]:
        """`GET /1.0` on every node through the library's pinned context: the node's `auth`
        (`trusted` when our key is), or why the connection failed."""
        identity = self._stored.identity
        try:
            context = self.lxd.ssl_context(identity["cert"], identity["key"], relation)
        except ServerCertificateUnknown:
            return {node.name: "no server certificate published" for node in info.nodes}
        except ssl.SSLError:
            return {node.name: "the key does not match the certificate" for node in info.nodes}
        results = {}
        for node in info.nodes:
            host, port = (via.rsplit(":", 1)[0], int(via.rsplit(":", 1)[1])) if via else (node.host, node.port)
            conn = http.client.HTTPSConnection(host, port, context=context, timeout=PROBE_TIMEOUT)
            try:
                conn.request("GET", "/1.0")
                answer = json.loads(conn.getresponse().read(1 << 20))
                results[node.name] = str(answer.get("metadata", {}).get("auth", "no auth field"))
            except (OSError, ValueError, http.client.HTTPException) as e:
                # ssl.SSLCertVerificationError is an OSError: a refused server lands here.
                results[node.name] = f"failed: {type(e).__name__}: {e}"[:300]
            finally:
                conn.close()
        return results


def _pick(bag) -> dict:
    return {k: bag[k] for k in READ_KEYS if k in bag}


def _show(n) -> str:
    return "?" if n is None else str(n)


def _max_len(current, raw):
    """Largest list length seen so far; `raw` is a JSON list string (or garbage, ignored)."""
    if raw is None:
        return current
    try:
        n = len(json.loads(raw))
    except (ValueError, TypeError):
        return current
    return n if current is None else max(current, n)


if __name__ == "__main__":
    ops.main(LxdRequirerCharm)
