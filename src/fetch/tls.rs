//! TLS trust for upstream connections: the webpki roots, plus the CA certificates of
//! `upstream.ca_file` (a PEM bundle, for origins behind a private CA). Certificates are
//! verified against the URL's host name, whatever address `upstream.resolve` pins it to. The
//! bundle is read by `config::load_ca_file`, which validation uses too.

use crate::config::load_ca_file;
use rustls::{ClientConfig, RootCertStore};
use std::{io, path::Path, sync::Arc};

/// The client configuration: ring's provider, safe protocol versions, the webpki roots and
/// the extra CAs; no client certificate. An empty `ca_file` path adds nothing.
pub fn client_config(ca_file: &Path) -> io::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !ca_file.as_os_str().is_empty() {
        for cert in load_ca_file(ca_file)? {
            roots.add(cert).map_err(io::Error::other)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_ca_is_trusted_beside_the_webpki_roots() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        assert_eq!(load_ca_file(&path).unwrap().len(), 1);
        assert!(client_config(&path).is_ok());
        assert!(
            client_config(Path::new("")).is_ok(),
            "no ca_file: roots only"
        );
    }
}
