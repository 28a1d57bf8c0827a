"""Property-based tests (hypothesis) over generated provider payloads: whatever the provider
writes, wherever it writes it, a hook neither raises nor stalls (library time under a second),
problems never echo a value, readiness means what it says, and over any sequence of hooks
`lxd_ready` fires exactly when the ready picture changes and is never missed."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from certs import der, pem_of
from charms.lxd_integrator.v0 import lxd
from charms.lxd_integrator.v0.lxd import PROVIDER_KEYS, LxdChangedEvent, LxdInfo, LxdReadyEvent, parse_provider_data
from helpers import CLIENT, OTHER, ROTATED, SERVER, Charm, Run, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

MARK = "SECRET"
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- payloads ------------------------------------------------------------------------------

FPS = [CLIENT.fingerprint, OTHER.fingerprint, SERVER.fingerprint, "0" * 64]
ENDPOINTS = ["https://10.0.0.1:8443", "https://[fd42::2]:8443", "https://lxd-3:8443", "https://10.0.0.4"]
GOOD_NAMES = ["node1", "node2", "node3", "node4"]


def texts() -> st.SearchStrategy[str]:
    """Short text, sometimes carrying the marker that must never appear in a problem."""
    return st.one_of(st.text(max_size=12), st.just(MARK), st.builds(lambda a, b: a + MARK + b, st.text(max_size=4), st.text(max_size=4)))


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts())
    return st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(texts(), c, max_size=4)), max_leaves=12)


def pathological() -> st.SearchStrategy[str]:
    """What made the old parser raise or backtrack, at sizes a property test can afford (the
    named tests in test_hostile.py take them to 16 MiB)."""
    n = st.integers(0, 3000)
    begin = "-----BEGIN CERTIFICATE-----\n"
    return st.one_of(
        n.map(lambda k: "[" * k + "]" * k),
        n.map(lambda k: "[" * k),
        n.map(lambda k: '{"a":' * k + "1" + "}" * k),
        n.map(lambda k: " \t\r\n"[k % 4] * k * 4),
        n.map(lambda k: begin * (k // 10)),
        n.map(lambda k: begin + " " * k * 4 + "-----END CERTIFICATE-----"),
        n.map(lambda k: "[" * 40 + '"\\"' * k),
        n.map(lambda k: '"' + "\\" * k),
        n.map(lambda k: "é" * k),
        n.map(lambda k: "[" + "9" * k + "]"),
        st.just(SERVER.cert_pem + "é"),
    )


def nodes_values() -> st.SearchStrategy[str]:
    fp = st.one_of(st.sampled_from(FPS), st.sampled_from([f.upper() for f in FPS]), texts(), json_values())
    entry = st.one_of(
        st.fixed_dictionaries(
            {
                "name": st.one_of(st.sampled_from(GOOD_NAMES), texts(), json_values()),
                "endpoint": st.one_of(st.sampled_from(ENDPOINTS), texts(), st.sampled_from(["http://x:1", "https://[::1", "https://a:0"])),
            },
            optional={"trusted_certs_fp": st.one_of(st.lists(fp, max_size=5), json_values()), "extra": json_values()},
        ),
        json_values(),
    )
    return st.one_of(st.lists(entry, max_size=5).map(json.dumps), json_values().map(json.dumps), texts(), pathological())


def pem_values() -> st.SearchStrategy[str]:
    good = [SERVER.cert_pem, ROTATED.cert_pem, CLIENT.cert_pem]
    raw = der(SERVER)
    return st.one_of(
        st.sampled_from(good),
        st.sampled_from(good).map(lambda p: p.replace("\n", "\r\n")),
        st.lists(st.sampled_from(good), min_size=2, max_size=3).map("".join),
        st.tuples(st.sampled_from(good), texts()).map(lambda t: t[0] + t[1]),
        st.integers(0, len(raw)).map(lambda k: pem_of(raw[:k])),
        st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)).map(lambda t: pem_of(raw[: t[0]] + bytes([t[1]]) + raw[t[0] + 1 :])),
        st.just(CLIENT.key_pem),
        texts(),
        pathological(),
    )


def refused_values() -> st.SearchStrategy[str]:
    entry = st.one_of(
        st.fixed_dictionaries({"fingerprint": st.one_of(st.sampled_from(FPS), texts()), "reason": st.one_of(st.sampled_from(["expired", "not-yet-valid", "reserved", "new-code-7", "Bad Code", ""]), texts())}),
        json_values(),
    )
    return st.one_of(st.lists(entry, max_size=6).map(json.dumps), texts(), pathological())


def bags() -> st.SearchStrategy[Dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "version": st.one_of(st.sampled_from(["1.0", "1.3", "2.0", "0.9", "banana", ""]), texts()),
            "nodes": nodes_values(),
            "registered_certificates": st.one_of(st.lists(pem_values(), max_size=3).map(json.dumps), texts(), pathological()),
            "server_certificate": pem_values(),
            "server_certificate_fingerprint": st.one_of(st.sampled_from(FPS), texts()),
            "refused": refused_values(),
            "private-address": st.just("10.1.2.3"),
            MARK: texts(),
        },
    )


def no_value_echoed(info: LxdInfo) -> None:
    for problem in info.problems:
        assert MARK not in problem and len(problem) < 200, problem
    assert len(info.problems) <= len(PROVIDER_KEYS) * (lxd.LIMITS["problems_per_key"] + 1)


def readiness_means_what_it_says(info: LxdInfo, ours: List[str]) -> None:
    if info.not_ready_reason(ours) is None:
        assert info.major is not None and info.major >= 1
        assert info.nodes and info.nodes_complete
        assert all(fp in node.trusted_certs_fp for fp in ours for node in info.nodes)
        assert info.pinned or not info.publishes_server_certificate
        if info.pinned:
            assert info.server_certificate is not None
            assert info.server_certificate_fingerprint == lxd._x509(lxd._pem_blocks(info.server_certificate)[0][0][1]).fingerprint


# --- one databag ---------------------------------------------------------------------------


@settings(max_examples=500, **SLOW)  # type: ignore[arg-type]
@given(bags())
def test_any_databag_parses_without_raising_or_echoing(bag: Dict[str, str]) -> None:
    lxd._parse_raw.cache_clear()
    info = parse_provider_data(bag)
    if not any(key in bag for key in PROVIDER_KEYS):
        assert info is None
        return
    assert info is not None
    no_value_echoed(info)
    readiness_means_what_it_says(info, [CLIENT.fingerprint])
    assert all(lxd._HEX64.fullmatch(fp) and lxd._REASON.fullmatch(r) for fp, r in info.refused.items())
    if "version" not in bag:
        assert "version: missing" in info.problems


# --- one hook ------------------------------------------------------------------------------


def relation_of(units: List[Dict[str, str]], app: Dict[str, str], local: Optional[Dict[str, str]] = None) -> testing.Relation:
    return testing.Relation(
        "lxd",
        id=7,
        remote_app_name="lxd-integrator",
        remote_app_data=app,
        remote_units_data={n: bag for n, bag in enumerate(units)},
        local_unit_data=local or {},
    )


HOOK_KINDS = ["relation-changed", "relation-departed", "update-status", "config-changed", "leader-elected"]


def dispatch(kind: str, rel: testing.Relation) -> Callable[[Any], Any]:
    if kind == "relation-changed":
        return lambda ctx: ctx.on.relation_changed(rel, remote_unit=0)
    if kind == "relation-departed":
        return lambda ctx: ctx.on.relation_departed(rel, remote_unit=0, departing_unit=0)
    return {
        "update-status": lambda ctx: ctx.on.update_status(),
        "config-changed": lambda ctx: ctx.on.config_changed(),
        "leader-elected": lambda ctx: ctx.on.leader_elected(),
    }[kind]


def stored(pems: List[str]) -> testing.StoredState:
    return testing.StoredState("_stored", owner_path="Charm/LxdRequirer[lxd]", content={"certificates": pems, "app": False, "seen": {}})


@settings(max_examples=150, **SLOW)  # type: ignore[arg-type]
@given(st.lists(bags(), min_size=1, max_size=3), bags(), st.sampled_from(HOOK_KINDS), st.booleans())
def test_any_payload_in_any_databag_neither_raises_nor_stalls_a_hook(units: List[Dict[str, str]], app: Dict[str, str], kind: str, leader: bool) -> None:
    rel = relation_of(units, app)
    state = testing.State(leader=leader, relations=[rel], stored_states=[stored([CLIENT.cert_pem])])
    r = run(dispatch(kind, rel), state)
    assert r.library_time < 1.0, f"{r.library_time:.3f} s"
    info = r.charm.lxd.info()
    ready = r.charm.lxd.is_ready()
    if info is not None:
        no_value_echoed(info)
        readiness_means_what_it_says(info, [CLIENT.fingerprint])
        assert ready == (info.not_ready_reason([CLIENT.fingerprint]) is None)
    else:
        assert not ready
    assert (LxdReadyEvent in r.events) == ready, "a first evaluation reports ready at once"
    assert r.events in ([], [LxdReadyEvent], [LxdChangedEvent])


# --- sequences of hooks --------------------------------------------------------------------

# A few realistic provider pictures (and broken ones) to move between.
PICTURES: List[Tuple[str, Dict[str, str]]] = [
    ("nothing", {}),
    ("trusted", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint]}]), "server_certificate": SERVER.cert_pem, "server_certificate_fingerprint": SERVER.fingerprint}),
    ("trusted, both", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint, OTHER.fingerprint]}]), "server_certificate": SERVER.cert_pem, "server_certificate_fingerprint": SERVER.fingerprint}),
    ("trusted, 1.4, another certificate too", {"version": "1.4", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint, FPS[3]]}]), "server_certificate": SERVER.cert_pem, "server_certificate_fingerprint": SERVER.fingerprint}),
    ("trusted, rotated pin", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint]}]), "server_certificate": ROTATED.cert_pem, "server_certificate_fingerprint": ROTATED.fingerprint}),
    ("trusted, two nodes", {"version": "1.0", "nodes": json.dumps([{"name": f"n{i}", "endpoint": ENDPOINTS[i], "trusted_certs_fp": [CLIENT.fingerprint, OTHER.fingerprint]} for i in (0, 1)]), "server_certificate": SERVER.cert_pem, "server_certificate_fingerprint": SERVER.fingerprint}),
    ("trusted, unpinned", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint]}])}),
    ("half trusted", {"version": "1.0", "nodes": json.dumps([{"name": f"n{i}", "endpoint": ENDPOINTS[i], "trusted_certs_fp": [CLIENT.fingerprint] if i else []} for i in (0, 1)]), "server_certificate": SERVER.cert_pem, "server_certificate_fingerprint": SERVER.fingerprint}),
    ("refused", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": []}]), "refused": json.dumps([{"fingerprint": CLIENT.fingerprint, "reason": "expired"}])}),
    ("banana", {"version": "banana", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint]}])}),
    ("deep", {"version": "1.0", "nodes": "[" * 5000}),
    ("bad pin", {"version": "1.0", "nodes": json.dumps([{"name": "n1", "endpoint": ENDPOINTS[0], "trusted_certs_fp": [CLIENT.fingerprint]}]), "server_certificate": SERVER.cert_pem + "é", "server_certificate_fingerprint": SERVER.fingerprint}),
]
PICTURE = dict(PICTURES)

# Steps: ("provider", picture, databag: unit0 | unit1 | app, hook), ("hook", kind), ("set", pems), ("clear",)
step = st.one_of(
    st.tuples(st.just("provider"), st.sampled_from([name for name, _ in PICTURES]), st.sampled_from(["unit0", "unit1", "app"]), st.sampled_from(["relation-changed", "update-status"])),
    st.tuples(st.just("hook"), st.sampled_from(["update-status", "config-changed", "leader-elected", "upgrade-charm", "start", "install"])),
    st.tuples(st.just("set"), st.sampled_from([(CLIENT.cert_pem,), (CLIENT.cert_pem, OTHER.cert_pem), (OTHER.cert_pem,)])),
    st.tuples(st.just("clear")),
    st.tuples(st.just("refresh")),
)


def ready_picture(r: Run) -> Optional[Tuple[Any, ...]]:
    """The spec's ready picture (None when not ready): what a connected charm reconnects for."""
    if not r.charm.lxd.is_ready():
        return None
    info = r.charm.lxd.info()
    assert info is not None
    nodes = tuple(sorted((n.name, n.endpoint) for n in info.nodes))
    return (r.charm.lxd.client_fingerprints, nodes, info.server_certificate_fingerprint, info.major)


