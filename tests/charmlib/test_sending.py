"""What the requirer sends: `set_client_certificates` takes exactly one X.509 certificate per
entry, says what is wrong with anything else (never echoing it), and publishes canonical PEM."""

from __future__ import annotations

import base64
from typing import Dict, Tuple

import pytest
from certs import csr_pem, der, make, pem_of, public_key_pem
from charms.lxd_integrator.v0.lxd import LIMITS, fingerprint
from helpers import CLIENT, OTHER, Charm, client_certs, provider, relation, run
from ops import testing

CLIENT_DER = der(CLIENT)
BODY_LINE = CLIENT.cert_pem.splitlines()[1]

# name -> (text, what the ValueError must say)
NOT_ONE: Dict[str, Tuple[str, str]] = {
    "truncated certificate (DER cut short)": (pem_of(CLIENT_DER[:-10]), "not an X.509 certificate"),
    "truncated certificate (a base64 line dropped)": (
        "\n".join(line for i, line in enumerate(CLIENT.cert_pem.splitlines()) if i != 3) + "\n",
        "not an X.509 certificate",
    ),
    "DER with a byte after it": (pem_of(CLIENT_DER + b"\x00"), "bytes after the certificate"),
    "DER that is not X.509: a private key": (
        pem_of(base64.b64decode("".join(CLIENT.key_pem.splitlines()[1:-1]))),
        "not an X.509 certificate",
    ),
    "DER that is not X.509: a SEQUENCE of integers": (pem_of(bytes.fromhex("3006020101020102")), "not an X.509 certificate"),
    "DER that is not X.509: a CSR under CERTIFICATE armour": (
        pem_of(base64.b64decode("".join(csr_pem(CLIENT).splitlines()[1:-1]))),
        "not an X.509 certificate",
    ),
    "BER indefinite length": (pem_of(b"\x30\x80" + CLIENT_DER[4:] + b"\x00\x00"), "indefinite length"),
    "a bundle of two": (CLIENT.cert_pem + OTHER.cert_pem, "a bundle of 2 certificates"),
    "a bundle of two without a newline between": (CLIENT.cert_pem.strip() + OTHER.cert_pem, "a bundle of 2 certificates"),
    "certificate and its key": (CLIENT.cert_pem + CLIENT.key_pem, "a private key, not a certificate"),
    "a private key": (CLIENT.key_pem, "a private key, not a certificate"),
    "a public key": (public_key_pem(CLIENT), "a public key, not a certificate"),
    "a certificate request": (csr_pem(CLIENT), "a certificate signing request"),
    "text before the block": ("subject=CN = requirer-0\n" + CLIENT.cert_pem, "text outside the CERTIFICATE block"),
    "text after the block": (CLIENT.cert_pem + "SECRET", "text outside the CERTIFICATE block"),
    "not PEM": ("SECRET-ISH not a pem", "not PEM: no -----BEGIN line"),
    "empty": ("", "not PEM: no -----BEGIN line"),
    "base64 body only": (BODY_LINE, "not PEM: no -----BEGIN line"),
    "body not base64": ("-----BEGIN CERTIFICATE-----\nSECRET!!\n-----END CERTIFICATE-----\n", "not base64"),
    "no END line": ("-----BEGIN CERTIFICATE-----\n" + BODY_LINE + "\n", "without its END line"),
    "END of another label": (CLIENT.cert_pem.replace("END CERTIFICATE", "END X509 CRL"), "without its END line"),
    "non-ASCII": (CLIENT.cert_pem + "é", "not ASCII"),
    "too long": (" " * (LIMITS["client_certificate_chars"] + 1), "longer than"),
}
NOT_ONE_CERTIFICATE = {name: text for name, (text, _) in NOT_ONE.items()}


@pytest.mark.parametrize("what", sorted(NOT_ONE))
def test_what_is_not_one_certificate_raises_value_error_saying_what_and_nothing_is_sent(what: str) -> None:
    text, says = NOT_ONE[what]
    rel = relation()

    def attempt(charm: Charm) -> str:
        with pytest.raises(ValueError) as e:
            charm.lxd.set_client_certificates([CLIENT.cert_pem, text])
        return str(e.value)

    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), attempt)
    message: str = r.result
    assert message.startswith("client certificate 2 of 2: ") and says in message, message
    assert "SECRET" not in message and BODY_LINE not in message, "never the value"
    assert client_certs(r.out) is None, "nothing published"
    with pytest.raises(ValueError):
        fingerprint(text)


