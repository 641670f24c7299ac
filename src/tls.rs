//! TLS with rustls (ring provider): the certificates icaze serves on its SMPP TLS port and
//! its HTTPS admin API, re-read on SIGHUP, and the trust its connectors dial SMSCs with.
//!
//! PEM files are read with rustls-pki-types' [`PemObject`]. A server's certificate chain and
//! key are checked together when they are loaded (the key must be the leaf's), at start by
//! the config and on every reload; a reload that fails keeps the certificate in use, so a
//! half-copied renewal never takes the port down. A reload changes what new handshakes get:
//! sessions already up keep theirs, so binds are never dropped by a renewal.
//!
//! Connectors trust the `ca` file given for them, else the Mozilla roots compiled in from
//! `webpki-roots`: the same on every machine and offline, without depending on a system
//! store that a minimal container may lack.

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Which file of a TLS table a problem is in: the config key it was given under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `cert`: the certificate chain, leaf first.
    Cert,
    /// `key`: the leaf's private key.
    Key,
    /// `ca`: the certificates a connector trusts.
    Ca,
}

impl TlsFile {
    /// The key the file is given under (`cert`, `key`, `ca`).
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Cert => "cert",
            TlsFile::Key => "key",
            TlsFile::Ca => "ca",
        }
    }
}

/// A TLS file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct TlsError {
    /// Which file of the table.
    pub file: TlsFile,
    /// Where it is.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

fn pem_error(file: TlsFile, path: &Path, e: rustls_pki_types::pem::Error) -> TlsError {
    let message = match e {
        rustls_pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        rustls_pki_types::pem::Error::NoItemsFound => match file {
            TlsFile::Key => "no private key in it (PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")".into(),
            _ => "no certificate in it (PEM \"CERTIFICATE\")".into(),
        },
        other => format!("not readable as PEM: {other}"),
    };
    TlsError {
        file,
        path: path.to_path_buf(),
        message,
    }
}

/// Every certificate in a PEM file; none is an error.
fn certificates(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(file, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(
            file,
            path,
            rustls_pki_types::pem::Error::NoItemsFound,
        ));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's certificate chain and key files, as configured (`[smpp.tls]`, `[admin.tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Identity {
    /// Reads both files and builds the server side of TLS (1.2 and 1.3, no client
    /// certificates); the key must belong to the chain's first certificate.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = certificates(TlsFile::Cert, &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| pem_error(TlsFile::Key, &self.key, e))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| TlsError {
                file: TlsFile::Key,
                path: self.key.clone(),
                message: match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "is not the key of the certificate in {}",
                        self.cert.display()
                    ),
                    other => format!("cannot be used: {other}"),
                },
            })?;
        Ok(Arc::new(config))
    }
}

/// A server's TLS as configured: its files, and what they held when the config was read.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Where the certificate and key are (re-read on reload).
    pub files: Identity,
    /// The server config built from them.
    pub config: Arc<ServerConfig>,
}

/// A server's certificate in use, replaced on reload; each handshake takes the one in use
/// when it starts.
#[derive(Debug)]
pub struct Certs {
    /// The config key it came from (`smpp.tls`, `admin.tls`), for reload errors.
    key: &'static str,
    files: Identity,
    current: RwLock<Arc<ServerConfig>>,
}

impl Certs {
    /// Starts with what the config loaded; `key` names the table for errors.
    pub fn new(key: &'static str, tls: &ServerTls) -> Certs {
        Certs {
            key,
            files: tls.files.clone(),
            current: RwLock::new(tls.config.clone()),
        }
    }

    /// The table it came from (`smpp.tls`, `admin.tls`).
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// An acceptor with the certificate in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(current.clone())
    }

    /// Re-reads the files; on success new handshakes use them, on failure (returned as
    /// `(dotted key, error)`) the certificate in use stays.
    pub fn reload(&self) -> Result<(), (String, TlsError)> {
        let config = self
            .files
            .load()
            .map_err(|e| (format!("{}.{}", self.key, e.file.key()), e))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }
}

/// The TLS servers of one gateway: the SMPP TLS port's certificate and the admin API's.
#[derive(Debug, Default)]
pub struct Servers {
    /// `[smpp.tls]`, when set.
    pub smpp: Option<Arc<Certs>>,
    /// `[admin.tls]`, when set.
    pub admin: Option<Arc<Certs>>,
}

