"""Issue #24, "What was found", one named regression each: what a hostile or old provider can
write must neither raise out of nor stall a requirer's hook. Each hook runs through ops'
state-transition testing; the library's own time in it (`Run.library_time`) must stay under a
second, and the info must be not ready with the problem named, never the value."""

from __future__ import annotations

import json
import ssl
import time
from typing import Callable, Dict

import pytest
from charms.lxd_integrator.v0 import lxd
from charms.lxd_integrator.v0.lxd import LIMITS, LxdChangedEvent, LxdReadyEvent, parse_provider_data
from helpers import CLIENT, SERVER, Charm, Run, asking, changed, client_certs, provider, relation, run, with_certs
from ops import testing
from test_sending import NOT_ONE_CERTIFICATE

MIB = 1024 * 1024
SECOND = 1.0
BEGIN = "-----BEGIN CERTIFICATE-----\n"


def hook(bag: Dict[str, str], where: str = "unit", ready: bool = False) -> Run:
    """relation-changed with `bag` as the provider's unit (or application) databag, for a
    charm that asked for CLIENT; asserts the hook's bounds. Not ready, unless what failed is
    informational only (`registered_certificates`, `refused`) and the rest makes it ready."""
    rel = relation()
    state = asking(testing.State(relations=[rel]))
    r = changed(state, rel, units={0: bag}) if where == "unit" else changed(state, rel, app_data=bag)
    assert r.library_time < SECOND, f"{r.library_time:.3f} s of library time"
    info = r.charm.lxd.info()
    assert info is not None
    assert r.charm.lxd.is_ready() == ready and r.events == [LxdReadyEvent if ready else LxdChangedEvent]
    assert info.problems, "the problem is recorded"
    for problem in info.problems:
        assert len(problem) < 200 and "SECRET" not in problem, "never the value"
    return r


def problems(r: Run) -> str:
    info = r.charm.lxd.info()
    assert info is not None
    return " | ".join(info.problems)


# --- 1. Hooks crashed on provider data ----------------------------------------------------


@pytest.mark.parametrize("levels", [1_000, 10_000])
def test_found_1_nodes_nested_deep_is_a_problem_not_a_recursion_error(levels: int) -> None:
    for nested in ("[" * levels + "]" * levels, '{"a":' * levels + "1" + "}" * levels, "[" * levels):
        r = hook({**provider(), "nodes": nested})
        assert "nodes: JSON nested deeper than 32 levels" in problems(r)


def test_found_1_nesting_is_measured_outside_strings_only() -> None:
    # Brackets inside strings (IPv6 endpoints, names) are not nesting; escaped quotes do not
    # end a string.
    name = '[[[[' * 20 + '\\"]]]]' + "{" * 40
    nodes = [{"name": name, "endpoint": "https://[fd42::1]:8443", "trusted_certs_fp": [CLIENT.fingerprint]}]
    info = parse_provider_data({**provider(server=None), "nodes": json.dumps(nodes)})
    assert info is not None
    assert info.nodes_complete and info.is_trusted(CLIENT.fingerprint), info.problems


def test_found_1_non_ascii_beside_a_valid_server_certificate_is_a_problem_not_a_type_error() -> None:
    for text in (SERVER.cert_pem + "é", "é" + SERVER.cert_pem, SERVER.cert_pem.replace("\n", "\n\u00a0", 1)):
        r = hook({**provider(), "server_certificate": text})
        assert "server_certificate: not ASCII text" in problems(r)
        info = r.charm.lxd.info()
        assert info is not None and not info.pinned and info.publishes_server_certificate


def test_found_1_what_openssl_raises_on_text_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Canonical PEM is ASCII, so OpenSSL's TypeError/UnicodeEncodeError cannot happen today;
    # were a parser to let one through, it is caught all the same.
    for error in (TypeError("cadata"), UnicodeEncodeError("ascii", "é", 0, 1, "no")):

        class Context:
            def __init__(self, *_: object) -> None:
                pass

            def load_verify_locations(self, cadata: str, error: Exception = error) -> None:
                raise error

        monkeypatch.setattr(ssl, "SSLContext", Context)
        lxd._parse_raw.cache_clear()
        info = parse_provider_data(provider())
        assert info is not None and not info.pinned
        assert "server_certificate: OpenSSL cannot take it as text" in info.problems


# --- 2. Hooks hung: the PEM regular expression backtracked ---------------------------------


def test_found_2_whitespace_runs_of_4000_characters_are_linear() -> None:
    ws = " \t\r\n" * 1000
    for text in (
        BEGIN + ws + "-----END CERTIFICATE-----\n",  # what took 32 s
        BEGIN + ws,
        BEGIN + ws + "MIIB" + ws + "-----END CERTIFICATE-----\n",
        ws + SERVER.cert_pem + ws + "x",
    ):
        r = hook({**provider(), "server_certificate": text})
        assert "server_certificate" in problems(r)