def test_one_string_instead_of_a_list_is_refused_with_a_clear_error() -> None:
    def attempt(charm: Charm) -> str:
        with pytest.raises(ValueError, match="pass a list of PEM certificates"):
            charm.lxd.set_client_certificates(CLIENT.cert_pem)
        return "ok"

    assert run(lambda ctx: ctx.on.update_status(), testing.State(), attempt).result == "ok"


def test_more_certificates_than_the_provider_takes_are_refused() -> None:
    def attempt(charm: Charm) -> str:
        with pytest.raises(ValueError, match="at most 1000"):
            charm.lxd.set_client_certificates([CLIENT.cert_pem] * (LIMITS["client_certificates"] + 1))
        return "ok"

    assert run(lambda ctx: ctx.on.update_status(), testing.State(), attempt).result == "ok"


@pytest.mark.parametrize("key_type", ["ec384", "ec256", "rsa2048", "ed25519"])
def test_certificates_of_every_key_type_are_taken(key_type: str) -> None:
    identity = make("requirer", server=False, key_type=key_type)
    assert fingerprint(identity.cert_pem) == identity.fingerprint


def test_issued_and_ca_certificates_are_taken() -> None:
    ca = make("ca", ca=True)
    for identity in (ca, make("leaf", issuer=ca), make("leaf", issuer=ca, key_ids=False)):
        assert fingerprint(identity.cert_pem) == identity.fingerprint


def test_what_is_published_is_canonical_pem_once_per_certificate() -> None:
    b64 = "".join(CLIENT.cert_pem.splitlines()[1:-1])
    sloppy = [
        "\r\n".join(CLIENT.cert_pem.splitlines()),  # CRLF, no final newline
        "  \n" + "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n-----END CERTIFICATE-----",
        CLIENT.cert_pem,
        OTHER.cert_pem.replace("\n", "\n\t"),
    ]
    rel = relation()
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), lambda c: c.lxd.set_client_certificates(sloppy))
    assert client_certs(r.out) == [CLIENT.cert_pem, OTHER.cert_pem]
    assert r.charm.lxd.client_fingerprints == {CLIENT.fingerprint, OTHER.fingerprint}


def test_an_expired_or_not_yet_valid_certificate_is_sent_with_a_warning() -> None:
    # The provider's clock judges (and names the refusal); the library only warns.
    for identity, word in ((make("old", server=False, expired=True), "expired"), (make("new", server=False, not_yet_valid=True), "not yet valid")):
        rel = relation()
        r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel]), lambda c: c.lxd.set_client_certificates([identity.cert_pem]))
        assert client_certs(r.out) == [identity.cert_pem]
        assert any(word in line and identity.fingerprint[:12] in line for line in r.logs), r.logs


def test_certificates_stored_by_libpatch_1_that_are_not_certificates_never_make_ready() -> None:
    # LIBPATCH 1 stored whatever had a base64 body; such state must not crash a hook.
    garbage = "-----BEGIN CERTIFICATE-----\nU0VDUkVU\n-----END CERTIFICATE-----\n"
    rel = relation(units={0: provider()})
    stored = testing.StoredState(
        "_stored", owner_path="Charm/LxdRequirer[lxd]", content={"certificates": [CLIENT.cert_pem, garbage], "app": False, "seen": {}}
    )
    r = run(lambda ctx: ctx.on.update_status(), testing.State(relations=[rel], stored_states=[stored]))
    assert not r.charm.lxd.is_ready()
    assert r.charm.lxd.client_fingerprints == {CLIENT.fingerprint}
    assert r.charm.lxd.not_ready_reason() == "1 stored client certificates are not certificates: set them again"
    assert client_certs(r.out) == [CLIENT.cert_pem, garbage], "what the charm set is left as it was until it sets again"
