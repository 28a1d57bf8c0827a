"""`LxdRequirer` through ops' own state-transition testing (`ops.testing`, i.e. ops-scenario):
every event and edge, from no relation to garbage from the provider."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping

import pytest
from charms.lxd_integrator.v0.lxd import LxdChangedEvent, LxdGoneEvent, LxdReadyEvent, ServerCertificateUnknown
from helpers import CLIENT, N1, OTHER, ROTATED, SERVER, Charm, asking, changed, client_certs, provider, relation, run, with_certs
from ops import testing

# --- no relation, sending -----------------------------------------------------------------


def test_without_a_relation_nothing_is_known_and_nothing_fails() -> None:
    def look(charm: Charm) -> Any:
        with pytest.raises(ServerCertificateUnknown):
            charm.lxd.ssl_context(CLIENT.cert_pem, CLIENT.key_pem)
        return charm.lxd.info(), charm.lxd.is_ready(), charm.lxd.is_trusted(CLIENT.fingerprint)

    r = run(lambda ctx: ctx.on.update_status(), testing.State(), lambda c: (with_certs([CLIENT.cert_pem])(c), look(c))[1])
    assert r.result == (None, False, False)
    assert r.events == []


def test_certificates_asked_before_the_relation_are_sent_when_it_is_created() -> None:
    state = asking(testing.State())
    rel = relation()
    r = run(lambda ctx: ctx.on.relation_created(rel), testing.State(relations=[rel], stored_states=state.stored_states))
    assert client_certs(r.out) == [CLIENT.cert_pem]
    assert r.events == [], "nothing published yet: no event"


def test_the_app_databag_is_written_by_the_leader_only_and_the_unit_copy_removed() -> None:
    rel = testing.Relation("lxd", id=7, local_unit_data={"client_certificates": json.dumps([OTHER.cert_pem])})
    out = run(lambda ctx: ctx.on.update_status(), testing.State(leader=True, relations=[rel]), with_certs([CLIENT.cert_pem], app=True)).out
    assert client_certs(out, app=True) == [CLIENT.cert_pem]
    assert client_certs(out) is None
    out = run(lambda ctx: ctx.on.update_status(), testing.State(leader=False, relations=[rel]), with_certs([CLIENT.cert_pem], app=True)).out
    assert client_certs(out, app=True) is None and client_certs(out) is None
    # Leadership arrives later: the new leader writes them.
    out = run(lambda ctx: ctx.on.leader_elected(), testing.State(leader=True, relations=out.relations, stored_states=out.stored_states)).out
    assert client_certs(out, app=True) == [CLIENT.cert_pem]


def test_something_that_is_not_a_certificate_is_refused_and_nothing_sent() -> None:
    rel = relation()
    for bad in ("not a pem", CLIENT.key_pem, ""):
        def attempt(charm: Charm, bad: str = bad) -> None:
            with pytest.raises(ValueError):
                charm.lxd.set_client_certificates([CLIENT.cert_pem, bad])

        out = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), attempt).out
        assert client_certs(out) is None


def test_clearing_removes_the_key() -> None:
    state = asking(testing.State(leader=True, relations=[relation()]))
    assert client_certs(state) == [CLIENT.cert_pem]
    out = run(lambda ctx: ctx.on.update_status(), state, lambda c: c.lxd.clear_client_certificates()).out
    assert client_certs(out) is None


def test_until_asked_the_library_leaves_the_key_to_the_charm() -> None:
    mine = json.dumps(["written by the charm itself"])
    rel = testing.Relation("lxd", id=7, local_unit_data={"client_certificates": mine})
    out = run(lambda ctx: ctx.on.relation_joined(rel, remote_unit=0), testing.State(relations=[rel])).out
    assert client_certs(out) == ["written by the charm itself"]


# --- reading, events ----------------------------------------------------------------------


def test_ready_when_trusted_on_every_node_with_the_server_certificate() -> None:
    rel = relation()
    state = asking(testing.State(relations=[rel]))
    r = changed(state, rel, app_data=provider())
    assert r.events == [LxdReadyEvent]
    info = r.charm.lxd.info()
    assert info is not None and info.pinned and info.problems == ()
    assert [(n.name, n.host, n.port) for n in info.nodes] == [("node1", "10.0.0.1", 8443), ("node2", "fd42::2", 8443)]
    assert info.server_certificate == SERVER.cert_pem
    assert info.server_certificate_fingerprint == SERVER.fingerprint
    assert r.charm.lxd.is_ready() and r.charm.lxd.is_trusted(CLIENT.fingerprint.upper())
    # The same picture again (another provider unit's copy): no second event.
    again = changed(r.out, rel, app_data=provider(), units={0: provider()})
    assert again.events == []


def test_partial_trust_is_not_ready_until_every_node_lists_every_certificate() -> None:
    rel = relation()
    state = asking(testing.State(relations=[rel]), [CLIENT.cert_pem, OTHER.cert_pem])
    both = (CLIENT.fingerprint, OTHER.fingerprint)
    r = changed(state, rel, app_data=provider(fps=[both, [CLIENT.fingerprint]]))
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()
    assert r.charm.lxd.is_trusted(CLIENT.fingerprint) and not r.charm.lxd.is_trusted(OTHER.fingerprint)
    r = changed(r.out, rel, app_data=provider(fps=[both, both]))
    assert r.events == [LxdReadyEvent]
    # Trust withdrawn: no longer ready.
    r = changed(r.out, rel, app_data=provider(fps=[both, []]))
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()


def test_no_nodes_or_no_certificates_asked_is_not_ready() -> None:
    rel = relation()
    r = changed(asking(testing.State(relations=[rel])), rel, app_data=provider(fps=[]))
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()
    r = changed(testing.State(relations=[rel]), rel, app_data=provider())
    assert r.events == [LxdChangedEvent], "nothing asked: nothing to be ready for"


def test_a_rotated_server_certificate_fires_ready_again_with_the_new_pin() -> None:
    rel = relation()
    r = changed(asking(testing.State(relations=[rel])), rel, app_data=provider())
    r = changed(r.out, rel, app_data=provider(server=ROTATED))
    assert r.events == [LxdReadyEvent]
    info = r.charm.lxd.info()
    assert info is not None and info.server_certificate_fingerprint == ROTATED.fingerprint


def test_a_provider_without_the_server_certificate_keys_is_ready_unpinned_and_says_so() -> None:
    rel = relation()
    r = changed(asking(testing.State(relations=[rel])), rel, units={0: provider(server=None)})

    def context(charm: Charm) -> str:
        with pytest.raises(ServerCertificateUnknown):
            charm.lxd.ssl_context(CLIENT.cert_pem, CLIENT.key_pem)
        # The certificate obtained some other way still works.
        charm.lxd.ssl_context(CLIENT.cert_pem, CLIENT.key_pem, server_certificate=SERVER.cert_pem)
        return "ok"

    assert r.events == [LxdReadyEvent]
    info = r.charm.lxd.info()
    assert info is not None and not info.pinned and not info.publishes_server_certificate
    assert any("publishes no server certificate" in line for line in r.logs), r.logs
    assert run(lambda ctx: ctx.on.update_status(), r.out, context).result == "ok"


def test_unit_databags_are_read_first_and_the_app_databag_only_without_a_versioned_one() -> None:
    rel = relation()
    state = asking(testing.State(relations=[rel]))
    # Every provider unit writes its own databag; the first by unit name with a version wins.
    r = changed(state, rel, app_data=provider(server=ROTATED), units={0: {}, 1: provider(server=SERVER), 2: provider(server=ROTATED)})
    info = r.charm.lxd.info()
    assert info is not None and info.server_certificate_fingerprint == SERVER.fingerprint
    # A unit databag holding keys but no version does not stand in for a versioned one.
    r = changed(state, rel, app_data=provider(server=ROTATED), units={0: {"nodes": "[]"}, 1: provider(server=SERVER)})
    info = r.charm.lxd.info()
    assert info is not None and info.server_certificate_fingerprint == SERVER.fingerprint
    # Older providers also wrote the application databag: read when no unit databag has a version.
    r = changed(state, rel, app_data=provider(server=ROTATED), units={0: {"nodes": "[]"}})
    info = r.charm.lxd.info()
    assert info is not None and info.server_certificate_fingerprint == ROTATED.fingerprint
    # Keys without any version anywhere: the info says so, and is never ready.
    r = changed(state, rel, app_data={}, units={0: {k: v for k, v in provider().items() if k != "version"}})
    info = r.charm.lxd.info()
    assert info is not None and info.version == "" and info.major is None
    assert "version: missing" in info.problems and not r.charm.lxd.is_ready()


GARBAGE: Dict[str, Mapping[str, str]] = {
    "nodes not JSON": {"nodes": "{oops"},
    "nodes not a list": {"nodes": json.dumps({"endpoint": N1})},
    "node entries of every wrong kind": {
        "nodes": json.dumps(
            [
                "node1",
                {"name": "n", "endpoint": "http://10.0.0.1:8443", "trusted_certs_fp": []},
                {"name": "n", "endpoint": "https://[::1", "trusted_certs_fp": []},
                {"name": "n", "endpoint": "https://10.0.0.1:99999", "trusted_certs_fp": []},
                {"name": 3, "endpoint": N1},
                {"name": "n", "endpoint": N1, "trusted_certs_fp": "SECRET-ISH"},
                {"name": "n", "endpoint": N1, "trusted_certs_fp": ["SECRET-ISH", 5, None]},
            ]
        )
    },
    "server certificate not PEM": {"server_certificate": "SECRET-ISH", "server_certificate_fingerprint": SERVER.fingerprint},
    "server certificate base64 but not X.509": {
        "server_certificate": "-----BEGIN CERTIFICATE-----\nU0VDUkVULUlTSA==\n-----END CERTIFICATE-----\n",
        "server_certificate_fingerprint": SERVER.fingerprint,
    },
    "fingerprint of another certificate": {"server_certificate_fingerprint": ROTATED.fingerprint},
    "certificate without its fingerprint": {"server_certificate_fingerprint": ""},
}


@pytest.mark.parametrize("what", sorted(GARBAGE))
def test_garbage_from_the_provider_is_left_out_named_and_never_ready(what: str) -> None:
    rel = relation()
    bag = {**provider(), **GARBAGE[what]}
    bag = {k: v for k, v in bag.items() if v != ""}
    r = changed(asking(testing.State(relations=[rel])), rel, app_data=bag)
    info = r.charm.lxd.info()
    assert info is not None and info.problems, what
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()
    assert not any("SECRET-ISH" in p for p in info.problems), "values are never echoed"
    assert any("ignored from the provider" in line for line in r.logs)


def test_the_relation_going_away_fires_gone() -> None:
    rel = relation()
    r = changed(asking(testing.State(relations=[rel])), rel, app_data=provider())
    gone = run(lambda ctx: ctx.on.relation_broken(r.out.get_relation(7)), r.out)
    assert gone.events == [LxdGoneEvent]
    assert dict(gone.out.get_stored_state("_stored", owner_path="Charm/LxdRequirer[lxd]").content["seen"]) == {}


def test_a_departed_provider_unit_is_a_change_when_it_was_the_only_source() -> None:
    rel = relation(units={0: provider()})
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), with_certs([CLIENT.cert_pem]))
    assert r.events == [LxdReadyEvent], "already trusted when set: ready at once"
    left = testing.Relation("lxd", id=7, remote_app_name="lxd-integrator", remote_units_data={}, local_unit_data=r.out.get_relation(7).local_unit_data)
    state = testing.State(relations=[left], stored_states=r.out.stored_states)
    d = run(lambda ctx: ctx.on.relation_departed(left, remote_unit=0, departing_unit=0), state)
    assert d.events == [LxdChangedEvent] and not d.charm.lxd.is_ready()


def test_every_public_name_of_libpatch_1_still_works() -> None:
    """Compatible within v0: names are added, never renamed or removed."""
    from charms.lxd_integrator.v0 import lxd

    for name in (
        "LxdRequirer", "LxdInfo", "LxdNode", "LxdReadyEvent", "LxdChangedEvent", "LxdGoneEvent", "LxdRequirerEvents",
        "ServerCertificateUnknown", "parse_provider_data", "pinned_context", "fingerprint", "DEFAULT_PORT",
        "KEY_CLIENT_CERTS", "KEY_VERSION", "KEY_NODES", "KEY_SERVER_CERT", "KEY_SERVER_CERT_FP",
    ):  # fmt: skip
        assert hasattr(lxd, name), name
    for method in ("set_client_certificates", "clear_client_certificates", "client_fingerprints", "info", "is_trusted", "is_ready", "ssl_context"):
        assert hasattr(lxd.LxdRequirer, method), method
    # LxdInfo built the LIBPATCH 1 way (six fields, positionally), as a charm's own tests may.
    node = lxd.LxdNode("node1", N1, "10.0.0.1", 8443, frozenset([CLIENT.fingerprint]))
    info = lxd.LxdInfo("1.0", (node,), None, None, False, ())
    assert info.is_trusted(CLIENT.fingerprint) and not info.pinned and info.nodes_complete and dict(info.refused) == {}
    assert info.not_ready_reason([CLIENT.fingerprint]) is None
    assert hash(info) == hash(lxd.LxdInfo("1.0", (node,), None, None, False, ())), "still hashable"
    assert lxd.fingerprint(CLIENT.cert_pem) == CLIENT.fingerprint
    assert lxd.LxdRequirer.__init__.__defaults__ == ("lxd",)
