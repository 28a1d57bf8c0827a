"""What the library's tests share: a charm using the library, provider databags, and one
dispatch through ops' state-transition testing with the library's own time measured."""

from __future__ import annotations

import contextlib
import functools
import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import ops
from certs import Identity, make
from charms.lxd_integrator.v0 import lxd
from charms.lxd_integrator.v0.lxd import LxdChangedEvent, LxdGoneEvent, LxdReadyEvent, LxdRequirer
from ops import testing

META = {"name": "requirer", "requires": {"lxd": {"interface": "lxd"}}}
CLIENT = make("requirer-0", server=False)
OTHER = make("requirer-1", server=False)
SERVER = make("root@vm")
ROTATED = make("root@vm")
N1, N2 = "https://10.0.0.1:8443", "https://[fd42::2]:8443"


class Charm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.lxd = LxdRequirer(self, "lxd")


LIB_EVENTS = (LxdReadyEvent, LxdChangedEvent, LxdGoneEvent)


def provider(
    fps: Sequence[Sequence[str]] = ((CLIENT.fingerprint,), (CLIENT.fingerprint,)),
    server: Optional[Identity] = SERVER,
    endpoints: Sequence[str] = (N1, N2),
) -> Dict[str, str]:
    """A provider databag: one node per entry of `fps`, listing those fingerprints."""
    nodes = [{"endpoint": ep, "name": f"node{i + 1}", "trusted_certs_fp": list(f)} for i, (ep, f) in enumerate(zip(endpoints, fps))]
    bag = {"version": "1.0", "nodes": json.dumps(nodes), "registered_certificates": "[]"}
    if server is not None:
        bag["server_certificate"] = server.cert_pem
        bag["server_certificate_fingerprint"] = server.fingerprint
    return bag


def relation(app_data: Optional[Dict[str, str]] = None, units: Optional[Dict[int, Dict[str, str]]] = None, rid: int = 7) -> testing.Relation:
    return testing.Relation(
        "lxd", id=rid, remote_app_name="lxd-integrator", remote_app_data=app_data or {}, remote_units_data=units if units is not None else {0: {}}
    )


class Run:
    """One dispatch: the output state, the library's events, the charm as it was, and the
    seconds spent in the library's own handlers (`library_time`)."""

    def __init__(self, ctx: testing.Context[Charm], out: testing.State, charm: Charm, result: Any, library_time: float):
        self.ctx, self.out, self.charm, self.result = ctx, out, charm, result
        self.library_time = library_time
        self.events = [type(e) for e in ctx.emitted_events if isinstance(e, LIB_EVENTS)]
        self.logs = [line.message for line in ctx.juju_log]


# The library's observers: what ops calls in a hook. Each is timed while a test dispatches.
OBSERVERS = ("_on_relation", "_on_other_hook", "_on_broken")


class Meter:
    """Seconds spent in the functions it wraps (nested calls counted once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)  # ops finds an observer again by its name
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - start

        return timed


@contextlib.contextmanager
def metered(meter: Meter) -> Iterator[None]:
    """The library's observers timed by `meter` while inside."""
    saved = {name: getattr(LxdRequirer, name) for name in OBSERVERS}
    try:
        for name, method in saved.items():
            setattr(LxdRequirer, name, meter.wrap(method))
        yield
    finally:
        for name, method in saved.items():
            setattr(LxdRequirer, name, method)


def run(
    event: Callable[[testing.Context[Charm]], Any],
    state: testing.State,
    during: Optional[Callable[[Charm], Any]] = None,
    charm_type: type = Charm,
    meta: Optional[Dict[str, Any]] = None,
) -> Run:
    """Runs `event` on `state`; `during(charm)` runs inside the dispatch, before the handlers
    (what it changes is in the output state). The charm stays readable afterwards. The
    library's time (its observers, and `during`) is measured; nothing parsed in an earlier
    dispatch is reused, so every hook pays for its own input."""
    ctx: testing.Context[Charm] = testing.Context(charm_type, meta=meta or META)
    lxd._parse_raw.cache_clear()
    meter = Meter()
    with metered(meter), ctx(event(ctx), state) as mgr:
        result = meter.wrap(during)(mgr.charm) if during else None
        out = mgr.run()
        return Run(ctx, out, mgr.charm, result, meter.seconds)


def with_certs(pems: Sequence[str], app: bool = False) -> Callable[[Charm], None]:
    return lambda charm: charm.lxd.set_client_certificates(pems, app=app)


def asking(state: testing.State, pems: Sequence[str] = (CLIENT.cert_pem,), app: bool = False) -> testing.State:
    """`state` after the charm asked for `pems` (stored by the library)."""
    return run(lambda ctx: ctx.on.update_status(), state, with_certs(pems, app)).out


def changed(state: testing.State, rel: testing.Relation, remote_unit: Optional[int] = 0, **data: Any) -> Run:
    """The provider's data on `rel` replaced, then relation-changed (from `remote_unit`; None:
    a change of the provider's application databag, which has no remote unit)."""
    new = testing.Relation(
        "lxd",
        id=rel.id,
        remote_app_name=rel.remote_app_name,
        remote_app_data=data.get("app_data", rel.remote_app_data),
        remote_units_data=data.get("units", rel.remote_units_data),
        local_unit_data=state.get_relation(rel.id).local_unit_data,
        local_app_data=state.get_relation(rel.id).local_app_data,
    )
    rels = [r for r in state.relations if r.id != rel.id] + [new]
    state = testing.State(leader=state.leader, relations=rels, stored_states=state.stored_states)
    return run(lambda ctx: ctx.on.relation_changed(new, remote_unit=remote_unit), state)


def client_certs(state: testing.State, rid: int = 7, app: bool = False) -> Optional[List[str]]:
    rel = state.get_relation(rid)
    bag: Mapping[str, str] = rel.local_app_data if app else rel.local_unit_data
    raw = bag.get("client_certificates")
    return None if raw is None else list(json.loads(raw))


