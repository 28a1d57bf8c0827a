"""Issue #24, found 6: several relations on the endpoint. Without a relation argument,
`is_ready()`/`is_trusted()` answer for all of them, `refused()` merges them, and `info()`,
`ssl_context()`, `not_ready_reason()` raise `SeveralRelationsError` naming the choice (a
ValueError, and ops' TooManyRelatedAppsError as before) instead of ops' bare error."""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from charms.lxd_integrator.v0.lxd import LxdReadyEvent, SeveralRelationsError
from helpers import CLIENT, OTHER, SERVER, Charm, asking, provider, run
from ops import testing


def two(first: Any, second: Any) -> testing.State:
    a = testing.Relation("lxd", id=3, remote_app_name="lxd-a", remote_units_data={0: first})
    b = testing.Relation("lxd", id=5, remote_app_name="lxd-b", remote_units_data={0: second})
    return asking(testing.State(relations=[a, b]), [CLIENT.cert_pem, OTHER.cert_pem])


BOTH = [[CLIENT.fingerprint, OTHER.fingerprint]] * 2


def test_found_6_no_helper_raises_ops_bare_too_many_related_apps() -> None:
    state = two(provider(fps=BOTH), provider(fps=[[CLIENT.fingerprint]] * 2))

    def look(charm: Charm) -> Any:
        for helper in (
            lambda: charm.lxd.info(),
            lambda: charm.lxd.ssl_context(CLIENT.cert_pem, CLIENT.key_pem),
            lambda: charm.lxd.not_ready_reason(),
        ):
            with pytest.raises(SeveralRelationsError) as e:
                helper()
            assert isinstance(e.value, ValueError) and isinstance(e.value, ops.TooManyRelatedAppsError)
            assert str(e.value) == "2 relations on endpoint 'lxd' (ids 3, 5): pass the relation to use"
            assert e.value.relation_ids == (3, 5)
        a, b = sorted(charm.model.relations["lxd"], key=lambda r: r.id)
        return (
            charm.lxd.is_ready(),
            charm.lxd.is_ready(a),
            charm.lxd.is_ready(b),
            charm.lxd.is_trusted(CLIENT.fingerprint),
            charm.lxd.is_trusted(OTHER.fingerprint),
            charm.lxd.not_ready_reason(b),
        )

    r = run(lambda ctx: ctx.on.update_status(), state, look)
    assert r.result == (False, True, False, True, False, f"certificate {OTHER.fingerprint[:12]} trusted on 0 of 2 nodes")


def test_ready_on_every_relation_and_each_relation_fires_its_own_event() -> None:
    state = two({}, {})
    a, b = sorted(state.relations, key=lambda r: r.id)
    ready = {**provider(fps=BOTH)}
    state = testing.State(
        relations=[
            testing.Relation("lxd", id=3, remote_app_name="lxd-a", remote_units_data={0: ready}, local_unit_data=a.local_unit_data),
            testing.Relation("lxd", id=5, remote_app_name="lxd-b", remote_units_data={0: ready}, local_unit_data=b.local_unit_data),
        ],
        stored_states=state.stored_states,
    )
    r = run(lambda ctx: ctx.on.update_status(), state)
    assert r.events == [LxdReadyEvent, LxdReadyEvent]
    assert sorted(e.relation.id for e in r.ctx.emitted_events if isinstance(e, LxdReadyEvent)) == [3, 5]
    assert r.charm.lxd.is_ready()


def test_refused_merges_every_relation_lowest_id_first_and_only_ours() -> None:
    def refusing(reason: str) -> Any:
        entries = [{"fingerprint": CLIENT.fingerprint, "reason": reason}, {"fingerprint": SERVER.fingerprint, "reason": "reserved"}]
        return {**provider(fps=[[]]), "refused": json.dumps(entries)}

    state = two(refusing("expired"), {**refusing("unknown-project"), "refused": json.dumps([{"fingerprint": OTHER.fingerprint, "reason": "too-many"}])})

    def look(charm: Charm) -> Any:
        a, b = sorted(charm.model.relations["lxd"], key=lambda r: r.id)
        return charm.lxd.refused(), charm.lxd.refused(a), charm.lxd.refused(b)

    merged, first, second = run(lambda ctx: ctx.on.update_status(), state, look).result
    assert merged == {CLIENT.fingerprint: "expired", OTHER.fingerprint: "too-many"}
    assert first == {CLIENT.fingerprint: "expired"} and second == {OTHER.fingerprint: "too-many"}


def test_an_explicit_server_certificate_needs_no_relation() -> None:
    state = two(provider(), provider())
    r = run(lambda ctx: ctx.on.update_status(), state, lambda c: c.lxd.ssl_context(CLIENT.cert_pem, CLIENT.key_pem, server_certificate=SERVER.cert_pem))
    assert r.result is not None


def test_without_any_relation_the_helpers_say_nothing_is_there() -> None:
    def look(charm: Charm) -> Any:
        return charm.lxd.info(), charm.lxd.is_ready(), charm.lxd.is_trusted(CLIENT.fingerprint), charm.lxd.refused(), charm.lxd.not_ready_reason()

    r = run(lambda ctx: ctx.on.update_status(), testing.State(), look)
    assert r.result == (None, False, False, {}, "no lxd relation")
