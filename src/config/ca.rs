//! `upstream.ca_file`: reading the PEM bundle of extra trust anchors. It lives with the
//! configuration because both stages use it: validation refuses a bundle that cannot be used
//! (before anything binds), and the fetcher's TLS set-up (`fetch::tls`) trusts what it holds.

use rustls::{
    pki_types::{pem::PemObject, CertificateDer},
    RootCertStore,
};
use std::{io, path::Path};

/// The CA certificates of a PEM bundle; a file that cannot be read, holds no certificate, or
/// holds one rustls refuses as a trust anchor is an error naming the cause.
pub fn load_ca_file(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad(format!("cannot read PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = load_ca_file(&path).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = load_ca_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
