#!/usr/bin/env python3
"""Behaviour check of the requirer charm with ops' Harness (no Juju needed).

    ./setup.sh && /usr/bin/python3 selfcheck.py
"""
import json
import os
import pathlib
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
HERE = pathlib.Path(__file__).resolve().parent
os.chdir(HERE)
sys.path[:0] = [str(HERE / "venv"), str(HERE / "lib"), str(HERE / "src")]
import ops  # noqa: E402
from ops.testing import Harness
from charm import LxdRequirerCharm  # noqa: E402

root = HERE
h = Harness(LxdRequirerCharm, meta=(root/"metadata.yaml").read_text(), actions=(root/"actions.yaml").read_text())
h.set_leader(False)
h.begin_with_initial_hooks()
print("initial:", h.model.unit.status)
rid = h.add_relation("lxd", "lxd-integrator")
h.add_relation_unit(rid, "lxd-integrator/0")
assert "client_certificates" not in h.get_relation_data(rid, h.model.unit.name), "sends nothing by default"
pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
out = h.run_action("set-certificates", {"value": json.dumps([pem])})
print("set:", out.results)
assert h.get_relation_data(rid, h.model.unit.name)["client_certificates"] == json.dumps([pem])
out = h.run_action("set-certificates", {"value": "not json {"})
assert h.get_relation_data(rid, h.model.unit.name)["client_certificates"] == "not json {"
try:
    h.run_action("set-certificates", {"value": "x", "app": True})
    raise SystemExit("non-leader app write should fail")
except ops.testing.ActionFailed as e:
    print("non-leader app:", e.message)
h.update_relation_data(rid, "lxd-integrator/0", {"version": "1.0", "nodes": json.dumps([{"endpoint": "a"}, {"endpoint": "b"}, {"endpoint": "c"}])})
h.update_relation_data(rid, "lxd-integrator", {"registered_certificates": json.dumps(["fp1"])})
print("status:", h.model.unit.status)
assert h.model.unit.status == ops.ActiveStatus("nodes=3 registered=1")
got = h.run_action("get-received").results
print("get-received:", got)
rec = json.loads(got["received"])
assert rec[str(rid)]["units"]["lxd-integrator/0"]["version"] == "1.0"
h.set_leader(True)
h.run_action("set-certificates", {"value": "[]", "app": True})
assert h.get_relation_data(rid, h.model.app.name)["client_certificates"] == "[]"
assert "client_certificates" not in h.get_relation_data(rid, h.model.unit.name)
h.run_action("clear-certificates")
assert "client_certificates" not in h.get_relation_data(rid, h.model.app.name)
# A new relation gets the remembered value on created/joined.
h.run_action("set-certificates", {"value": "remembered"})
rid2 = h.add_relation("lxd", "other-integrator")
assert h.get_relation_data(rid2, h.model.unit.name)["client_certificates"] == "remembered"
state = h.run_action("lib-state").results
print("lib-state:", state)
assert state["ready"] == "false" and state["ready-events"] == "0" and state["refused"] == "{}"
h.remove_relation(rid)
print("after broken:", h.model.unit.status, json.loads(h.run_action("get-received").results["received"]).keys())
print("OK")
