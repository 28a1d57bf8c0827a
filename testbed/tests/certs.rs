//! The test certificates are what they claim to be.

use testbed::certs;
use x509_parser::prelude::*;

fn parse(pem: &certs::Pem) -> (Vec<u8>, String) {
    let der = certs::pem_to_der(&pem.cert_pem).expect("der");
    assert_eq!(der, pem.der);
    (der, pem.fingerprint.clone())
}

fn with_cert<R>(pem: &certs::Pem, f: impl FnOnce(&X509Certificate) -> R) -> R {
    let (der, fp) = parse(pem);
    assert_eq!(certs::fingerprint(&der), fp);
    let (_, cert) = X509Certificate::from_der(&der).expect("valid X.509");
    f(&cert)
}

fn cn(cert: &X509Certificate) -> String {
    cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).expect("CN").to_string()
}

#[test]
fn client_certs_are_ecdsa_and_currently_valid() {
    let p384 = certs::client_cert("alice").expect("p384");
    let p256 = certs::client_cert_p256("alice").expect("p256");
    for (pem, curve_oid) in [(&p384, "1.3.132.0.34"), (&p256, "1.2.840.10045.3.1.7")] {
        assert!(pem.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pem.key_pem.contains("PRIVATE KEY"));
        assert_eq!(pem.fingerprint.len(), 64);
        with_cert(pem, |c| {
            assert_eq!(cn(c), "alice");
            assert!(c.validity().is_valid());
            let params = c.public_key().algorithm.parameters.as_ref().expect("curve parameter");
            assert_eq!(params.as_oid().expect("oid").to_id_string(), curve_oid);
            assert!(!c.is_ca());
        });
    }
    assert_ne!(p384.fingerprint, p256.fingerprint);
    let sec1 = p384.key_pem_sec1().expect("openssl converts the key");
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
}

#[test]
fn validity_windows() {
    let now = ASN1Time::now();
    with_cert(&certs::expired_cert("old").expect("expired"), |c| {
        assert!(c.validity().not_after < now);
    });
    with_cert(&certs::not_yet_valid_cert("future").expect("future"), |c| {
        assert!(c.validity().not_before > now);
    });
}

#[test]
fn ca_and_issued_client() {
    let ca = certs::ca_cert("Test CA").expect("ca");
    with_cert(&ca.pem, |c| assert!(c.is_ca()));
    let client = ca.issue_client("bob").expect("issued");
    with_cert(&client, |c| {
        assert_eq!(cn(c), "bob");
        assert_eq!(c.issuer().iter_common_name().next().and_then(|n| n.as_str().ok()), Some("Test CA"));
    });
    // openssl agrees the chain verifies.
    let dir = std::env::temp_dir().join(format!("testbed-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("ca.pem"), &ca.pem.cert_pem).expect("write");
    std::fs::write(dir.join("client.pem"), &client.cert_pem).expect("write");
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("client.pem"))
        .output()
        .expect("openssl");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn server_cert_looks_like_lxds() {
    let pem = certs::server_cert("lxd-host", &["10.0.0.5"]).expect("server");
    with_cert(&pem, |c| {
        assert_eq!(cn(c), "root@lxd-host");
        let san = c.subject_alternative_name().expect("ok").expect("SAN present");
        let names: Vec<String> = san.value.general_names.iter().map(|g| format!("{g}")).collect();
        assert_eq!(names.len(), 4, "{names:?}");
    });
}

#[test]
fn a_ca_issues_server_certificates_for_lxds_pki_mode() {
    let ca = certs::ca_cert("PKI CA").expect("ca");
    let server = ca.issue_server("root@node1", &["127.1.2.1".to_string()]).expect("issued");
    with_cert(&server, |c| {
        assert_eq!(cn(c), "root@node1");
        assert!(!c.is_ca());
        assert_eq!(c.issuer().to_string(), with_cert(&ca.pem, |ca| ca.subject().to_string()));
        let eku = c.extended_key_usage().expect("ok").expect("EKU present").value;
        assert!(eku.server_auth && !eku.client_auth, "{eku:?}");
        let san = c.subject_alternative_name().expect("ok").expect("SAN present");
        let names: Vec<String> = san.value.general_names.iter().map(|g| format!("{g}")).collect();
        assert_eq!(names, ["IPAddress(7f:01:02:01)"], "127.1.2.1");
    });
}

#[test]
fn same_cn_other_keys_differ() {
    let copies = certs::same_cn_other_keys("twin", 3).expect("copies");
    let mut fps: Vec<&str> = copies.iter().map(|p| p.fingerprint.as_str()).collect();
    fps.sort();
    fps.dedup();
    assert_eq!(fps.len(), 3);
    for p in &copies {
        with_cert(p, |c| assert_eq!(cn(c), "twin"));
    }
}

#[test]
fn rsa_via_openssl() {
    let rsa = certs::rsa_client_cert("legacy", 2048).expect("rsa 2048");
    with_cert(&rsa, |c| {
        assert_eq!(cn(c), "legacy");
        assert_eq!(c.public_key().algorithm.algorithm.to_id_string(), "1.2.840.113549.1.1.1");
    });
    certs::rsa_client_cert("weak", 1024).expect("rsa 1024 for 'too weak' tests");
}

#[test]
fn base64_body_is_what_lxd_wants() {
    let pem = certs::client_cert("x").expect("cert");
    let b64 = pem.cert_base64();
    assert!(!b64.contains('-') && !b64.contains('\n'));
    assert!(pem.cert_pem.replace('\n', "").contains(&b64));
}