@settings(max_examples=80, **SLOW)  # type: ignore[arg-type]
@given(st.lists(step, min_size=1, max_size=10), st.booleans(), st.booleans())
def test_over_any_sequence_of_hooks_ready_fires_once_per_picture_and_is_never_missed(steps: List[Tuple[Any, ...]], leader: bool, asked: bool) -> None:
    bags: Dict[str, Dict[str, str]] = {"unit0": {}, "unit1": {}, "app": {}}
    local: Dict[str, str] = {}
    # Either the charm asked for CLIENT in an earlier hook (nothing published then), or not yet.
    stored_states: Any = [stored([CLIENT.cert_pem])] if asked else []
    told: Optional[type] = None  # the last library event the charm got
    reported: Optional[Tuple[Any, ...]] = None  # the picture of the last lxd_ready
    for s in steps:
        during: Optional[Callable[[Charm], Any]] = None
        if s[0] == "provider":
            bags[s[2]] = PICTURE[s[1]]
            kind = s[3]
        elif s[0] == "hook":
            kind = s[1]
        else:
            kind = "install"  # a hook the library does not observe: only the charm's call counts
            if s[0] == "set":
                pems = list(s[1])
                during = lambda charm, pems=pems: charm.lxd.set_client_certificates(pems)  # noqa: E731
            elif s[0] == "clear":
                during = lambda charm: charm.lxd.clear_client_certificates()  # noqa: E731
            else:
                during = lambda charm: charm.lxd.refresh()  # noqa: E731
        rel = relation_of([bags["unit0"], bags["unit1"]], bags["app"], local)
        state = testing.State(leader=leader, relations=[rel], stored_states=stored_states)
        events = {
            "relation-changed": lambda ctx: ctx.on.relation_changed(rel, remote_unit=0),
            "update-status": lambda ctx: ctx.on.update_status(),
            "config-changed": lambda ctx: ctx.on.config_changed(),
            "leader-elected": lambda ctx: ctx.on.leader_elected(),
            "upgrade-charm": lambda ctx: ctx.on.upgrade_charm(),
            "start": lambda ctx: ctx.on.start(),
            "install": lambda ctx: ctx.on.install(),
        }
        r = run(events[kind], state, during)
        assert r.library_time < 1.0
        assert len(r.events) <= 1, r.events
        picture = ready_picture(r)
        if r.events:
            told = r.events[0]
        if picture is not None:
            assert told is LxdReadyEvent, f"{s}: ready but never told"
            if picture != reported:
                assert r.events == [LxdReadyEvent], f"{s}: a new ready picture not reported"
            else:
                assert r.events == [], f"{s}: the same ready picture reported twice"
            reported = picture
        else:
            assert LxdReadyEvent not in r.events and told is not LxdReadyEvent, f"{s}: not ready, but the charm still believes it is"
            reported = None
        local = dict(r.out.get_relation(7).local_unit_data)
        stored_states = r.out.stored_states
