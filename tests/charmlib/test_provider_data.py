"""What the provider publishes, key by key: `version`, `nodes` (hosts validated, a malformed
entry makes the info not ready), `refused`, `registered_certificates`."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from charms.lxd_integrator.v0.lxd import LIMITS, REFUSAL_REASONS, LxdChangedEvent, LxdInfo, LxdReadyEvent, parse_provider_data
from helpers import CLIENT, N1, N2, OTHER, SERVER, asking, changed, provider, relation
from ops import testing


def parse(bag: Dict[str, str]) -> LxdInfo:
    info = parse_provider_data(bag)
    assert info is not None
    return info


def ready(info: LxdInfo) -> bool:
    return info.not_ready_reason([CLIENT.fingerprint]) is None


# --- version ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, major, minor, problem",
    [
        ("1.0", 1, 0, None),
        ("1.3", 1, 3, None),
        ("2.0", 2, 0, None),
        ("10.12", 10, 12, None),
        ("banana", None, None, "version: not MAJOR.MINOR"),
        ("1", None, None, "version: not MAJOR.MINOR"),
        ("1.0.0", None, None, "version: not MAJOR.MINOR"),
        ("", None, None, "version: not MAJOR.MINOR"),
        ("1.x", None, None, "version: not MAJOR.MINOR"),
        ("١.٠", None, None, "version: not MAJOR.MINOR"),  # Arabic-Indic digits: isdigit(), not ASCII
        (" 1.0", None, None, "version: not MAJOR.MINOR"),
        ("0.9", 0, 9, "version: a major version before 1"),
        ("1." + "0" * 40, None, None, "version: longer than 16 characters"),
    ],
)
def test_versions_a_later_one_is_read_through_the_1_0_keys_a_malformed_one_is_never_ready(
    version: str, major: Any, minor: Any, problem: Any
) -> None:
    info = parse({**provider(), "version": version})
    assert (info.major, info.minor) == (major, minor)
    if problem is None:
        assert info.version == version and info.problems == () and ready(info)
    else:
        assert problem in info.problems and not ready(info)
        assert info.not_ready_reason([CLIENT.fingerprint]) == "the provider's interface version is missing or not understood"


def test_a_missing_version_is_a_problem_and_never_ready() -> None:
    bag = provider()
    del bag["version"]
    info = parse(bag)
    assert info.version == "" and info.major is None and "version: missing" in info.problems and not ready(info)


def test_found_7_banana_through_a_hook_is_not_ready_and_says_so() -> None:
    rel = relation()
    r = changed(asking(testing.State(relations=[rel])), rel, units={0: {**provider(), "version": "banana"}})
    assert r.events == [LxdChangedEvent] and not r.charm.lxd.is_ready()
    assert r.charm.lxd.not_ready_reason() == "the provider's interface version is missing or not understood"
    r = changed(r.out, rel, units={0: {**provider(), "version": "2.0"}})
    assert r.events == [LxdReadyEvent]
    info = r.charm.lxd.info()
    assert info is not None and info.major == 2 and info.version == "2.0"


# --- nodes --------------------------------------------------------------------------------


def node(endpoint: str = N1, name: str = "node1", fps: Any = None) -> Dict[str, Any]:
    return {"endpoint": endpoint, "name": name, "trusted_certs_fp": [CLIENT.fingerprint] if fps is None else fps}


@pytest.mark.parametrize(
    "endpoint, host, port",
    [
        ("https://10.0.0.1:8443", "10.0.0.1", 8443),
        ("https://10.0.0.1", "10.0.0.1", 8443),
        ("https://10.0.0.1:8443/", "10.0.0.1", 8443),
        ("https://[fd42::2]:8443", "fd42::2", 8443),
        ("https://[::1]:1", "::1", 1),
        ("https://lxd-1.example.com:65535", "lxd-1.example.com", 65535),
        ("https://lxd.example.com.:8443", "lxd.example.com.", 8443),
        ("https://node1:8443", "node1", 8443),
        ("https://" + "a" * 63 + ".b:8443", "a" * 63 + ".b", 8443),
    ],
)
def test_node_endpoints_name_a_host_and_a_port(endpoint: str, host: str, port: int) -> None:
    info = parse({**provider(), "nodes": json.dumps([node(endpoint)])})
    assert info.problems == () and [(n.host, n.port) for n in info.nodes] == [(host, port)]


BAD_ENDPOINTS = [
    "http://10.0.0.1:8443",
    "https://",
    "https://:8443",
    "https://10.0.0.1:0",
    "https://10.0.0.1:65536",
    "https://10.0.0.1:99999",
    "https://10.0.0.1:84a3",
    "https://10.0.0.1:+843",
    "https://10.0.0.1:８４４３",
    "https://256.0.0.1:8443",
    "https://1.2.3:8443",
    "https://[::1",
    "https://[::1]x:8443",
    "https://fd42::2:8443",
    "https://[fe80::1%eth0]:8443",
    "https://[not-ipv6]:8443",
    "https://user@10.0.0.1:8443",
    "https://10.0.0.1:8443/1.0",
    "https://10.0.0.1:8443?x=1",
    "https://host_name:8443",
    "https://-host:8443",
    "https://host-:8443",
    "https://ex..ample:8443",
    "https://" + "a" * 64 + ":8443",
    "https://" + ("a" * 60 + ".") * 5 + ":8443",
    "https://bücher.example:8443",
    "https://10.0.0.1 :8443",
    "https://10.0.0.1:8443\n",
    "https://" + "a" * 400,
]


@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS)
def test_found_7_a_node_whose_endpoint_is_not_a_valid_host_makes_the_info_not_ready(endpoint: str) -> None:
    info = parse({**provider(), "nodes": json.dumps([node(endpoint), node(N2, "node2")])})
    assert [n.name for n in info.nodes] == ["node2"], "the valid entry is kept for display"
    assert not info.nodes_complete and not ready(info) and not info.is_trusted(CLIENT.fingerprint)
    assert any(p.startswith("nodes: entry 0: endpoint is not") for p in info.problems), info.problems
    assert info.not_ready_reason([CLIENT.fingerprint]) == "the provider's node list could not be read"


@pytest.mark.parametrize(
    "entry",
    [
        "node1",
        None,
        [N1],
        {"endpoint": N1},
        {"endpoint": N1, "name": ""},
        {"endpoint": N1, "name": 3},
        {"endpoint": N1, "name": "n\x00"},
        {"endpoint": N1, "name": "n" * 256},
        {"name": "n"},
        {"name": "n", "endpoint": 8443},
        {"name": "n", "endpoint": N1, "trusted_certs_fp": "SECRET-ISH"},
        {"name": "n", "endpoint": N1, "trusted_certs_fp": {"fp": CLIENT.fingerprint}},
    ],
)
def test_found_7_a_malformed_node_entry_is_named_and_every_node_is_not_judged_on_the_rest(entry: Any) -> None:
    info = parse({**provider(), "nodes": json.dumps([node(), entry])})
    assert not info.nodes_complete and not ready(info) and not info.is_trusted(CLIENT.fingerprint)
    assert any(p.startswith("nodes: entry 1:") for p in info.problems), info.problems
    assert not any("SECRET" in p for p in info.problems)


def test_malformed_fingerprints_are_named_but_do_not_hide_ours() -> None:
    fps = [CLIENT.fingerprint, "SECRET-ISH", 5, None, "ab" * 100, CLIENT.fingerprint.upper()]
    info = parse({**provider(), "nodes": json.dumps([node(fps=fps)])})
    assert info.nodes_complete and ready(info)
    assert info.problems == ("nodes: entry 0: 4 trusted_certs_fp entries are not SHA-256 fingerprints",)
    # Colons and capitals (an older writer's habit) still read.
    colons = ":".join(CLIENT.fingerprint[i : i + 2].upper() for i in range(0, 64, 2))
    assert ready(parse({**provider(), "nodes": json.dumps([node(fps=[colons])])}))


@pytest.mark.parametrize(
    "nodes, problem",
    [
        ("{oops", "nodes: not JSON"),
        (json.dumps({"endpoint": N1}), "nodes: not a list"),
        (json.dumps([node(name=f"n{i}") for i in range(LIMITS["nodes"] + 1)]), "nodes: more than 1000 entries"),
        (json.dumps([node(fps=[0] * 100_001), node(fps=[0] * 100_000)]), "nodes: more than 200000 trusted_certs_fp entries in all"),
    ],
)
def test_an_unreadable_node_list_is_not_ready(nodes: str, problem: str) -> None:
    info = parse({**provider(), "nodes": nodes})
    assert problem in info.problems and not info.nodes_complete and not ready(info)


def test_no_nodes_yet_is_not_ready_without_a_problem() -> None:
    for bag in ({**provider(), "nodes": "[]"}, {k: v for k, v in provider().items() if k != "nodes"}):
        info = parse(bag)
        assert info.problems == () and info.nodes_complete and not ready(info)
        assert info.not_ready_reason([CLIENT.fingerprint]) == "no LXD node is online"


def test_problems_are_bounded_per_key() -> None:
    info = parse({**provider(), "nodes": json.dumps(["x"] * 50)})
    assert len(info.problems) == LIMITS["problems_per_key"] + 1
    assert info.problems[-1] == "nodes: 45 more problems"


# --- refused ------------------------------------------------------------------------------


def refused(*entries: Any) -> str:
    return json.dumps(list(entries))


def test_refused_maps_fingerprints_to_reason_codes_unknown_codes_kept() -> None:
    fp1, fp2, fp3 = CLIENT.fingerprint, OTHER.fingerprint, SERVER.fingerprint
    info = parse(
        {
            **provider(fps=[[], []]),
            "refused": refused(
                {"fingerprint": fp1, "reason": "expired"},
                {"fingerprint": fp2, "reason": "a-code-from-the-future-2"},
                {"fingerprint": fp3, "reason": "reserved", "detail": "extra fields are ignored"},
            ),
        }
    )
    assert dict(info.refused) == {fp1: "expired", fp2: "a-code-from-the-future-2", fp3: "reserved"}
    assert info.problems == ()
    assert info.not_ready_reason([fp1]) == f"certificate {fp1[:12]} refused by the provider: {REFUSAL_REASONS['expired']}"
    assert info.not_ready_reason([fp2]) == f"certificate {fp2[:12]} refused by the provider: a-code-from-the-future-2"


MALFORMED_REFUSALS: List[Any] = [
    "SECRET-ISH",
    {"fingerprint": CLIENT.fingerprint},
    {"reason": "expired"},
    {"fingerprint": CLIENT.fingerprint.upper(), "reason": "expired"},
    {"fingerprint": CLIENT.fingerprint[:63], "reason": "expired"},
    {"fingerprint": CLIENT.fingerprint, "reason": "Expired"},
    {"fingerprint": CLIENT.fingerprint, "reason": "expired because SECRET"},
    {"fingerprint": CLIENT.fingerprint, "reason": "x" * 65},
    {"fingerprint": CLIENT.fingerprint, "reason": ""},
    {"fingerprint": CLIENT.fingerprint, "reason": 7},
    [CLIENT.fingerprint, "expired"],
]


def test_malformed_refusals_are_one_problem_and_the_well_formed_ones_kept() -> None:
    good = {"fingerprint": OTHER.fingerprint, "reason": "not-yet-valid"}
    info = parse({**provider(), "refused": refused(*MALFORMED_REFUSALS, good)})
    assert dict(info.refused) == {OTHER.fingerprint: "not-yet-valid"}
    assert info.problems == (f"refused: {len(MALFORMED_REFUSALS)} entries are not {{fingerprint, reason}} with a SHA-256 fingerprint and a reason code",)
    assert ready(info), "what is refused explains, it does not decide: CLIENT is trusted"


@pytest.mark.parametrize("value, problem", [("{", "refused: not JSON"), ('{"a": 1}', "refused: not a list")])
def test_an_unreadable_refused_is_a_problem(value: str, problem: str) -> None:
    info = parse({**provider(), "refused": value})
    assert problem in info.problems and dict(info.refused) == {}


def test_more_refusals_than_the_cap_keep_the_first() -> None:
    entries = [{"fingerprint": f"{i:064x}", "reason": "too-many"} for i in range(LIMITS["refused"] + 5)]
    info = parse({**provider(), "refused": json.dumps(entries)})
    assert len(info.refused) == LIMITS["refused"] and "refused: more than 1000 entries: the first 1000 read" in info.problems


def test_a_trusted_certificate_is_ready_even_if_also_named_refused() -> None:
    info = parse({**provider(), "refused": refused({"fingerprint": CLIENT.fingerprint, "reason": "held-by-another-application"})})
    assert ready(info)


# --- registered_certificates --------------------------------------------------------------


def test_registered_certificates_are_read_as_fingerprints() -> None:
    crlf = CLIENT.cert_pem.replace("\n", "\r\n")
    info = parse({**provider(), "registered_certificates": json.dumps([crlf, OTHER.cert_pem])})
    assert info.registered_fingerprints == {CLIENT.fingerprint, OTHER.fingerprint} and info.problems == ()


def test_malformed_registered_certificates_are_counted_never_echoed() -> None:
    value = json.dumps([CLIENT.cert_pem, "SECRET-ISH", 5, CLIENT.cert_pem + OTHER.cert_pem, CLIENT.key_pem])
    info = parse({**provider(), "registered_certificates": value})
    assert info.registered_fingerprints == {CLIENT.fingerprint}
    assert info.problems == ("registered_certificates: 4 entries are not one PEM X.509 certificate",)
    for bad, problem in (("[", "not JSON"), ('"x"', "not a list")):
        info = parse({**provider(), "registered_certificates": bad})
        assert f"registered_certificates: {problem}" in info.problems and ready(info)
