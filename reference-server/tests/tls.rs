//! HTTPS: a test CA and a `localhost`/127.0.0.1 certificate made with rcgen, the server's
//! rustls acceptor, HSTS on every response, HTTP/2 by ALPN, and refusal of plain HTTP.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use std::path::PathBuf;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::Method;
use serde_json::json;

/// PEM files in a temporary directory: the CA certificate (to trust), and the server's
/// certificate and key.
struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "mcproof test CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA certificate");

    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("server certificate");

    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("server.pem");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    Pki { _dir: dir, ca_pem: ca.pem(), cert: cert_path, key: key_path }
}

fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client that trusts only the test CA and resolves `localhost` to the server.
fn tls_client(pki: &Pki, addr: std::net::SocketAddr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", addr)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .no_proxy()
        .build()
        .expect("TLS client")
}

#[tokio::test]
async fn https_serves_mcp_with_hsts_on_every_response() {
    install_provider();
    let pki = make_pki();
    let srv = start_tls(standard(), &pki.cert, &pki.key).await;
    let http = tls_client(&pki, srv.addr);
    let mut c = srv.client_on(http.clone(), &srv.url);
    assert!(srv.url.starts_with("https://localhost:"));

    let r = c.post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let hsts = r.header("strict-transport-security").unwrap_or_else(|| panic!("no HSTS: {}", r.describe()));
    let max_age: u64 = hsts
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("HSTS without max-age: {hsts:?}"));
    assert!(max_age >= 31_536_000, "HSTS max-age of at least a year: {hsts}");
    assert_eq!(r.header("x-content-type-options").as_deref(), Some("nosniff"));

    c.initialize().await;
    assert_eq!(c.ping_ok().await, Ok(()));
    for (name, reply) in [
        ("400", c.post_with("{", &[]).await),
        ("404", c.send(Method::GET, &format!("{}/.env", srv.base), None, &[]).await),
        ("405", c.send(Method::PUT, &srv.url, None, &[]).await),
        ("403", c.post_with("{}", &[("origin", Some("http://evil.example"))]).await),
    ] {
        assert!(reply.header("strict-transport-security").is_some(), "{name} without HSTS: {}", reply.describe());
        assert!(reply.header("server").is_none(), "{name}: Server header");
    }

    // The own origin is the https one; the http origin of the same host is foreign.
    let own = format!("https://localhost:{}", srv.addr.port());
    let r = c
        .post_with(json!({ "jsonrpc": "2.0", "id": 3, "method": "ping" }).to_string(), &[("origin", Some(&own))])
        .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let plain = format!("http://localhost:{}", srv.addr.port());
    let r = c
        .post_with(json!({ "jsonrpc": "2.0", "id": 4, "method": "ping" }).to_string(), &[("origin", Some(&plain))])
        .await;
    assert_eq!(r.status, 403, "{}", r.describe());
}

#[tokio::test]
async fn http2_is_negotiated_and_the_ip_name_verifies() {
    install_provider();
    let pki = make_pki();
    let srv = start_tls(standard(), &pki.cert, &pki.key).await;
    let http = tls_client(&pki, srv.addr);
    let response = http
        .post(&srv.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .bearer_auth(srv.api_key.as_deref().expect("start_tls makes an API key"))
        .body(initialize_body(1, LATEST).to_string())
        .send()
        .await
        .expect("POST over TLS");
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN h2");
    assert_eq!(response.status().as_u16(), 200);

    let by_ip = format!("https://127.0.0.1:{}/mcp", srv.addr.port());
    let c = srv.client_on(http, &by_ip);
    let r = c.post(&initialize_body(2, LATEST)).await;
    assert_eq!(r.status, 200, "via the IP SAN: {}", r.describe());
    assert!(r.header("strict-transport-security").is_some());
}

#[tokio::test]
async fn plain_http_and_untrusted_clients_fail() {
    install_provider();
    let pki = make_pki();
    let srv = start_tls(standard(), &pki.cert, &pki.key).await;
    let plain_url = format!("http://127.0.0.1:{}/mcp", srv.addr.port());
    let outcome = http_client()
        .post(&plain_url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(initialize_body(1, LATEST).to_string())
        .send()
        .await;
    match outcome {
        Err(_) => {}
        Ok(response) => {
            let status = response.status();
            let session = response.headers().contains_key("mcp-session-id");
            assert!(!status.is_success() && !session, "plain HTTP to the TLS port was served: {status}");
        }
    }

    // A client that does not trust the test CA cannot connect.
    let other = make_pki();
    let stranger = tls_client(&other, srv.addr);
    let outcome = stranger.post(&srv.url).body("{}").send().await;
    assert!(outcome.is_err(), "a certificate from an untrusted CA was accepted");

    // The server still serves trusted clients afterwards.
    let c = srv.client_on(tls_client(&pki, srv.addr), &srv.url);
    let r = c.post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[tokio::test]
async fn the_binary_serves_https_with_the_given_pem_files() {
    install_provider();
    let pki = make_pki();
    let (cert, key) = (pki.cert.to_str().expect("utf-8 path"), pki.key.to_str().expect("utf-8 path"));
    let (mut child, line) = spawn_server(&["--tls-cert", cert, "--tls-key", key]).await;
    let re = regex::Regex::new(r"^listening on https://127\.0\.0\.1:(\d+)/mcp$").expect("regex");
    let port: u16 = re.captures(&line).unwrap_or_else(|| panic!("banner {line:?}"))[1].parse().expect("port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let c = Mcp::new(tls_client(&pki, addr), &format!("https://localhost:{port}/mcp"));
    // Authentication is on by default (401 with a challenge), and even refusals carry HSTS.
    let r = c.post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(r.header("www-authenticate").is_some());
    assert!(r.header("strict-transport-security").is_some());
    child.start_kill().expect("kill");
    let _ = tokio::time::timeout(TIMEOUT, child.wait()).await;
}
