//! Builds a rustls client configuration from the Collector's `tls:` settings.
//!
//! Everything that can fail (unreadable or malformed PEM files, no system
//! roots) fails here, at construction, with a message naming the file, so an
//! exporter never discovers a bad TLS setting on its first export.

use super::TlsClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The TLS material an exporter connects with.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// Name to verify instead of the endpoint's host (`server_name_override`).
    pub server_name: Option<ServerName<'static>>,
}

/// Builds the client configuration; `alpn` is what the exporter speaks
/// (`h2` for gRPC; `h2` and `http/1.1` for OTLP/HTTP).
pub fn client_tls(cfg: &TlsClientConfig, alpn: &[&[u8]]) -> Result<ClientTls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = cfg.versions().map_err(|e| format!("tls.{e}"))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls: {e}"))?;
    let builder = if cfg.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else if let Some((pem, what)) = pem_of(&cfg.ca_file, &cfg.ca_pem, "ca_file", "ca_pem")? {
        let mut roots = RootCertStore::empty();
        for cert in certs_in(&pem, &what)? {
            roots.add(cert).map_err(|e| format!("{what}: invalid certificate: {e}"))?;
        }
        builder.with_root_certificates(roots)
    } else {
        use hyper_rustls::ConfigBuilderExt;
        builder.with_native_roots().map_err(|e| {
            format!("tls: cannot load the system CA certificates ({e}); set tls.ca_file or use an http:// endpoint")
        })?
    };
    if (cfg.cert_file.is_some() || cfg.cert_pem.is_some()) != (cfg.key_file.is_some() || cfg.key_pem.is_some()) {
        return Err("tls: cert_file and key_file must be set together".to_string());
    }
    let cert = pem_of(&cfg.cert_file, &cfg.cert_pem, "cert_file", "cert_pem")?;
    let key = pem_of(&cfg.key_file, &cfg.key_pem, "key_file", "key_pem")?;
    let mut config = match (cert, key) {
        (Some((cert, cert_what)), Some((key, key_what))) => {
            let certs = certs_in(&cert, &cert_what)?;
            let key = key_in(&key, &key_what)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("tls: client certificate ({cert_what}) and key ({key_what}) do not fit: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("tls: cert_file and key_file must be set together".to_string()),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server_name = match &cfg.server_name_override {
        Some(name) if !name.is_empty() => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| format!("tls.server_name_override {name:?} is not a valid name: {e}"))?,
        ),
        _ => None,
    };
    Ok(ClientTls { config: Arc::new(config), server_name })
}

/// A configuration that trusts no server: for connectors that must be able to
/// speak TLS by type but are only ever pointed at plain-text URLs.
pub fn no_roots_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => b.with_root_certificates(RootCertStore::empty()).with_no_client_auth(),
        // The ring provider always supports the default versions.
        Err(_) => unreachable!("ring supports the default TLS versions"),
    }
}

/// The PEM of a file setting or of its inline twin, and how to name it in
/// messages (`tls.ca_file /path` or `tls.ca_pem`).
fn pem_of(
    file: &Option<String>,
    inline: &Option<String>,
    f: &str,
    p: &str,
) -> Result<Option<(Vec<u8>, String)>, String> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(format!("tls: {f} and {p} are both set")),
        (Some(path), None) => {
            let pem = std::fs::read(path).map_err(|e| format!("tls.{f}: cannot read {path}: {e}"))?;
            Ok(Some((pem, format!("tls.{f} {path}"))))
        }
        (None, Some(text)) => Ok(Some((text.as_bytes().to_vec(), format!("tls.{p}")))),
        (None, None) => Ok(None),
    }
}

fn certs_in(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: holds no PEM certificate"));
    }
    Ok(certs)
}

fn key_in(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| format!("{what}: not valid PEM: {e}"))?
        .ok_or_else(|| format!("{what}: holds no private key"))
}

/// `insecure_skip_verify`: any certificate is accepted, but handshake
/// signatures are still checked so the connection is at least consistent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_ca_file_is_a_clear_error() {
        let cfg = TlsClientConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let err = client_tls(&cfg, &[b"h2"]).unwrap_err();
        assert!(err.contains("tls.ca_file") && err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn cert_without_key_is_rejected() {
        let cfg = TlsClientConfig { insecure_skip_verify: true, cert_file: Some("c.pem".into()), ..Default::default() };
        assert!(client_tls(&cfg, &[b"h2"]).unwrap_err().contains("together"));
    }

    #[test]
    fn skip_verify_needs_no_roots() {
        let cfg = TlsClientConfig {
            insecure_skip_verify: true,
            server_name_override: Some("backend.internal".into()),
            ..Default::default()
        };
        let tls = client_tls(&cfg, &[b"h2"]).unwrap();
        assert_eq!(tls.config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(tls.server_name.is_some());
    }

    #[test]
    fn min_and_max_version_choose_what_is_offered() {
        let cfg = |min: Option<&str>, max: Option<&str>| TlsClientConfig {
            insecure_skip_verify: true,
            min_version: min.map(str::to_string),
            max_version: max.map(str::to_string),
            ..Default::default()
        };
        let v = |c: &TlsClientConfig| c.versions().unwrap().iter().map(|v| v.version).collect::<Vec<_>>();
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v(&cfg(None, None)), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(v(&cfg(Some("1.3"), None)), vec![TLSv1_3]);
        assert_eq!(v(&cfg(Some(""), Some("1.2"))), vec![TLSv1_2]);
        assert!(client_tls(&cfg(Some("1.3"), None), &[b"h2"]).is_ok());
        assert!(cfg(Some("1.3"), Some("1.2")).versions().unwrap_err().starts_with("max_version: "));
        assert!(cfg(Some("1.1"), None).versions().unwrap_err().contains("not supported"));
    }

    #[test]
    fn inline_pem_stands_for_its_file() {
        let ca = include_str!("testdata/ca.pem");
        let cfg = TlsClientConfig { ca_pem: Some(ca.into()), ..Default::default() };
        assert!(client_tls(&cfg, &[b"h2"]).is_ok());
        let cfg = TlsClientConfig { ca_pem: Some("not pem".into()), ..Default::default() };
        assert_eq!(client_tls(&cfg, &[b"h2"]).unwrap_err(), "tls.ca_pem: holds no PEM certificate");
        let cfg = TlsClientConfig { ca_pem: Some(ca.into()), ca_file: Some("x".into()), ..Default::default() };
        assert!(client_tls(&cfg, &[b"h2"]).unwrap_err().contains("both set"));
    }
}
