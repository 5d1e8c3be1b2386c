//! Test support: a development PKI, sealed bundles, a receiver on loopback and mutual-TLS clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tamga_bundle::{b64, devpki, manifest, pki};
use tamga_central::store::FsStore;
use tamga_central::{CentralConfig, Options, Running};

pub const STATION: &str = "KZ-ALA-001-W05";

pub struct World {
    pub pki: devpki::DevPki,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        World {
            pki: devpki::generate(STATION).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn revoked(&self) -> PathBuf {
        self.dir.path().join("revoked.txt")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("central-store")
    }

    pub fn config(&self) -> CentralConfig {
        CentralConfig {
            cert_pem: self.pki.central.clone(),
            key_pem: self.pki.central_key.clone(),
            client_ca_pem: self.pki.root_ca.clone(),
            revocation_list: Some(self.revoked()),
            max_body_bytes: 16 << 20,
        }
    }

    /// A receiver on loopback with `options` over the filesystem store (an empty revocation list is created).
    pub async fn start(&self, options: Options) -> Running {
        if !self.revoked().exists() {
            std::fs::write(self.revoked(), "# no station revoked\n").unwrap();
        }
        let store = FsStore::new(&self.store_dir()).unwrap();
        self.start_on(options, Box::new(store)).await
    }

    pub async fn start_on(&self, options: Options, store: Box<dyn tamga_central::store::Storage>) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tamga_central::start_with(self.config(), options, store, listener).unwrap()
    }

    /// Another station of this PKI: (certificate chain PEM, key PEM).
    pub fn station(&self, id: &str) -> Station {
        let (cert, key) =
            devpki::issue_station(id, 30, &self.pki.station_ca, &self.pki.station_ca_key).unwrap();
        Station {
            id: id.to_owned(),
            cert,
            key,
            station_ca: self.pki.station_ca.clone(),
            central: self.pki.central.clone(),
        }
    }

    /// This world's own station.
    pub fn main_station(&self) -> Station {
        Station {
            id: STATION.to_owned(),
            cert: self.pki.station.clone(),
            key: self.pki.station_key.clone(),
            station_ca: self.pki.station_ca.clone(),
            central: self.pki.central.clone(),
        }
    }

    /// An HTTPS client presenting `s`'s certificate.
    pub fn client(&self, s: &Station) -> reqwest::Client {
        let identity = format!("{}\n{}\n{}", s.key, s.cert, s.station_ca);
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pki.root_ca.as_bytes()).unwrap())
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// A raw TLS connection presenting `s`'s certificate.
    pub async fn tls(
        &self,
        s: &Station,
        port: u16,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in pki::certs_from_pem(&self.pki.root_ca).unwrap() {
            roots.add(CertificateDer::from(der)).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> =
            pki::certs_from_pem(&format!("{}\n{}", s.cert, s.station_ca))
                .unwrap()
                .into_iter()
                .map(CertificateDer::from)
                .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki::pkcs8_from_pem(&s.key).unwrap()));
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }
}

#[derive(Clone)]
pub struct Station {
    pub id: String,
    pub cert: String,
    pub key: String,
    pub station_ca: String,
    pub central: String,
}

/// (bundle id, manifest digest, sealed bundle).
pub use tamga_bundle::testkit::Sealed;

impl Station {
    /// The SHA-256 fingerprint of the station certificate, as the revocation list names it.
    pub fn fingerprint(&self) -> String {
        b64::sha256_hex(&pki::certs_from_pem(&self.cert).unwrap()[0])
    }

    /// A sealed bundle (one finger of `image_len` bytes of `seed`) chained after `previous`.
    pub fn bundle(&self, previous: &str, seed: u8, image_len: usize) -> Sealed {
        let signing = tamga_bundle::testkit::Signing {
            station_id: &self.id,
            centre_id: "KZ-ALA-001",
            key: &self.key,
            chain: [&self.cert, &self.station_ca],
            central: &self.central,
        };
        tamga_bundle::testkit::sealed_bundle(&signing, previous, seed, image_len)
    }

    /// `n` bundles in chain order after genesis.
    pub fn chain(&self, n: usize) -> Vec<Sealed> {
        let mut prev = manifest::GENESIS.to_owned();
        (0..n)
            .map(|i| {
                let b = self.bundle(&prev, i as u8, 1000);
                prev = b.1.clone();
                b
            })
            .collect()
    }
}

/// POSTs a bundle: (status, JSON answer).
pub async fn upload(client: &reqwest::Client, port: u16, jwe: &str) -> (u16, serde_json::Value) {
    let r = client
        .post(format!("https://localhost:{port}/v1/bundles"))
        .body(jwe.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs a station's chain status: (status, JSON answer).
pub async fn station_status(client: &reqwest::Client, port: u16, id: &str) -> (u16, serde_json::Value) {
    let r = client
        .get(format!("https://localhost:{port}/v1/stations/{id}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Every file under `dir` whose name ends with `.tmp`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                out.push(p);
            }
        }
    }
    out
}
