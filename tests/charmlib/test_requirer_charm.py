"""The test requirer charm (tests/requirer-charm, used by the end-to-end scenarios) on the
library, through ops' state-transition testing: `use-identity`, `probe`, and `lib-state`, the
library's view the e2e tests read (ready, how many lxd_ready, refused, problems, version)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from typing import Any, Dict, Tuple

import pytest
import yaml  # type: ignore[import-untyped]  # ops' own dependency, without stubs
from certs import make
from helpers import provider
from ops import testing
from test_tls import Server

CHARM_DIR = pathlib.Path(__file__).resolve().parents[1] / "requirer-charm"
CLIENT = make("library-requirer-0", server=False)
LXD = make("root@vm")
HTTP_TRUSTED = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n{"metadata":{"auth":"trusted"}}'


def charm_type() -> Any:
    spec = importlib.util.spec_from_file_location("requirer_charm", CHARM_DIR / "src" / "charm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LxdRequirerCharm


def context() -> testing.Context[Any]:
    meta = yaml.safe_load((CHARM_DIR / "metadata.yaml").read_text())
    actions = yaml.safe_load((CHARM_DIR / "actions.yaml").read_text())
    return testing.Context(charm_type(), meta=meta, actions=actions)


def action(state: testing.State, name: str, params: Dict[str, Any] | None = None) -> Tuple[testing.State, Dict[str, Any]]:
    ctx = context()
    out = ctx.run(ctx.on.action(name, params=params or {}), state)
    return out, dict(ctx.action_results or {})


def hook(state: testing.State, event: Any) -> testing.State:
    ctx = context()
    return ctx.run(event(ctx), state)


def with_bag(state: testing.State, bag: Dict[str, str]) -> testing.State:
    old = state.get_relation(7)
    rel = testing.Relation(
        "lxd", id=7, remote_app_name="lxd-integrator", remote_units_data={0: bag}, local_unit_data=old.local_unit_data, local_app_data=old.local_app_data
    )
    return testing.State(leader=state.leader, relations=[rel], stored_states=state.stored_states, unit_status=state.unit_status)


@pytest.fixture
def server() -> Any:
    s = Server(LXD, CLIENT, reply=HTTP_TRUSTED)
    yield s
    s.close()


def test_use_identity_when_already_trusted_is_ready_at_once_and_lib_state_says_so(server: Server) -> None:
    host, port = server.address
    bag = provider(fps=[[CLIENT.fingerprint]], server=LXD, endpoints=[f"https://{host}:{port}"])
    state = testing.State(relations=[testing.Relation("lxd", id=7, remote_app_name="lxd-integrator", remote_units_data={0: bag})])
    state, results = action(state, "use-identity", {"cert": CLIENT.cert_pem, "key": CLIENT.key_pem})
    assert results == {"fingerprint": CLIENT.fingerprint}
    # lxd_ready fired inside the action, and its handler reached the node with the identity.
    assert isinstance(state.unit_status, testing.ActiveStatus) and state.unit_status.message.endswith("reached=1/1")
    _, results = action(state, "lib-state")
    assert results == {"ready": "true", "ready-events": "1", "refused": "{}", "problems": "[]", "version": "1.0", "reason": ""}
    # update-status refreshes: the same picture, no second lxd_ready.
    state = hook(state, lambda ctx: ctx.on.update_status())
    _, results = action(state, "lib-state")
    assert results["ready-events"] == "1"
    _, results = action(state, "probe")
    assert results == {"pinned": "true", "results": json.dumps({"node1": "trusted"})}


def test_lib_state_names_the_refusal_the_problems_and_the_version() -> None:
    state = testing.State(relations=[testing.Relation("lxd", id=7, remote_app_name="lxd-integrator", remote_units_data={0: {}})])
    state, _ = action(state, "use-identity", {"cert": CLIENT.cert_pem, "key": CLIENT.key_pem})
    refused = [{"fingerprint": CLIENT.fingerprint, "reason": "expired"}, {"fingerprint": LXD.fingerprint, "reason": "reserved"}, "junk"]
    bag = {**provider(fps=[[]], server=LXD), "version": "1.2", "refused": json.dumps(refused)}
    state = with_bag(state, bag)
    state = hook(state, lambda ctx: ctx.on.relation_changed(state.get_relation(7), remote_unit=0))
    _, results = action(state, "lib-state")
    assert results["ready"] == "false" and results["ready-events"] == "0" and results["version"] == "1.2"
    assert json.loads(results["refused"]) == {CLIENT.fingerprint: "expired"}
    assert json.loads(results["problems"]) == ["refused: 1 entries are not {fingerprint, reason} with a SHA-256 fingerprint and a reason code"]
    assert results["reason"] == f"certificate {CLIENT.fingerprint[:12]} refused by the provider: expired"


def test_use_identity_with_what_is_not_one_certificate_fails_saying_why() -> None:
    state = testing.State(relations=[testing.Relation("lxd", id=7, remote_units_data={0: {}})])
    ctx = context()
    with pytest.raises(testing.ActionFailed) as e:
        ctx.run(ctx.on.action("use-identity", params={"cert": CLIENT.cert_pem + LXD.cert_pem, "key": CLIENT.key_pem}), state)
    assert e.value.message == "cert is not one PEM certificate: client certificate 1 of 1: a bundle of 2 certificates: give each as its own entry"


def test_lib_state_without_a_relation() -> None:
    _, results = action(testing.State(), "lib-state")
    assert results == {"ready": "false", "ready-events": "0", "refused": "{}", "problems": "[]", "version": "", "reason": ""}
