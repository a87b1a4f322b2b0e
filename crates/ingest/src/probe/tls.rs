//! TLS for the probes: rustls client configurations on the `ring` provider (trusting the
//! system's roots, a CA file, or — when told — anything) and the certificate expiry read
//! from the chain a server sent.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::TlsSettings;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for `settings`; `alpn` offers HTTP/1.1.
pub(crate) fn client_config(
    settings: &TlsSettings,
    alpn: bool,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?;
    let mut config = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &settings.ca_file {
            Some(file) => Arc::new(roots_from_file(file)?),
            None => system_roots(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    if alpn {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(Arc::new(config))
}

/// The CA certificates of a PEM file.
fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in CA file {}", path.display()));
    }
    Ok(roots)
}

/// The system's trusted roots, loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot load a system CA certificate");
        }
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!(ignored, "unparsable system CA certificates ignored");
        }
        Arc::new(roots)
    }))
}

/// `insecure_skip_verify`: accepts any certificate, still checking that the handshake is
/// signed by the key of the certificate presented.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The `notAfter` of a DER certificate, Unix seconds; `None` when it does not parse.
pub fn not_after(der: &[u8]) -> Option<i64> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    i64::try_from(secs).ok()
}

/// The earliest `notAfter` of a chain, Unix seconds.
pub(super) fn earliest_expiry(chain: Option<&[CertificateDer<'_>]>) -> Option<i64> {
    chain?.iter().filter_map(|c| not_after(c)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x01]), None);
        assert_eq!(earliest_expiry(None), None);
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        assert!(
            roots_from_file(&missing)
                .unwrap_err()
                .contains("cannot read CA file")
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(
            roots_from_file(&empty)
                .unwrap_err()
                .contains("no certificate")
        );
    }
}
