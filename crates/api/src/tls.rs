//! TLS for the listener (`server.tls`): rustls on the `ring` provider, the certificate chain
//! and key read from PEM files and read again when either file changes, so a renewed
//! certificate (certbot, cert-manager, an ACME client) is served without a restart.
//!
//! Handshakes run in their own tasks with a deadline, so a client that connects and says
//! nothing holds neither the accept loop nor other clients. The accepted streams reach
//! `axum::serve` through [`TlsListener`], an `axum::serve::Listener`, which keeps the
//! graceful shutdown and the client address (`ConnectInfo<SocketAddr>`) of plain HTTP.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const QUEUE: usize = 128;

/// Where the certificate and key live, and how often their files are checked.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files' modification times are compared with the loaded ones.
    pub check_every: Duration,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the chain and key of `files`; the error names the file and what is wrong with it.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let cert_err = |e: &dyn std::fmt::Display| {
        format!("server.tls.cert_file {}: {e}", files.cert_file.display())
    };
    let key_err = |e: &dyn std::fmt::Display| {
        format!("server.tls.key_file {}: {e}", files.key_file.display())
    };
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|e| cert_err(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(&e))?;
    if chain.is_empty() {
        return Err(cert_err(&"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| key_err(&e))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(&e))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // A key type whose public half rustls cannot derive: served as given.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(format!(
            "server.tls: the key in {} does not serve the certificate in {}: {e}",
            files.key_file.display(),
            files.cert_file.display()
        )),
    }
}

/// The certificate being served, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times of the certificate and key files when last loaded.
    stamps: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadingCert {
    /// Loads the files once; an error here stops the start.
    pub fn new(files: TlsFiles) -> Result<Arc<ReloadingCert>, String> {
        let stamps = (modified(&files.cert_file), modified(&files.key_file));
        let key = load(&files)?;
        Ok(Arc::new(ReloadingCert {
            files,
            current: RwLock::new(Arc::new(key)),
            stamps: RwLock::new(stamps),
        }))
    }

    /// Loads the files again if either changed since the last load. A pair that does not
    /// load (a renewal half written, a key that does not match yet) keeps the old
    /// certificate in service and is tried again at the next check. `Ok(true)`: a new
    /// certificate is served.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = (
            modified(&self.files.cert_file),
            modified(&self.files.key_file),
        );
        if *self.stamps.read().unwrap_or_else(PoisonError::into_inner) == now {
            return Ok(false);
        }
        let key = load(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        *self.stamps.write().unwrap_or_else(PoisonError::into_inner) = now;
        Ok(true)
    }

    /// Checks the files every `check_every` until the returned task is dropped or aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(this.files.check_every.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match this.reload_if_changed() {
                    Ok(true) => tracing::info!(
                        cert_file = %this.files.cert_file.display(),
                        "TLS certificate reloaded"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        error = %e,
                        "TLS files changed but do not load; still serving the previous certificate"
                    ),
                }
            }
        })
    }

    /// The chain being served, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cert
            .clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The server configuration: TLS 1.2 and 1.3 with rustls' safe defaults, HTTP/1.1 by ALPN
/// (the listener speaks HTTP/1 only).
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out handshaken: an `axum::serve::Listener`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes with `config`, each connection in its own task.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // As axum does: out of descriptors or a connection reset before
                            // it was taken; wait a little rather than spin.
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = tx.closed() => return,
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// [`crate::serve`] over TLS: serves `router` on `listener` with `config` until `shutdown`
/// resolves, then finishes in-flight requests.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    use axum::serve::ListenerExt as _;
    // `tap_io` only to get axum's `ConnectInfo<SocketAddr>` for any listener whose
    // address is a `SocketAddr`; the tap itself does nothing.
    let listener = TlsListener::new(listener, config)?.tap_io(|_| {});
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