impl Servers {
    /// The certificates `config` loaded.
    pub fn new(config: &crate::config::Config) -> Servers {
        Servers {
            smpp: config
                .smpp
                .tls
                .as_ref()
                .map(|t| Arc::new(Certs::new("smpp.tls", &t.server))),
            admin: config
                .admin
                .tls
                .as_ref()
                .map(|t| Arc::new(Certs::new("admin.tls", t))),
        }
    }

    /// Every certificate in use, SMPP's first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Certs>> {
        [&self.smpp, &self.admin].into_iter().flatten()
    }
}

/// How a connector dials its SMSC over TLS. Clones share the trust in use, so a reload
/// reaches every session of the connector.
#[derive(Debug, Clone)]
pub struct Dialling {
    /// The name the SMSC's certificate must carry (`tls_name`, default the address's host).
    pub name: ServerName<'static>,
    /// The `ca` file, when one was given (re-read on reload).
    pub ca: Option<PathBuf>,
    /// The client side of TLS, trusting `ca` (or the compiled-in Mozilla roots).
    config: Arc<RwLock<Arc<ClientConfig>>>,
}

impl Dialling {
    /// Dials `name`, trusting `ca` (read now) or the compiled-in roots.
    pub fn new(name: ServerName<'static>, ca: Option<PathBuf>) -> Result<Dialling, TlsError> {
        let config = Self::client_config(ca.as_deref())?;
        Ok(Dialling {
            name,
            ca,
            config: Arc::new(RwLock::new(config)),
        })
    }

    /// Re-reads the `ca` file: the next handshakes trust what it holds now; sessions up keep
    /// going. On failure the trust in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let Some(ca) = &self.ca else {
            return Ok(());
        };
        let config = Self::client_config(Some(ca))?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// Trust `ca` (every certificate in it), else the Mozilla roots of `webpki-roots`.
    fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        match ca {
            Some(path) => {
                for cert in certificates(TlsFile::Ca, path)? {
                    roots.add(cert).map_err(|e| TlsError {
                        file: TlsFile::Ca,
                        path: path.to_path_buf(),
                        message: format!("holds a certificate that cannot be trusted: {e}"),
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                file: TlsFile::Ca,
                path: ca.map(Path::to_path_buf).unwrap_or_default(),
                message: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Opens TLS over `stream` to the SMSC.
    pub async fn connect(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let config = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TlsConnector::from(config)
            .connect(self.name.clone(), stream)
            .await
    }
}

/// Why a TLS handshake with a client did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// It was not done by its deadline (the bind timeout, for SMPP).
    #[error("the TLS handshake was not done in time")]
    Deadline,
    /// The peer spoke something else, or gave up.
    #[error("TLS handshake failed: {0}")]
    Failed(#[from] std::io::Error),
}

/// Completes the server side of a handshake on `stream` by `deadline`, so a peer that
/// connects and never finishes it holds its connection slot no longer than that.
pub async fn accept(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    deadline: Instant,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeError> {
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::Deadline),
    }
}

/// The SMPP TLS port as configured: where it listens and what it serves.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Its address (`[smpp.tls] listen`; 3550 by convention).
    pub listen: SocketAddr,
    /// Its certificate and key.
    pub server: ServerTls,
}

/// Re-reads every TLS file (SIGHUP): the SMPP and admin certificates and the connectors'
/// `ca` files. New handshakes use each that loads; one that does not is logged by file and
/// key, and what was in use stays. Sessions already up are not touched.
pub fn reload(gateway: &crate::gateway::Gateway) {
    let config = gateway.config.path.display();
    let refused = |key: &str, error: &TlsError| {
        tracing::error!("TLS reload refused, what is in use stays: {config}: {key}: {error}")
    };
    for certs in gateway.tls.all() {
        match certs.reload() {
            Ok(()) => tracing::info!(table = certs.key(), "TLS certificate reloaded"),
            Err((key, error)) => refused(&key, &error),
        }
    }
    for (i, (connector, _)) in gateway.connectors.iter().enumerate() {
        let Some(tls) = connector.tls.as_ref().filter(|t| t.ca.is_some()) else {
            continue;
        };
        match tls.reload() {
            Ok(()) => tracing::info!(connector = %connector.name, "TLS ca reloaded"),
            Err(error) => refused(&format!("connectors[{i}].ca"), &error),
        }
    }
}
