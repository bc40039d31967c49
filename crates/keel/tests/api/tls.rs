//! `keel serve --tls-cert --tls-key` serves HTTPS (a self-signed certificate
//! made here, trusted by the client), sends HSTS, and `--redirect-http`
//! answers plain HTTP with a 308 to the HTTPS address.

use keel_testkit::{test_secret_key_hex, TestDb};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn serves_https_with_hsts_and_redirects_plain_http() {
    let db = TestDb::fresh().await;
    let app = db.open().await;
    let (_, key) = app.create_api_key("tls").await.unwrap();
    app.store.close().await;

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_file = db.dir.join("cert.pem");
    let key_file = db.dir.join("key.pem");
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();

    let (port, plain) = (free_port(), free_port());
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(db.cli_args())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--tls-cert", &cert_file.display().to_string(), "--tls-key", &key_file.display().to_string()])
            .args(["--redirect-http", &format!("127.0.0.1:{plain}")])
            .env_remove("KEEL_DATABASE_URL")
            .env("KEEL_SECRET_KEY", test_secret_key_hex())
            .env("KEEL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        match https.get(format!("{base}/healthz")).send().await {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "keel did not start serving HTTPS: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["strict-transport-security"], keel_web::headers::HSTS);
    let r = https.get(format!("{base}/api/v1/products")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    let home = https.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);

    // A client that does not trust the certificate is refused.
    assert!(reqwest::Client::new().get(format!("{base}/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port gets no answer.
    let plain_on_tls = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/healthz")).send().await;
    assert!(!plain_on_tls.is_ok_and(|r| r.status().is_success()));

    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_follow.post(format!("http://127.0.0.1:{plain}/products/x?page=2")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], format!("https://127.0.0.1:{port}/products/x?page=2").as_str());
    let _ = std::fs::remove_dir_all(&db.dir);
}
