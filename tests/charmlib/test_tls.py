"""`pinned_context` against a real local TLS server (Python's ssl module, certificates made with
`cryptography`): the handshake must succeed exactly when the server presents the pinned
certificate, or one that chains to a pinned CA."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
import time
from typing import Iterator, List, Optional, Tuple

import pytest
from certs import Identity, make
from cryptography.hazmat.primitives.serialization import Encoding
from charms.lxd_integrator.v0.lxd import pinned_context

Address = Tuple[str, int]


class Server:
    """One TLS server on 127.0.0.1 presenting `identity` (plus `chain`), requiring a client
    certificate; records the client certificate and the bytes it received per connection, and
    answers `reply`."""

    def __init__(self, identity: Identity, client: Identity, chain: Optional[Identity] = None, reply: bytes = b"pong"):
        self.reply = reply
        self.seen: List[Tuple[Optional[bytes], bytes]] = []
        self._dir = tempfile.TemporaryDirectory()
        cert_path = os.path.join(self._dir.name, "cert.pem")
        key_path = os.path.join(self._dir.name, "key.pem")
        with open(cert_path, "w") as f:
            f.write(identity.cert_pem + (chain.cert_pem if chain else ""))
        with open(key_path, "w") as f:
            f.write(identity.key_pem)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_path, key_path)
        # Like LXD: ask for a client certificate; ours is self-signed, so trust it directly.
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._context.load_verify_locations(cadata=client.cert_pem)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: Address = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.settimeout(5)
            try:
                with self._context.wrap_socket(sock, server_side=True) as tls:
                    data = tls.recv(1024)
                    self.seen.append((tls.getpeercert(binary_form=True), data))
                    tls.sendall(self.reply)
            except (ssl.SSLError, OSError):
                self.seen.append((None, b""))

    def wait(self, connections: int) -> List[Tuple[Optional[bytes], bytes]]:
        """What it saw, once `connections` have ended (up to 5 s)."""
        deadline = time.monotonic() + 5
        while len(self.seen) < connections and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.seen

    def close(self) -> None:
        self._listener.close()
        self._dir.cleanup()


def talk(context: ssl.SSLContext, address: Address, server_hostname: str = "127.0.0.1") -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=server_hostname) as tls:
            tls.sendall(b"ping")
            return tls.recv(16)


@pytest.fixture(scope="module")
def client() -> Identity:
    return make("requirer", server=False)


@pytest.fixture(scope="module")
def lxd() -> Identity:
    return make("root@vm")


@pytest.fixture
def serve() -> Iterator[List[Server]]:
    servers: List[Server] = []
    yield servers
    for server in servers:
        server.close()


def start(servers: List[Server], identity: Identity, client: Identity, chain: Optional[Identity] = None) -> Server:
    server = Server(identity, client, chain)
    servers.append(server)
    return server


def test_the_pinned_self_signed_certificate_is_accepted_whatever_the_name(serve: List[Server], lxd: Identity, client: Identity) -> None:
    server = start(serve, lxd, client)
    context = pinned_context(lxd.cert_pem, client.cert_pem, client.key_pem)
    # LXD's certificate names `vm`; the address dialled never matches, nor need it.
    for name in ("127.0.0.1", "lxd.example.com"):
        assert talk(context, server.address, name) == b"pong"
    peer, data = server.seen[0]
    assert data == b"ping"
    assert peer == client.cert.public_bytes(Encoding.DER), "the server saw our client certificate"


def test_another_certificate_with_the_same_name_is_refused_before_any_byte(serve: List[Server], lxd: Identity, client: Identity) -> None:
    impostor = start(serve, make("root@vm"), client)
    context = pinned_context(lxd.cert_pem, client.cert_pem, client.key_pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(context, impostor.address)
    assert impostor.wait(1) == [(None, b"")], "the server got no handshake and no byte"


def test_the_pinned_certificate_expired_is_refused(serve: List[Server], client: Identity) -> None:
    expired = make("root@vm", expired=True)
    server = start(serve, expired, client)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        talk(pinned_context(expired.cert_pem, client.cert_pem, client.key_pem), server.address)


def test_pki_mode_a_pinned_ca_accepts_its_servers_and_no_other(serve: List[Server], client: Identity) -> None:
    ca, other_ca = make("lxd-ca", ca=True), make("other-ca", ca=True)
    good = start(serve, make("root@node1", issuer=ca), client)
    bad = start(serve, make("root@node1", issuer=other_ca), client)
    context = pinned_context(ca.cert_pem, client.cert_pem, client.key_pem)
    assert talk(context, good.address) == b"pong"
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(context, bad.address)


def test_pki_mode_without_key_identifiers_is_accepted(serve: List[Server], client: Identity) -> None:
    # What VERIFY_X509_STRICT (Python >= 3.13's default contexts) would refuse.
    ca = make("lxd-ca", ca=True)
    server = start(serve, make("root@node1", issuer=ca, key_ids=False), client)
    context = pinned_context(ca.cert_pem, client.cert_pem, client.key_pem)
    assert not context.verify_flags & ssl.VERIFY_X509_STRICT
    assert talk(context, server.address) == b"pong"


def test_a_pinned_certificate_that_is_not_self_signed_is_its_own_anchor(serve: List[Server], client: Identity) -> None:
    # A PKI-mode server certificate pinned directly, its CA not given: a partial chain.
    leaf = make("root@node1", issuer=make("lxd-ca", ca=True))
    server = start(serve, leaf, client)
    assert talk(pinned_context(leaf.cert_pem, client.cert_pem, client.key_pem), server.address) == b"pong"


def test_a_bundle_accepts_each_of_its_certificates(serve: List[Server], lxd: Identity, client: Identity) -> None:
    rotated = make("root@vm")
    context = pinned_context(lxd.cert_pem + rotated.cert_pem, client.cert_pem, client.key_pem)
    for identity in (lxd, rotated):
        assert talk(context, start(serve, identity, client).address) == b"pong"


def test_a_key_that_is_not_the_certificates_is_refused_and_nothing_stays_on_disk(
    lxd: Identity, client: Identity, monkeypatch: pytest.MonkeyPatch, tmp_path: "os.PathLike[str]"
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ssl.SSLError):
        pinned_context(lxd.cert_pem, client.cert_pem, make("other", server=False).key_pem)
    pinned_context(lxd.cert_pem, client.cert_pem, client.key_pem)
    assert os.listdir(tmp_path) == [], "the key files are removed once loaded"
