#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (run once; the output is committed).

Needs python3-cryptography. Certificates are valid at the fuzz targets' fixed clock
(2030-01-01) unless the seed is about dates. Keys here are throwaway test material.
"""
import datetime as dt
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
UTC = dt.timezone.utc


def cert(cn, key=None, ca=False, start=dt.datetime(2025, 1, 1, tzinfo=UTC), days=36500, issuer=None):
    key = key or ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_name, signer_key = issuer if issuer else (name, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    algo = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    c = b.sign(signer_key, algo)
    return c, key


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM).decode()


def der(c):
    return c.public_bytes(serialization.Encoding.DER)


def key_pem(k, fmt=serialization.PrivateFormat.PKCS8):
    return k.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    leaf, leaf_key = cert("req-0")
    leaf2, _ = cert("req-1")
    leaf3, _ = cert("req-app")
    ca, ca_key = cert("Operator CA", ca=True)
    expired, _ = cert("old", start=dt.datetime(2000, 1, 1, tzinfo=UTC), days=365)
    future, _ = cert("new", start=dt.datetime(2090, 1, 1, tzinfo=UTC), days=365)
    rsa1024, _ = cert("weak", key=rsa.generate_private_key(65537, 1024))
    rsa2048, rsa_key = cert("rsa", key=rsa.generate_private_key(65537, 2048))
    edc, _ = cert("ed", key=ed25519.Ed25519PrivateKey.generate())
    server, server_key = cert("root@lxd")
    signed_leaf, _ = cert("root@node1", issuer=(ca.subject, ca_key))

    # pem: one value as a requirer sends it.
    for name, text in {
        "leaf": pem(leaf),
        "leaf_crlf": "\r\n  " + pem(leaf).replace("\n", "\r\n") + "\n",
        "two_certs": pem(leaf) + pem(leaf2),
        "cert_and_key": pem(leaf) + key_pem(leaf_key),
        "key_only": key_pem(leaf_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "ca": pem(ca),
        "expired": pem(expired),
        "future": pem(future),
        "rsa1024": pem(rsa1024),
        "rsa2048": pem(rsa2048),
        "ed25519": pem(edc),
        "trailing": pem(leaf) + "trailing words\n",
        "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "bad_base64": "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    }.items():
        write("pem", name, text)

    # der: raw certificate bytes.
    for name, c in {"leaf": leaf, "ca": ca, "expired": expired, "rsa1024": rsa1024, "rsa2048": rsa2048, "ed25519": edc}.items():
        write("der", name, der(c))

    # relation_payload: flag byte, then NUL-separated values for req/0, req/1, req (app), other/0.
    def payload(flags, *values):
        return bytes([flags]) + b"\0".join(v if isinstance(v, bytes) else v.encode() for v in values)

    lst = lambda *xs: json.dumps(list(xs))
    write("relation_payload", "valid", payload(0, lst(pem(leaf)), lst(pem(leaf2), pem(leaf2)), lst(pem(leaf3)), lst(pem(leaf))))
    write("relation_payload", "shared", payload(3, lst(pem(leaf), pem(rsa2048))))
    write("relation_payload", "mixed", payload(
        0, json.dumps(["nope", 42, pem(leaf), key_pem(leaf_key)]), "this is not json", '{"a": 1}', "null"))
    write("relation_payload", "rejects", payload(
        2, lst(pem(leaf) + "x", pem(ca), pem(expired), pem(future), pem(rsa1024), pem(edc), pem(leaf) + pem(leaf2)), "[]", "42", "[1, 2]"))
    write("relation_payload", "non_utf8", payload(0, b'["\xff\xfe' + pem(leaf).encode() + b'"]', lst(pem(leaf2) + "\x07\x1b")))

    # credentials: mode byte, credential-get stdout, NUL, config-get stdout.
    def spec(endpoint="https://10.0.0.1:8443", kind="lxd", auth="certificate", attrs=None):
        attrs = attrs if attrs is not None else {
            "client-cert": pem(leaf), "client-key": key_pem(leaf_key, serialization.PrivateFormat.TraditionalOpenSSL),
            "server-cert": pem(server)}
        s = {"type": kind, "name": "localhost", "region": "localhost", "credential": {"auth-type": auth, "attrs": attrs},
             "is-controller-cloud": True}
        if endpoint is not None:
            s["endpoint"] = endpoint
        return json.dumps(s)

    full = json.dumps({"lxd_endpoint": "10.0.0.9:9443", "lxd_client_cert": pem(leaf2), "lxd_client_key": key_pem(leaf_key),
                       "lxd_server_cert": pem(server), "trust-projects": "default"})
    with_secret = json.dumps(dict(json.loads(full), **{"lxd-credentials-secret": "secret:cn3q8gvmp25c7bt7nqkg"}))
    for name, (mode, cred, conf) in {
        "trusted": (0, spec(), "{}"),
        "trusted_and_config": (0, spec(), full),
        "not_trusted_config": (1, "", full),
        "unsupported_partial": (2, "", json.dumps({"lxd_endpoint": "x", "lxd_client_key": " "})),
        "ec2_fallback": (0, spec(kind="ec2", auth="access-key", attrs={}), full),
        "no_endpoint": (0, spec(endpoint=""), json.dumps({"lxd_endpoint": "[fd00::1]"})),
        "bad_endpoint": (1, "", full.replace("10.0.0.9:9443", "ftp://x")),
        "other_failure": (3, "ERROR something else", "null"),
        # Mode / 4 picks secret-get's answer; its content is the credential-get stdout.
        "secret": (1, json.dumps({"endpoint": "10.0.0.7", "client-cert": pem(leaf), "client-key": key_pem(leaf_key),
                                  "server-cert": pem(server)}), with_secret),
        "secret_incomplete": (1, json.dumps({"endpoint": "10.0.0.7", "client-cert": pem(leaf)}), with_secret),
        "secret_not_granted": (1 + 4, "", with_secret),
        "secret_unsupported": (1 + 8, "", with_secret),
        "secret_not_found": (1 + 12, "", with_secret),
        "secret_malformed": (1, "", json.dumps({"lxd-credentials-secret": "my-creds"})),
    }.items():
        write("credentials", name, bytes([mode]) + cred.encode() + b"\0" + conf.encode())

    # tls_config: pinned server PEM, client cert PEM, client key PEM, presented DER.
    def tls(*parts):
        return b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)

    other_key = ec.generate_private_key(ec.SECP384R1())
    write("tls_config", "pin_match", tls(pem(server), pem(leaf), key_pem(leaf_key), der(server)))
    write("tls_config", "pin_mismatch", tls(pem(server), pem(leaf), key_pem(leaf_key, serialization.PrivateFormat.TraditionalOpenSSL), der(leaf2)))
    write("tls_config", "key_mismatch", tls(pem(server), pem(leaf), key_pem(other_key), der(server)))
    write("tls_config", "ca_mode", tls(pem(ca), pem(rsa2048), key_pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL), der(signed_leaf)))
    write("tls_config", "expired_pin", tls(pem(expired), pem(leaf), key_pem(leaf_key), der(expired)))

    for i, e in enumerate(["10.0.0.1", "https://[::1]:8443/", "lxd.example.com:9443", "fd00::2", "HTTPS://Host:1/1.0",
                           "unix:///var/lib/lxd/unix.socket", "user@host", "https://10.0.0.1:99999", "[fe80::1%eth0]:8443"]):
        write("endpoint", f"e{i}", e)

    for i, p in enumerate(["a, b,a,,c ", "default", " , ", "p1,p2"]):
        write("projects", f"p{i}", p)

    for i, h in enumerate(['["api:0","api:3"]', '{"trust-projects":"a","lxd_endpoint":"x"}', "true", '"req"',
                           json.dumps({"client_certificates": lst(pem(leaf)), "private-address": "10.0.0.2", "n": 1}), "null"]):
        write("hook_output", f"h{i}", h)

    # https_request: flag byte, then NUL-separated projects, trust-projects, certificate, version.
    write("https_request", "gateway_within", payload(0, "sandboxes, default", "default,sandboxes", pem(leaf), "1.0"))
    write("https_request", "outside_and_junk", payload(2, "prod,has space," + key_pem(leaf_key), "default", pem(leaf2), "1.0"))
    write("https_request", "old_lxd", payload(1, "sandboxes", "", pem(leaf), "1.0"))
    write("https_request", "wrong_version", payload(0, "", "", pem(leaf3), "2.0"))

    # Structured (arbitrary) targets: a few byte strings to start from.
    write("trust_name", "t0", b"\x24\x00\x00\x000f6d3b1a-1c2b-4f5e-8a9b-123456789abc\x0e\x00\x00\x00lxd-integrator\x07\x00\x00\x00\x03req\x01\x00\x00\x00juju.x")
    write("plan_store", "s0", bytes(range(64)))
    lxd_answer_seeds()


def lxd_answer_seeds():
    """lxd_answer: a 2-byte status (100 + n % 500; 100 is 200), then the body. The members and
    servers a real cluster sends, and the values `lxd::checked` skips or replaces. Writes only
    these files: `python3 -c 'import make_seeds; make_seeds.lxd_answer_seeds()'` from fuzz/."""
    def sync(metadata):
        return b"\x00\x64" + json.dumps({"type": "sync", "status": "Success", "status_code": 200,
                                          "metadata": metadata}).encode()

    def member(name, url="https://10.0.0.1:8443", status="Online", message="Fully operational"):
        return {"server_name": name, "url": url, "status": status, "message": message,
                "roles": ["database"], "architecture": "x86_64", "failure_domain": "default"}

    def server(name, version, kind="lxd"):
        return {"auth": "trusted", "api_extensions": ["clustering"],
                "environment": {"server": kind, "server_name": name, "server_version": version,
                                "server_clustered": True, "addresses": ["10.0.0.1:8443", "[fd42::1]:8443"]}}

    write("lxd_answer", "members_real", sync([
        member("node1"), member("lxd-2.maas", "https://[fd42:1::2]:8443", "Evacuated"),
        member("micro3", "https://micro3.example.com:8443", "Offline", "No heartbeat for 41s"),
        member("incus-4", "https://10.0.0.4:8443", "Evacuating")]))
    write("lxd_answer", "members_bad", sync([
        member("node1"), member("evil\n\u001b[31m"), member(""), member("a/b"), member("x" * 300),
        member("node1", "https://10.0.0.9:8443"), member("u", "http://10.0.0.1:8443"),
        member("v", "https://10.0.0.1:8443/" + "p" * 300), member("w", status="On line"),
        member("z", message="line\nbreak\u202e")]))
    write("lxd_answer", "server_real", sync(server("node1", "5.21.3")))
    write("lxd_answer", "server_incus", sync(server("incus1", "6.0.4", "incus")))
    write("lxd_answer", "server_bad", sync(server("bad\u0007name", "5.0\n--help " + "9" * 40, "lxd\u001b[0m")))


if __name__ == "__main__":
    sys.exit(main())
