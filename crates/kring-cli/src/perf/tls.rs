//! `kring perf --tls`: certificates made for one benchmark (a CA and a
//! broker certificate for 127.0.0.1), written to a temporary directory the
//! sink reads its identity from and the clients read the CA from
//! (`ssl.ca.location`, which kring and librdkafka both understand).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

use crate::error::CliError;

/// PEM files for one benchmark; the directory is removed on drop.
#[derive(Debug)]
pub struct TlsFiles {
    dir: PathBuf,
    /// The CA certificate the clients trust.
    pub ca: PathBuf,
    /// The sink's certificate (valid for 127.0.0.1 and localhost).
    pub cert: PathBuf,
    /// The sink's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// Makes a CA and a broker certificate and writes them out.
    pub fn create() -> Result<TlsFiles, CliError> {
        let fail = |e: rcgen::Error| CliError::Child(format!("making test certificates: {e}"));
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kring perf CA");
        let ca_key = KeyPair::generate().map_err(fail)?;
        let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(fail)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(fail)?;
        let dir = std::env::temp_dir().join(format!("kring-perf-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| CliError::io("creating a TLS directory", e))?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("broker.pem"),
            key: dir.join("broker.key"),
            dir,
        };
        for (path, text) in [
            (&files.ca, ca.pem()),
            (&files.cert, cert.pem()),
            (&files.key, key.serialize_pem()),
        ] {
            std::fs::write(path, text).map_err(|e| CliError::io("writing a PEM file", e))?;
        }
        Ok(files)
    }

    /// The client properties that make a run use TLS with this CA.
    pub fn client_properties(&self) -> Vec<(String, String)> {
        vec![
            ("security.protocol".into(), "SSL".into()),
            ("ssl.ca.location".into(), self.ca.display().to_string()),
        ]
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
