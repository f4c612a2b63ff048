//! TLS for the `tls-port` listener: the PEM files named by the settings read into a rustls
//! server configuration, with client certificates checked against `tls-ca-cert-file` as
//! `tls-auth-clients` says. Everything is read and checked when the server starts, so a missing
//! file, one without the expected PEM section, or a key that does not match its certificate is
//! an error naming the file before anything else happens.
//!
//! The handshake itself runs in the connection's task (see `server`), bounded by
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and says nothing holds one client slot for
//! that long and never stalls the listener.

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{Settings, TlsAuthClients};

/// The longest a TLS handshake may take from the accept; past it the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed handshakes are logged at info for the first one and then one in this many (each is
/// at debug): a port scanner or a plain-text client in a loop must not flood the log.
pub const HANDSHAKE_FAILURES_LOGGED_EVERY: u64 = 100;

/// The cryptography rustls runs on (see server/Cargo.toml for why it differs on Apple targets).
#[cfg_attr(
    not(target_vendor = "apple"),
    expect(
        deprecated,
        reason = "rustls marks ring's provider deprecated for lacking post-quantum key exchange only; its \
                  alternative, aws-lc-rs, needs cmake and a C toolchain for every target"
    )
)]
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(not(target_vendor = "apple"))]
    let provider = rustls::crypto::ring::default_provider();
    #[cfg(target_vendor = "apple")]
    let provider = rustls_graviola::default_provider();
    Arc::new(provider)
}

/// The acceptor for the `tls-port` listener, from the settings' files; the error names the file
/// and what is wrong with it.
pub fn acceptor(settings: &Settings) -> Result<TlsAcceptor, String> {
    let provider = provider();
    if settings.tls_cert_file.is_empty() || settings.tls_key_file.is_empty() {
        return Err(format!(
            "tls-port {} needs a certificate and its key: set tls-cert-file and tls-key-file (--tls-cert-file, \
             --tls-key-file)",
            settings.tls_port
        ));
    }
    if settings.tls_auth_clients != TlsAuthClients::No && settings.tls_ca_cert_file.is_empty() {
        return Err(format!(
            "tls-auth-clients {} needs tls-ca-cert-file, the CA that signs the client certificates \
             (--tls-ca-cert-file FILE); or set tls-auth-clients no (--tls-auth-clients no) to accept clients \
             without a certificate",
            settings.tls_auth_clients.name()
        ));
    }
    let certs = read_certs("tls-cert-file", &settings.tls_cert_file)?;
    let key = read_key(&settings.tls_key_file)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match settings.tls_auth_clients {
        TlsAuthClients::No => builder.with_no_client_auth(),
        auth => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls-ca-cert-file", &settings.tls_ca_cert_file)? {
                roots.add(cert).map_err(|e| {
                    format!("tls-ca-cert-file {}: not a usable CA certificate: {e}", settings.tls_ca_cert_file)
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == TlsAuthClients::Optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier =
                verifier.build().map_err(|e| format!("tls-ca-cert-file {}: {e}", settings.tls_ca_cert_file))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "tls-cert-file {} and tls-key-file {} do not make a usable pair: {e}",
            settings.tls_cert_file, settings.tls_key_file
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate in the PEM file at `path` (the directive's name for errors); at least one.
fn read_certs(directive: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{directive} {path}: {e}"))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{directive} {path}: not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{directive} {path}: no certificate in it (a PEM `BEGIN CERTIFICATE` section)"));
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`.
fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("tls-key-file {path}: {e}"))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("tls-key-file {path}: no private key in it (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section): {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: &str, key: &str) -> Settings {
        Settings {
            tls_port: 6380,
            tls_cert_file: cert.into(),
            tls_key_file: key.into(),
            tls_auth_clients: TlsAuthClients::No,
            ..Settings::default()
        }
    }

    #[test]
    fn a_missing_or_wrong_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem").display().to_string();
        let err = acceptor(&settings(&missing, &missing)).err().unwrap();
        assert!(err.starts_with(&format!("tls-cert-file {missing}: ")), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let junk = junk.display().to_string();
        let err = acceptor(&settings(&junk, &junk)).err().unwrap();
        assert!(err.starts_with(&format!("tls-cert-file {junk}: no certificate")), "{err}");
        let err = acceptor(&settings("", "")).err().unwrap();
        assert!(err.contains("set tls-cert-file and tls-key-file"), "{err}");
    }
}
