"""Issue #24, found 5: the module docstring's example runs as written, against a provider that
predates `server_certificate` (no crash: it says so in the status), one that pins (it reaches
the node through the pinned context), and one that refused its certificate (it says why)."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Dict, Type

import ops
from certs import make
from charms.lxd_integrator.v0 import lxd
from helpers import provider, relation, run
from ops import testing
from test_tls import Server

CLIENT = make("me", server=False)
LXD = make("root@vm")
HTTP_TRUSTED = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n{"metadata":{"auth":"trusted"}}'


def example() -> Type[ops.CharmBase]:
    doc = lxd.__doc__ or ""
    start = doc.index("then::\n") + len("then::\n")
    end = doc.index("\nEvents (")
    code = textwrap.dedent(doc[start:end])
    namespace: Dict[str, Any] = {"CERT_PEM": CLIENT.cert_pem, "KEY_PEM": CLIENT.key_pem}
    exec(compile(code, "lxd.py docstring", "exec"), namespace)
    charm: Type[ops.CharmBase] = namespace["MyCharm"]
    return charm


def installed(charm: Type[ops.CharmBase], rel: testing.Relation) -> testing.State:
    return run(lambda ctx: ctx.on.install(), testing.State(relations=[rel]), charm_type=charm).out


def test_found_5_the_docstring_example_against_a_provider_that_predates_the_server_certificate() -> None:
    charm = example()
    bag = provider(fps=[[CLIENT.fingerprint]], server=None)
    rel = relation(units={0: bag})
    r = run(lambda ctx: ctx.on.install(), testing.State(relations=[rel]), charm_type=charm)
    assert r.out.unit_status == testing.BlockedStatus("LXD's server certificate is not published")


def test_the_docstring_example_reaches_the_node_through_the_pinned_context() -> None:
    charm = example()
    server = Server(LXD, CLIENT, reply=HTTP_TRUSTED)
    try:
        host, port = server.address
        rel = relation()
        state = installed(charm, rel)
        bag = provider(fps=[[CLIENT.fingerprint]], server=LXD, endpoints=[f"https://{host}:{port}"])
        new = testing.Relation("lxd", id=7, remote_units_data={0: bag}, local_unit_data=state.get_relation(7).local_unit_data)
        r = run(lambda ctx: ctx.on.relation_changed(new, remote_unit=0), testing.State(relations=[new], stored_states=state.stored_states), charm_type=charm)
        assert r.out.unit_status == testing.ActiveStatus()
        assert server.wait(1)[0][1].startswith(b"GET /1.0 HTTP/1.1\r\n")
    finally:
        server.close()


def test_the_docstring_example_says_why_it_is_not_ready() -> None:
    charm = example()
    refused = json.dumps([{"fingerprint": CLIENT.fingerprint, "reason": "not-yet-valid"}])
    rel = relation(units={0: {**provider(fps=[[]]), "refused": refused}})
    r = run(lambda ctx: ctx.on.install(), testing.State(relations=[rel]), charm_type=charm)
    reason = f"certificate {CLIENT.fingerprint[:12]} refused by the provider: not yet valid (check this machine's clock)"
    assert r.out.unit_status == testing.WaitingStatus(reason)


def test_found_7_the_docstring_points_at_this_projects_interface_document() -> None:
    doc = lxd.__doc__ or ""
    assert "`docs/interface-lxd.md` in the lxd-integrator" in doc
    assert "github.com/canonical/lxd-integrator" not in doc
