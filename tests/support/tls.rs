//! Test certificates made in the test (rcgen): a CA, leaf certificates it signs for
//! `localhost` and 127.0.0.1, written as PEM files; and the client side of TLS (rustls,
//! trusting only that CA) for SMPP and HTTPS clients.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A test CA.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub pem: String,
}

/// A leaf certificate and its key, as written.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate, DER (to compare with what a handshake served).
    pub der: CertificateDer<'static>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// Writes the CA's certificate to `dir/NAME` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A leaf for `localhost` and 127.0.0.1 named `cn`, written as `dir/NAME.crt` and
    /// `dir/NAME.key`.
    pub fn leaf(&self, dir: &Path, name: &str, cn: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }

    /// A rustls client config trusting this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    /// Opens TLS to `addr` as `localhost`, checking the server's certificate against this CA.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        self.handshake(TcpStream::connect(addr).await?).await
    }

    /// Opens TLS over `tcp` as `localhost`, checking the server's certificate.
    pub async fn handshake(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        tcp.set_nodelay(true).ok();
        tokio_rustls::TlsConnector::from(self.client_config())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }
}

/// The certificate the server presented on `tls`.
pub fn served(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("a certificate")[0]
        .clone()
        .into_owned()
}

/// A gateway in this process with its SMPP TLS port, and the CA its certificate is from.
pub struct TlsGateway {
    pub gw: super::TestGateway,
    pub tls_addr: std::net::SocketAddr,
    pub ca: TestCa,
    /// The CA's certificate as a file (for python and openssl).
    pub ca_file: PathBuf,
    pub leaf: Leaf,
}

impl TlsGateway {
    /// A gateway with `[smpp.tls]` on a free port (`smpp` keys before it, `operators` as in
    /// [`super::TestGateway::start`]), its certificate signed by a new test CA.
    pub async fn start(smpp: &str, operators: &str) -> TlsGateway {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("icaze test CA");
        let ca_file = ca.write(dir.path(), "ca.crt");
        let leaf = ca.leaf(dir.path(), "smpp", "icaze smpp test");
        let smpp = format!(
            "{smpp}\n[smpp.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"smpp.crt\"\nkey = \"smpp.key\"\n"
        );
        let config = super::config(dir.path(), &smpp, operators);
        let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_addr = tls.local_addr().unwrap();
        let gw = super::TestGateway::start_with_tls(config, dir, Some(tls)).await;
        TlsGateway {
            gw,
            tls_addr,
            ca,
            ca_file,
            leaf,
        }
    }

    /// An SMPP client over TLS to the gateway, bound as a transceiver with demo/demo.
    pub async fn trx(&self) -> super::smpp::Client<TlsStream<TcpStream>> {
        let tls = self
            .ca
            .connect(self.tls_addr)
            .await
            .expect("a TLS handshake");
        let mut c = super::smpp::Client::over(tls);
        assert_eq!(
            c.bind(super::smpp::BIND_TRANSCEIVER, "demo", "demo").await,
            super::smpp::ESME_ROK
        );
        c
    }
}
