//! Server-side TLS for the brokers ([`MockClusterBuilder::tls`]), with
//! rustls: each accepted connection runs its handshake on its own thread
//! and is then served like a plaintext one.
//!
//! [`MockClusterBuilder::tls`]: crate::MockClusterBuilder::tls

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::MockError;

/// The brokers' TLS identity, and the CA that client certificates must
/// chain to if client authentication is required.
#[derive(Clone)]
pub(crate) struct TlsSettings {
    pub(crate) cert_chain_pem: String,
    pub(crate) key_pem: String,
    pub(crate) client_ca_pem: Option<String>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"<redacted>")
            .field("client_auth", &self.client_ca_pem.is_some())
            .finish()
    }
}

impl TlsSettings {
    /// The rustls server configuration (ring provider, TLS 1.2 and 1.3).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, MockError> {
        let bad = |what: &str| MockError::Config(format!("tls: {what}"));
        // rustls 0.23.48 deprecates `ring`'s provider for lacking
        // post-quantum key exchange; a test broker does not need it, and
        // ring builds without cmake.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(self.cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("the certificate chain is not valid PEM"))?;
        if chain.is_empty() {
            return Err(bad("no certificate in the certificate chain PEM"));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| bad("no usable private key in the key PEM"))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e.to_string()))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let cert = cert.map_err(|_| bad("the client CA is not valid PEM"))?;
                    roots
                        .add(cert)
                        .map_err(|e| bad(&format!("client CA: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| bad(&e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Arc::new(config))
    }
}