def test_found_2_repeated_begin_lines_540_kb_are_linear() -> None:
    repeated = BEGIN * (540_000 // len(BEGIN))  # what took 131 s
    for text in (repeated, repeated + "-----END CERTIFICATE-----\n", repeated + SERVER.cert_pem):
        r = hook({**provider(), "server_certificate": text})
        assert "server_certificate" in problems(r)


@pytest.mark.parametrize("size", [1 * MIB, 16 * MIB])
def test_found_2_a_server_certificate_of_1_and_16_mib_is_bounded(size: int) -> None:
    for filler in (" ", BEGIN, "A", SERVER.cert_pem):
        text = (filler * (size // len(filler) + 1))[:size]
        r = hook({**provider(), "server_certificate": text})
        assert "server_certificate" in problems(r)
    r = hook({**provider(), "server_certificate": "A" * size})
    if size > LIMITS["server_certificate_chars"]:
        assert f"server_certificate: longer than {LIMITS['server_certificate_chars']} characters" in problems(r)


@pytest.mark.parametrize("key", ["nodes", "registered_certificates", "refused", "version", "server_certificate_fingerprint"])
def test_found_2_a_16_mib_value_of_any_key_is_refused_by_size_at_once(key: str) -> None:
    bag = {**provider(), key: "[" * (16 * MIB)}
    r = hook(bag, ready=key in ("registered_certificates", "refused"))
    assert f"{key}: longer than" in problems(r)


def test_found_2_pathological_json_at_the_size_caps_stays_under_a_second() -> None:
    cap = LIMITS["nodes_chars"]
    cases = {
        "brackets": "[" * cap,
        "quotes": "[" * 40 + '"' * (cap - 40),
        "escaped quotes": "[" * 40 + '"' + '\\"' * ((cap - 41) // 2),
        "unterminated strings": ("[" * 40 + '"\\"' * (cap // 3))[:cap],
        "numbers": "[" + "9" * (cap - 2) + "]",
        "many items": "[" + "0," * (cap // 2 - 1) + "0]",
        "whitespace": "[" + " " * (cap - 1),
        "backslashes": "[" * 40 + '"' + "\\" * (cap - 41),
    }
    for what, nodes in cases.items():
        r = hook({**provider(), "nodes": nodes})
        assert "nodes" in problems(r), what


def test_found_2_the_nesting_scan_is_linear_on_quotes_and_escapes() -> None:
    # The only regular expression that meets raw JSON drops strings before nesting is
    # measured; unterminated strings and escape runs must not make it quadratic.
    cap = LIMITS["nodes_chars"]
    for text in ('"\\"' * (cap // 3), '"' + "\\" * cap, '"a' * (cap // 2), '["' + '\\"' * (cap // 2), '"' * cap, '"\\"' * 33_000):
        start = time.perf_counter()
        assert lxd._json_shape_fault("[" * 40 + text) is not None
        assert time.perf_counter() - start < 0.5


# --- 3. Accepted what is not a certificate (see also test_sending.py) -----------------------


def test_found_3_what_is_not_one_certificate_is_refused_before_it_is_published() -> None:
    rel = relation()
    for what, text in NOT_ONE_CERTIFICATE.items():

        def attempt(charm: Charm, text: str = text) -> str:
            with pytest.raises(ValueError) as e:
                charm.lxd.set_client_certificates([text])
            return str(e.value)

        r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), attempt)
        assert client_certs(r.out) is None, what


# --- 4 to 7: see test_ready.py, test_docstring.py, test_relations.py, test_provider_data.py -


def test_found_4_ready_when_the_provider_already_trusts_the_certificate_as_it_is_set() -> None:
    rel = relation(units={0: provider()})
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), with_certs([CLIENT.cert_pem]))
    assert r.events == [LxdReadyEvent]


PATHOLOGICAL: Dict[str, Callable[[], Dict[str, str]]] = {
    "nodes 10,000 levels": lambda: {**provider(), "nodes": "[" * 10_000 + "]" * 10_000},
    "16 MiB server_certificate": lambda: {**provider(), "server_certificate": " " * (16 * MIB)},
    "16 MiB nodes": lambda: {**provider(), "nodes": " " * (16 * MIB)},
    "4,000 whitespace in a block": lambda: {**provider(), "server_certificate": BEGIN + " " * 4000 + "\n-----END CERTIFICATE-----"},
    "540 KB of BEGIN lines": lambda: {**provider(), "server_certificate": BEGIN * (540_000 // len(BEGIN))},
}


@pytest.mark.parametrize("what", sorted(PATHOLOGICAL))
def test_the_issues_bound_under_a_second_not_ready_with_a_problem_in_either_databag(what: str) -> None:
    for where in ("unit", "app"):
        r = hook(PATHOLOGICAL[what](), where)
        print(f"{what} ({where} databag): {r.library_time * 1000:.1f} ms of library time")
