"""Issue #24 point 4, "Ready" is never missed: readiness is evaluated when the charm sets its
certificates and in every hook the library observes (or `refresh()`), and `lxd_ready` fires
once per change of the ready picture, never twice for the same one."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

import ops
import pytest
from charms.lxd_integrator.v0.lxd import LxdChangedEvent, LxdReadyEvent
from helpers import CLIENT, N1, N2, OTHER, ROTATED, Charm, asking, changed, provider, relation, run, with_certs
from ops import testing
from ops.testing import Harness


def test_found_4_app_databag_mode_on_a_follower_is_ready_as_soon_as_it_sets_the_certificate() -> None:
    # The leader published the certificate in the application databag; the provider trusts it.
    rel = relation(units={0: provider()})
    state = testing.State(leader=False, relations=[rel])
    r = run(lambda ctx: ctx.on.update_status(), state, with_certs([CLIENT.cert_pem], app=True))
    assert r.events == [LxdReadyEvent] and r.charm.lxd.is_ready()


def test_found_4_a_charm_adopting_the_library_is_ready_in_the_hook_it_sets_the_certificate() -> None:
    # The charm sent the certificate itself before; the provider trusts it already.
    rel = testing.Relation(
        "lxd", id=7, remote_units_data={0: provider()}, local_unit_data={"client_certificates": json.dumps([CLIENT.cert_pem])}
    )
    r = run(lambda ctx: ctx.on.config_changed(), testing.State(relations=[rel]), with_certs([CLIENT.cert_pem]))
    assert r.events == [LxdReadyEvent]


class FromAnotherRelation(Charm):
    """Gets its certificate from another relation (say, a certificates provider)."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on["certificates"].relation_changed, self._on_certificate)

    def _on_certificate(self, event: ops.RelationChangedEvent) -> None:
        assert event.app is not None
        pem = event.relation.data[event.app].get("certificate")
        if pem:
            self.lxd.set_client_certificates([pem])


def test_found_4_a_certificate_arriving_on_another_relation_is_ready_in_that_hook() -> None:
    meta = {"name": "requirer", "requires": {"lxd": {"interface": "lxd"}, "certificates": {"interface": "tls-certificates"}}}
    lxd_rel = relation(units={0: provider()})
    certs = testing.Relation("certificates", id=9, remote_app_data={"certificate": CLIENT.cert_pem})
    state = testing.State(relations=[lxd_rel, certs])
    r = run(lambda ctx: ctx.on.relation_changed(certs, remote_unit=0), state, charm_type=FromAnotherRelation, meta=meta)
    assert r.events == [LxdReadyEvent]


HOOKS: Dict[str, Callable[[Any], Any]] = {
    "start": lambda ctx: ctx.on.start(),
    "config-changed": lambda ctx: ctx.on.config_changed(),
    "update-status": lambda ctx: ctx.on.update_status(),
    "leader-elected": lambda ctx: ctx.on.leader_elected(),
    "upgrade-charm": lambda ctx: ctx.on.upgrade_charm(),
}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_observed_hook_reports_a_ready_picture_not_reported_yet(hook: str) -> None:
    # E.g. the readiness evaluated by LIBPATCH 1 differently, or stored state lost: the next
    # hook reports it. Then the same hook again reports nothing.
    rel = relation(units={0: provider()})
    stored = testing.StoredState(
        "_stored", owner_path="Charm/LxdRequirer[lxd]", content={"certificates": [CLIENT.cert_pem], "app": False, "seen": {}}
    )
    state = testing.State(leader=True, relations=[rel], stored_states=[stored])
    r = run(HOOKS[hook], state)
    assert r.events == [LxdReadyEvent]
    assert run(HOOKS[hook], r.out).events == []


def test_refresh_reports_from_any_hook_or_action() -> None:
    rel = relation(units={0: provider()})
    stored = testing.StoredState(
        "_stored", owner_path="Charm/LxdRequirer[lxd]", content={"certificates": [CLIENT.cert_pem], "app": False, "seen": {}}
    )
    state = testing.State(relations=[rel], stored_states=[stored])
    r = run(lambda ctx: ctx.on.install(), state, lambda charm: charm.lxd.refresh())
    assert r.events == [LxdReadyEvent]
    assert run(lambda ctx: ctx.on.install(), r.out, lambda charm: charm.lxd.refresh()).events == []


