"""The README's minimal requirer ("For charm authors") runs as written: installed, related, it
sends `GET /1.0` to the published node through the pinned context."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any, Dict

from certs import make
from ops import testing
from test_tls import Server

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_requirer_reaches_the_published_node() -> None:
    found = re.search(r"```python\n(import http\.client, ops\n.*?)```", README.read_text(), re.S)
    assert found, "the example is in README.md"
    code = found.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) < 18
    client, lxd = make("me", server=False), make("root@vm")
    server = Server(lxd, client)
    try:
        namespace: Dict[str, Any] = {"CERT": client.cert_pem, "KEY": client.key_pem}
        exec(code, namespace)
        ctx = testing.Context(namespace["MyCharm"], meta={"name": "mine", "requires": {"lxd": {"interface": "lxd"}}})
        installed = ctx.run(ctx.on.install(), testing.State())
        host, port = server.address
        node = {"name": "node1", "endpoint": f"https://{host}:{port}", "trusted_certs_fp": [client.fingerprint]}
        bag = {
            "version": "1.0",
            "nodes": json.dumps([node]),
            "server_certificate": lxd.cert_pem,
            "server_certificate_fingerprint": lxd.fingerprint,
        }
        rel = testing.Relation("lxd", remote_app_data=bag)
        ctx.run(ctx.on.relation_changed(rel, remote_unit=0), testing.State(relations=[rel], stored_states=installed.stored_states))
        assert server.wait(1)[0][1].startswith(b"GET /1.0 HTTP/1.1\r\n")
    finally:
        server.close()
