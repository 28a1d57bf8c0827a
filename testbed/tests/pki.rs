//! Real 3-member LXD and Incus clusters in PKI mode (`LxdCluster::start_pki_kind`): what every
//! member presents, which issuer it asks clients for, and whom it trusts, seen by OpenSSL
//! clients (`openssl s_client`, `curl`) that verify the chain up to the CA as a PKI client would.

use std::path::{Path, PathBuf};
use std::process::Command;

use testbed::certs::{self, Pem};
use testbed::{LxdCluster, ServerKind};

/// A directory for one test's PEM files, removed on drop.
struct Files(PathBuf);

impl Files {
    fn new(kind: ServerKind) -> Files {
        let dir = std::env::temp_dir().join(format!("testbed-pki-{}-{kind}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Files(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("writing a PEM file");
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET /1.0` at `endpoint` as `who`, trusting only `ca`, with host name checks (the cluster
/// certificate names every member's address): LXD's `auth` for `who`.
fn auth_as(files: &Files, ca: &Path, endpoint: &str, who: &Pem) -> String {
    let cert = files.write(&format!("{}.crt", who.fingerprint), &who.cert_pem);
    let key = files.write(&format!("{}.key", who.fingerprint), &who.key_pem);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!("https://{endpoint}/1.0"))
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {endpoint}: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("GET /1.0 answers JSON");
    answer["metadata"]["auth"].as_str().expect("auth").to_string()
}

/// The issuers `endpoint` names in its TLS certificate request, as `openssl s_client` prints them.
fn acceptable_issuers(endpoint: &str) -> Vec<String> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", endpoint])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().skip_while(|l| !l.starts_with("Acceptable client certificate CA names"));
    lines.next();
    lines
        .take_while(|l| !l.starts_with("Requested Signature") && !l.starts_with("Client Certificate Types"))
        .map(String::from)
        .collect()
}

/// `openssl verify`: `leaf` chains to `ca` (signature, dates).
fn issued_by(files: &Files, leaf: &str, ca: &Path) -> bool {
    let leaf = files.write("leaf.crt", leaf);
    let out = Command::new("openssl").arg("verify").arg("-CAfile").arg(ca).arg(&leaf).output().expect("openssl verify");
    out.status.success()
}

#[test]
fn a_pki_cluster_presents_a_ca_issued_certificate_and_trusts_ca_issued_clients_it_holds() {
    pki_cluster(ServerKind::Lxd);
}

#[test]
fn a_pki_incus_cluster_presents_a_ca_issued_certificate_and_trusts_ca_issued_clients_it_holds() {
    pki_cluster(ServerKind::Incus);
}

fn pki_cluster(kind: ServerKind) {
    let cluster = LxdCluster::start_pki_kind(kind, 3).expect("starting a cluster in PKI mode");
    eprintln!("start_pki(3) took {:?}", cluster.startup_time());
    let ca = cluster.ca().expect("a PKI cluster has a CA").pem.clone();
    let files = Files::new(kind);
    let ca_file = files.write("ca.crt", &ca.cert_pem);

    // What every member presents is the CA-issued cluster certificate, and GET /1.0 says so.
    let presented = cluster.cluster_cert_pem();
    assert!(issued_by(&files, presented, &ca_file), "the CA issued the cluster certificate");
    assert_ne!(certs::fingerprint_pem(presented).expect("fp"), ca.fingerprint, "the CA is not what is presented");
    for i in 0..cluster.len() {
        let info = cluster.query_on(i, "GET", "/1.0", None).expect("GET /1.0");
        let reported = info["environment"]["certificate"].as_str().expect("environment.certificate");
        assert_eq!(certs::fingerprint_pem(reported).expect("fp"), certs::fingerprint_pem(presented).expect("fp"));
        // Joiners too ask for client certificates of the CA only.
        let issuers = acceptable_issuers(&cluster.endpoint(i));
        assert!(issuers.len() == 1 && issuers[0].contains("testbed PKI CA"), "member {i} asks for {issuers:?}");
    }

    // Issued by the CA is not enough (`core.trust_ca_certificates` is false): the trust store decides.
    let ca_ca = cluster.ca().expect("CA");
    let issued = ca_ca.issue_client("pki-issued").expect("issued client");
    let endpoints = cluster.endpoints();
    for ep in &endpoints {
        assert_eq!(auth_as(&files, &ca_file, ep, cluster.admin()), "trusted", "{ep}: the admin");
        assert_eq!(auth_as(&files, &ca_file, ep, &issued), "untrusted", "{ep}: issued, not in the store");
    }
    cluster.trust_add("pki-issued", &issued.cert_pem).expect("trust add");
    for ep in &endpoints {
        assert_eq!(auth_as(&files, &ca_file, ep, &issued), "trusted", "{ep}: issued and in the store");
    }

    // A certificate the CA did not issue is added either way, but whether it is then trusted
    // depends on the server. LXD 5.0.2 trusts what its store holds, issuer or not
    // (`lxd/util/http.go` `CheckTrustState`), from any client that presents it: OpenSSL does;
    // LXD's Go client withholds a certificate the server's request does not name. Incus 6.0
    // leaves such entries out of what it trusts (`cmd/incusd/daemon.go`
    // `getTrustedCertificates`). Later LXD: 5.0.4+, 5.21.2+, 6.1+ check the CA before the store
    // (`Daemon.Authenticate`), 5.21.3+ and 6.2+ also refuse the add (400, `certificateValidate`).
    let stranger = certs::client_cert("not-the-ca").expect("self-signed");
    cluster.trust_add("not-the-ca", &stranger.cert_pem).expect("a certificate the CA did not issue is added");
    let want = match kind {
        ServerKind::Lxd => "trusted",
        ServerKind::Incus => "untrusted",
    };
    for ep in &endpoints {
        assert_eq!(auth_as(&files, &ca_file, ep, &stranger), want, "{ep}: {kind}, self-signed, in the store");
    }
}