def test_lxd_ready_fires_once_per_change_of_the_ready_picture() -> None:
    rel = relation()
    state = asking(testing.State(relations=[rel]))
    steps = [
        # (what the provider publishes, expected events)
        (provider(), [LxdReadyEvent]),
        (provider(), []),  # the same again
        # Another requirer's certificate appears on the nodes: not our business.
        (provider(fps=[[CLIENT.fingerprint, OTHER.fingerprint]] * 2), []),
        # A problem in an informational key while ready: nothing to reconnect for.
        ({**provider(), "registered_certificates": "{"}, []),
        # The version's minor moves: same major.
        ({**provider(), "version": "1.1"}, []),
        # The server certificate rotates: reconnect.
        (provider(server=ROTATED), [LxdReadyEvent]),
        # A node is added: reconnect.
        (provider(fps=[[CLIENT.fingerprint]] * 3, server=ROTATED, endpoints=(N1, N2, "https://10.0.0.3:8443")), [LxdReadyEvent]),
        # Trust withdrawn on one node: not ready.
        (provider(fps=[[CLIENT.fingerprint], [CLIENT.fingerprint], []], server=ROTATED, endpoints=(N1, N2, "https://10.0.0.3:8443")), [LxdChangedEvent]),
        # And back: ready again.
        (provider(fps=[[CLIENT.fingerprint]] * 3, server=ROTATED, endpoints=(N1, N2, "https://10.0.0.3:8443")), [LxdReadyEvent]),
    ]
    for n, (bag, expected) in enumerate(steps):
        r = changed(state, rel, units={0: bag})
        assert r.events == expected, f"step {n}: {r.events}"
        state = r.out


def test_changing_our_certificates_reevaluates_at_once() -> None:
    rel = relation(units={0: provider(fps=[[CLIENT.fingerprint]] * 2)})
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), with_certs([CLIENT.cert_pem]))
    assert r.events == [LxdReadyEvent]
    # Rotation with overlap: the new one is not trusted yet, so not ready until it is.
    r = run(lambda ctx: ctx.on.update_status(), r.out, with_certs([CLIENT.cert_pem, OTHER.cert_pem]))
    assert r.events == [LxdChangedEvent]
    assert r.charm.lxd.not_ready_reason() == f"certificate {OTHER.fingerprint[:12]} trusted on 0 of 2 nodes"
    both = [[CLIENT.fingerprint, OTHER.fingerprint]] * 2
    r = changed(r.out, rel, units={0: provider(fps=both)})
    assert r.events == [LxdReadyEvent]
    # Drop the old one: the ready picture changed (our certificates), so ready again.
    r = run(lambda ctx: ctx.on.update_status(), r.out, with_certs([OTHER.cert_pem]))
    assert r.events == [LxdReadyEvent]
    # Clearing: no longer ready.
    r = run(lambda ctx: ctx.on.update_status(), r.out, lambda charm: charm.lxd.clear_client_certificates())
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()
    assert r.charm.lxd.not_ready_reason() == "no client certificate set"


class Recording(Charm):
    """Records the remote unit of every lxd relation-changed and the library's events."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.units: List[Optional[ops.Unit]] = []
        self.seen: List[str] = []
        framework.observe(self.on["lxd"].relation_changed, self._on_changed)
        framework.observe(self.lxd.on.lxd_ready, self._on_ready)
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_changed(self, event: ops.RelationChangedEvent) -> None:
        self.units.append(event.unit)

    def _on_ready(self, _: ops.EventBase) -> None:
        self.seen.append("lxd_ready")

    def _on_update_status(self, _: ops.EventBase) -> None:
        self.seen.append("update_status")


@pytest.mark.filterwarnings("ignore:Harness is deprecated")
@pytest.mark.parametrize("provider_units", [0, 2])
def test_a_relation_changed_without_a_remote_unit_is_handled(provider_units: int) -> None:
    # An application databag change reaches the requirer with no remote unit (JUJU_REMOTE_UNIT
    # empty, event.unit None). ops' Harness emits exactly that (ops.testing's Context insists on
    # a remote unit for relation-changed).
    harness = Harness(Recording, meta=json.dumps({"name": "requirer", "requires": {"lxd": {"interface": "lxd"}}}))
    try:
        harness.begin()
        rid = harness.add_relation("lxd", "lxd-integrator")
        for n in range(provider_units):
            harness.add_relation_unit(rid, f"lxd-integrator/{n}")
        harness.charm.lxd.set_client_certificates([CLIENT.cert_pem])
        harness.update_relation_data(rid, "lxd-integrator", provider())
        assert harness.charm.units == [None], "a change without a remote unit happened"
        assert harness.charm.lxd.is_ready(), "read from the application databag (no unit databag has a version)"
        assert harness.charm.seen == ["lxd_ready"]
    finally:
        harness.cleanup()


def test_lxd_ready_is_emitted_before_the_charms_own_handler_of_the_same_hook_runs() -> None:
    rel = relation(units={0: provider()})
    stored = testing.StoredState(
        "_stored", owner_path="Recording/LxdRequirer[lxd]", content={"certificates": [CLIENT.cert_pem], "app": False, "seen": {}}
    )
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel], stored_states=[stored]), charm_type=Recording)
    assert isinstance(r.charm, Recording) and r.charm.seen == ["lxd_ready", "update_status"]
