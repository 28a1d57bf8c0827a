"""The library's X.509 check (a DER walk in pure Python, so that the library needs only ops and
the standard library) and its PEM scanner: real certificates pass, every damaged one fails
with ValueError, and nothing else is ever raised."""

from __future__ import annotations

import time
from typing import List

import pytest
from certs import der, make, pem_of
from charms.lxd_integrator.v0 import lxd
from hypothesis import given, settings
from hypothesis import strategies as st

IDENTITIES = [make("a", key_type=k) for k in ("ec384", "ec256", "rsa2048", "ed25519")] + [make("ca", ca=True)]
DERS = [der(i) for i in IDENTITIES]


def test_real_certificates_pass_with_their_fingerprint_and_dates() -> None:
    for identity, raw in zip(IDENTITIES, DERS):
        cert = lxd._x509(raw)
        assert cert.fingerprint == identity.fingerprint
        assert cert.not_before == identity.cert.not_valid_before_utc.replace(microsecond=0)
        assert cert.not_after == identity.cert.not_valid_after_utc.replace(microsecond=0)


def test_every_truncation_of_a_certificate_is_refused() -> None:
    raw = DERS[0]
    for n in range(len(raw)):
        with pytest.raises(ValueError):
            lxd._x509(raw[:n])


def test_trailing_bytes_non_minimal_and_indefinite_lengths_are_refused() -> None:
    raw = DERS[2]  # RSA: long-form lengths
    assert raw[1] == 0x82
    with pytest.raises(ValueError, match="bytes after the certificate"):
        lxd._x509(raw + b"\x00")
    # The same length in three bytes instead of two.
    with pytest.raises(ValueError, match="shortest form"):
        lxd._x509(b"\x30\x83\x00" + raw[2:])
    with pytest.raises(ValueError, match="indefinite"):
        lxd._x509(b"\x30\x80" + raw[4:] + b"\x00\x00")
    with pytest.raises(ValueError, match="multi-byte tag"):
        lxd._x509(b"\x1f\x81\x01\x00")


def test_every_single_byte_change_is_refused_or_still_a_certificate() -> None:
    """Flipping any one byte never raises anything but ValueError; when the structure still
    holds (a byte inside a name or a key) it parses to another fingerprint."""
    raw = DERS[1]
    for i in range(len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1 :]
            try:
                assert lxd._x509(damaged).fingerprint != IDENTITIES[1].fingerprint
            except ValueError:
                pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_value_error(raw: bytes) -> None:
    try:
        lxd._x509(raw)
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DERS), st.integers(0, 2000), st.binary(min_size=1, max_size=8), st.booleans())
def test_spliced_certificates_raise_only_value_error(raw: bytes, at: int, junk: bytes, replace: bool) -> None:
    at %= len(raw)
    damaged = raw[:at] + junk + raw[at + (len(junk) if replace else 0) :]
    try:
        lxd._x509(damaged)
    except ValueError:
        pass


def test_a_certificate_larger_than_the_cap_is_refused_before_it_is_walked() -> None:
    huge = b"\x30\x84" + (1 << 20).to_bytes(4, "big") + b"\x00" * (1 << 20)
    with pytest.raises(ValueError, match="larger than"):
        lxd._x509(huge)


# --- PEM ---------------------------------------------------------------------------------


def test_pem_blocks_are_found_with_their_labels_and_text_outside_noted() -> None:
    text = "intro\n" + IDENTITIES[0].cert_pem + IDENTITIES[0].key_pem + "outro"
    blocks, outside = lxd._pem_blocks(text)
    assert [label for label, _ in blocks] == ["CERTIFICATE", "PRIVATE KEY"] and outside
    assert blocks[0][1] == DERS[0]
    blocks, outside = lxd._pem_blocks("\n  " + IDENTITIES[0].cert_pem + "\r\n" + IDENTITIES[1].cert_pem + "\t")
    assert [b for _, b in blocks] == DERS[:2] and not outside


@pytest.mark.parametrize(
    "text, fault",
    [
        ("-----BEGIN CERTIFICATE-----\nAAAA\n", "without its END line"),
        ("-----BEGIN CERTIFICATE\nAAAA\n-----END CERTIFICATE-----", "malformed PEM BEGIN line"),
        ("-----BEGIN certificate-----\nAAAA\n-----END certificate-----", "malformed PEM BEGIN line"),
        ("-----BEGIN " + "A" * 65 + "-----\n-----END " + "A" * 65 + "-----", "malformed PEM BEGIN line"),
        ("-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "armour line inside"),
        ("-----BEGIN CERTIFICATE-----\nAA!A\n-----END CERTIFICATE-----", "not base64"),
        ("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----", "not base64"),
        ("-----BEGIN CERTIFICATE-----\nÀAAA\n-----END CERTIFICATE-----", "not base64"),
        ("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----", "not base64"),
    ],
)
def test_broken_pem_is_refused_saying_what(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        lxd._pem_blocks(text)


def test_too_many_blocks_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1000 PEM blocks"):
        lxd._pem_blocks(pem_of(b"\x00\x00\x00") * 1001)


@pytest.mark.parametrize("size", [1 << 20, 16 << 20])
def test_the_scanner_is_linear_on_what_made_the_old_expression_backtrack(size: int) -> None:
    begin = "-----BEGIN CERTIFICATE-----\n"
    for text in (
        (begin * (size // len(begin)))[:size],
        begin + " " * size,
        begin + " " * size + "-----END CERTIFICATE-----",
        begin + "\n" * size + "A" + "-----END CERTIFICATE-----",
        ("-----BEGIN " * (size // 11))[:size],
        ("-----" * (size // 5))[:size],
        " " * size,
    ):
        start = time.perf_counter()
        try:
            lxd._pem_blocks(text)
        except ValueError:
            pass
        assert time.perf_counter() - start < 1.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["-----BEGIN ", "CERTIFICATE", "-----", "-----END ", "\n", " ", "\r\n", "MIIB", "=", "é", "PRIVATE KEY"]),
            st.text(max_size=20),
        ),
        max_size=60,
    )
)
def test_any_text_scans_or_raises_value_error(parts: List[str]) -> None:
    try:
        blocks, _ = lxd._pem_blocks("".join(parts))
    except ValueError:
        return
    for label, _ in blocks:
        assert lxd._PEM_LABEL.fullmatch(label)
