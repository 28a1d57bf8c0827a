#!/usr/bin/env python3
"""A probe charm: every handler does something observable through a hook tool."""

import json
import logging

import ops

logger = logging.getLogger(__name__)


class ProbeCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(hooks=0, departed=[], value="")
        for ev in (
            self.on.install,
            self.on.config_changed,
            self.on.start,
            self.on.leader_elected,
            self.on.leader_settings_changed,
            self.on.update_status,
        ):
            framework.observe(ev, self._on_any)
        framework.observe(self.on.lxd_relation_joined, self._on_joined)
        framework.observe(self.on.lxd_relation_changed, self._on_changed)
        framework.observe(self.on.lxd_relation_departed, self._on_departed)
        framework.observe(self.on.lxd_relation_broken, self._on_broken)
        framework.observe(self.on.peer_relation_changed, self._on_peer_changed)
        framework.observe(self.on.set_value_action, self._on_set_value)
        framework.observe(self.on.fail_me_action, self._on_fail_me)

    def _on_any(self, event):
        self._stored.hooks += 1
        cfg = self.model.config
        msg = f"{cfg['greeting']} x{cfg['count']} ratio={cfg.get('ratio')} hooks={self._stored.hooks}"
        if cfg["loud"]:
            msg = msg.upper()
        self.unit.status = ops.ActiveStatus(msg)
        self.unit.set_workload_version("1.2.3")
        peer = self.model.get_relation("peer")
        if self.unit.is_leader():
            self.app.status = ops.ActiveStatus("leader here")
            if peer is not None:
                peer.data[self.app]["leader"] = self.unit.name
        elif peer is not None:
            # Non-leaders may read (not write) the peer app databag.
            peer.data[self.unit]["leader-seen"] = peer.data[self.app].get("leader", "")
        logger.info("handled %s", type(event).__name__)

    def _on_joined(self, event):
        assert event.unit is not None and event.unit in event.relation.units
        event.relation.data[self.unit]["hello"] = self.unit.name
        event.relation.data[self.unit]["multi"] = "line1\nline2: with colon\n"
        if self.unit.is_leader():
            event.relation.data[self.app]["app-key"] = json.dumps({"units": len(event.relation.units)})

    def _on_changed(self, event):
        mine = event.relation.data[self.unit]
        if event.unit is not None:
            mine["echo-token"] = event.relation.data[event.unit].get("token", "")
            mine["remote-address"] = event.relation.data[event.unit].get("private-address", "")
        mine["echo-app-token"] = event.relation.data[event.app].get("app-token", "")
        mine["members"] = ",".join(sorted(u.name for u in event.relation.units))
        if mine.get("to-delete"):
            del mine["to-delete"]
        else:
            mine["to-delete"] = "x"

    def _on_departed(self, event):
        self._stored.departed = list(self._stored.departed) + [event.departing_unit.name]
        assert event.departing_unit not in event.relation.units

    def _on_broken(self, event):
        self.unit.status = ops.BlockedStatus(f"no lxd; departed={','.join(self._stored.departed)}")

    def _on_peer_changed(self, event):
        self._stored.hooks += 1

    def _on_set_value(self, event):
        value = event.params["value"]
        self._stored.value = value
        event.log("logging from the action")
        event.set_results({"got": value, "extra": event.params["extra"], "nested": {"a": "b"}})
        peer = self.model.get_relation("peer")
        if peer is not None:
            peer.data[self.unit]["value"] = value

    def _on_fail_me(self, event):
        event.fail("nope")


if __name__ == "__main__":
    ops.main(ProbeCharm, use_juju_for_storage=True)
