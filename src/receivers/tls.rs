//! TLS for receiver listeners: the Collector's server `tls:` block
//! (`configtls.ServerConfig`) turned into a rustls server configuration.
//!
//! Guarantees: everything that can be wrong with the settings (unreadable or
//! malformed PEM, a key that does not belong to the certificate, an unknown
//! version) is found by [`server_tls`], which config validation and receiver
//! start both call, and is reported against the field it comes from. With
//! `client_ca_file` set, every client must present a certificate that chains
//! to one of its CAs (mTLS). Settings sluice does not implement are refused,
//! never ignored.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `tls:` under `protocols.grpc` / `protocols.http`, field for field the Collector's.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// PEM certificate chain the server presents.
    pub cert_file: Option<String>,
    /// The same, inline.
    pub cert_pem: Option<String>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<String>,
    /// `key_file` inline (PEM text).
    #[schemars(extend("x-sensitive" = true))]
    pub key_pem: Option<String>,
    /// CA certificates client certificates must chain to; setting it requires
    /// a client certificate on every connection.
    pub client_ca_file: Option<String>,
    /// Lowest TLS version accepted: "1.2" (default) or "1.3".
    pub min_version: Option<String>,
    /// Highest TLS version accepted: "1.2" or "1.3" (default).
    pub max_version: Option<String>,
    /// Refused: certificates are read once, at start.
    pub reload_interval: Option<crate::config::Duration>,
    /// Refused, as `reload_interval`.
    pub client_ca_file_reload: bool,
    /// Refused: rustls offers only its own safe suites.
    pub cipher_suites: Vec<String>,
    /// Refused: a server verifies clients with `client_ca_file`.
    pub ca_file: Option<String>,
    /// Refused, as `ca_file`.
    pub ca_pem: Option<String>,
    /// The Collector's curve, system-pool and TPM settings: not implemented.
    pub curve_preferences: Option<crate::config::component::CollectorOnly>,
    pub include_system_ca_certs_pool: Option<crate::config::component::CollectorOnly>,
    pub tpm_config: Option<crate::config::component::CollectorOnly>,
}

/// What is wrong with a `tls:` block: the field (below `tls`), the problem and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsSettingError {
    pub field: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

fn err(field: &'static str, message: impl Into<String>, hint: Option<&str>) -> TlsSettingError {
    TlsSettingError { field, message: message.into(), hint: hint.map(str::to_string) }
}

/// How long a client may take to complete the TLS handshake before the
/// connection is closed (and counted as a failed handshake), unless the
/// listener has a shorter bound for a request's first bytes (HTTP's
/// `read_header_timeout`).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Builds the rustls server configuration; `alpn` lists the protocols the
/// listener speaks, most preferred first (`h2` for gRPC; `h2`, `http/1.1` for HTTP).
pub fn server_tls(cfg: &TlsServerConfig, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsSettingError> {
    refuse_unsupported(cfg)?;
    let versions = versions(cfg)?;
    let certs = match (&cfg.cert_file, &cfg.cert_pem) {
        (Some(_), Some(_)) => {
            return Err(err("cert_pem", "cert_file and cert_pem are both set", Some("keep one of them")));
        }
        (Some(path), None) => certs_from(&read(path, "cert_file")?, "cert_file", path)?,
        (None, Some(pem)) => certs_from(pem.as_bytes(), "cert_pem", "cert_pem")?,
        (None, None) => {
            return Err(err(
                "cert_file",
                "tls needs a server certificate: cert_file is not set",
                Some("set cert_file and key_file to PEM files, or remove tls to serve plain text"),
            ));
        }
    };
    let key = match (&cfg.key_file, &cfg.key_pem) {
        (Some(_), Some(_)) => {
            return Err(err("key_pem", "key_file and key_pem are both set", Some("keep one of them")))
        }
        (Some(path), None) => key_from(&read(path, "key_file")?, "key_file", path)?,
        (None, Some(pem)) => key_from(pem.as_bytes(), "key_pem", "key_pem")?,
        (None, None) => {
            return Err(err(
                "key_file",
                "tls needs the certificate's private key: key_file is not set",
                Some("set key_file to the PEM private key of cert_file"),
            ));
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| err("min_version", format!("unsupported TLS versions: {e}"), None))?;
    let builder = match &cfg.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certs_from(&read(path, "client_ca_file")?, "client_ca_file", path)? {
                roots.add(cert).map_err(|e| {
                    err("client_ca_file", format!("{path}: invalid CA certificate: {e}"), Some(CERT_HINT))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("client_ca_file", format!("{path}: cannot verify clients with it: {e}"), None))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        let hint = "key_file must hold the private key of the first certificate in cert_file";
        match e {
            rustls::Error::InconsistentKeys(_) => {
                err("key_file", "the private key does not belong to the certificate in cert_file", Some(hint))
            }
            other => err("key_file", format!("the certificate and key cannot be used: {other}"), Some(hint)),
        }
    })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

const CERT_HINT: &str = "give a PEM file with -----BEGIN CERTIFICATE----- blocks";

fn refuse_unsupported(cfg: &TlsServerConfig) -> Result<(), TlsSettingError> {
    if cfg.reload_interval.is_some() {
        return Err(err(
            "reload_interval",
            "reload_interval is not supported: certificates are read once, at start",
            Some("remove it; restart the agent after renewing certificates"),
        ));
    }
    if cfg.client_ca_file_reload {
        return Err(err(
            "client_ca_file_reload",
            "client_ca_file_reload is not supported: the client CA file is read once, at start",
            Some("remove it; restart the agent after changing the CA file"),
        ));
    }
    if !cfg.cipher_suites.is_empty() {
        return Err(err(
            "cipher_suites",
            "cipher_suites cannot be chosen: only rustls's safe default suites are offered",
            Some("remove cipher_suites"),
        ));
    }
    for (field, set) in [("ca_file", cfg.ca_file.is_some()), ("ca_pem", cfg.ca_pem.is_some())] {
        if set {
            return Err(err(
                field,
                format!("{field} has no use on a server"),
                Some("to require and verify client certificates (mTLS), set client_ca_file"),
            ));
        }
    }
    Ok(())
}

fn version(field: &'static str, v: &str) -> Result<&'static SupportedProtocolVersion, TlsSettingError> {
    match v {
        "1.2" => Ok(&rustls::version::TLS12),
        "1.3" => Ok(&rustls::version::TLS13),
        "1.0" | "1.1" => Err(err(
            field,
            format!("TLS {v} is not supported: it is obsolete (RFC 8996)"),
            Some("use \"1.2\" or \"1.3\""),
        )),
        other => Err(err(field, format!("unknown TLS version \"{other}\""), Some("use \"1.2\" or \"1.3\""))),
    }
}

fn versions(cfg: &TlsServerConfig) -> Result<&'static [&'static SupportedProtocolVersion], TlsSettingError> {
    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.is_empty())
    }
    let min = version("min_version", nonempty(&cfg.min_version).unwrap_or("1.2"))?;
    let max = version("max_version", nonempty(&cfg.max_version).unwrap_or("1.3"))?;
    const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    const ONLY_13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const ONLY_12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    match (min.version, max.version) {
        (rustls::ProtocolVersion::TLSv1_2, rustls::ProtocolVersion::TLSv1_3) => Ok(BOTH),
        (rustls::ProtocolVersion::TLSv1_3, rustls::ProtocolVersion::TLSv1_3) => Ok(ONLY_13),
        (rustls::ProtocolVersion::TLSv1_2, rustls::ProtocolVersion::TLSv1_2) => Ok(ONLY_12),
        _ => Err(err("max_version", "max_version is below min_version", None)),
    }
}

fn read(path: &str, field: &'static str) -> Result<Vec<u8>, TlsSettingError> {
    std::fs::read(path).map_err(|e| {
        err(field, format!("cannot read {path}: {e}"), Some("give the path of a PEM file the agent's user can read"))
    })
}

fn certs_from(pem: &[u8], field: &'static str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsSettingError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(field, format!("{what} is not valid PEM: {e}"), Some(CERT_HINT)))?;
    if certs.is_empty() {
        return Err(err(field, format!("{what} holds no PEM certificate"), Some(CERT_HINT)));
    }
    Ok(certs)
}

fn key_from(pem: &[u8], field: &'static str, what: &str) -> Result<PrivateKeyDer<'static>, TlsSettingError> {
    let hint = Some("give a PEM private key (PKCS#8, PKCS#1 or SEC1), e.g. -----BEGIN PRIVATE KEY-----");
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| err(field, format!("{what} is not valid PEM: {e}"), hint))?
        .ok_or_else(|| err(field, format!("{what} holds no private key"), hint))
}

#[cfg(test)]
pub(crate) mod test_certs {
    //! Certificates made at test time, so no private key lives in the repository.

    /// A CA, a server certificate for 127.0.0.1/localhost and a client
    /// certificate, both issued by the CA, written as PEM files into `dir`.
    pub struct TestPki {
        pub ca_pem: String,
        pub ca_file: String,
        pub server_cert_file: String,
        pub server_key_file: String,
        pub client_cert_file: String,
        pub client_key_file: String,
        pub other_key_file: String,
    }

    pub fn make(dir: &std::path::Path) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL and BoringSSL take a leaf whose issuer equals its subject for self-signed.
        ca_params.distinguished_name.push(DnType::CommonName, "sluice test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        sp.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        sp.distinguished_name.push(DnType::CommonName, "localhost");
        let server = sp.signed_by(&server_key, &ca, &ca_key).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = {
            let mut cp = CertificateParams::new(vec!["client".to_string()]).unwrap();
            cp.distinguished_name.push(DnType::CommonName, "client");
            cp.signed_by(&client_key, &ca, &ca_key).unwrap()
        };
        let other_key = KeyPair::generate().unwrap();
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_string()
        };
        TestPki {
            ca_pem: ca.pem(),
            ca_file: write("ca.pem", ca.pem()),
            server_cert_file: write("server.pem", server.pem()),
            server_key_file: write("server-key.pem", server_key.serialize_pem()),
            client_cert_file: write("client.pem", client.pem()),
            client_key_file: write("client-key.pem", client_key.serialize_pem()),
            other_key_file: write("other-key.pem", other_key.serialize_pem()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_certs::make;
    use super::*;

    fn cfg(cert: &str, key: &str) -> TlsServerConfig {
        TlsServerConfig { cert_file: Some(cert.into()), key_file: Some(key.into()), ..Default::default() }
    }

    #[test]
    fn loads_cert_and_key_with_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make(dir.path());
        let tls = server_tls(&cfg(&pki.server_cert_file, &pki.server_key_file), &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let mtls = TlsServerConfig {
            client_ca_file: Some(pki.ca_file.clone()),
            ..cfg(&pki.server_cert_file, &pki.server_key_file)
        };
        server_tls(&mtls, &[b"h2"]).unwrap();
        let inline = TlsServerConfig {
            cert_pem: Some(std::fs::read_to_string(&pki.server_cert_file).unwrap()),
            key_pem: Some(std::fs::read_to_string(&pki.server_key_file).unwrap()),
            ..Default::default()
        };
        server_tls(&inline, &[b"h2"]).unwrap();
    }

    #[test]
    fn each_problem_names_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make(dir.path());
        let not_pem = dir.path().join("junk.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let junk = not_pem.to_str().unwrap();
        let (cert, key) = (pki.server_cert_file.as_str(), pki.server_key_file.as_str());
        let cases: Vec<(TlsServerConfig, &str, &str)> = vec![
            (cfg("/nonexistent/cert.pem", key), "cert_file", "cannot read /nonexistent/cert.pem: "),
            (cfg(junk, key), "cert_file", "holds no PEM certificate"),
            (cfg(cert, junk), "key_file", "holds no private key"),
            (cfg(cert, &pki.other_key_file), "key_file", "the private key does not belong to the certificate"),
            (cfg(key, key), "cert_file", "holds no PEM certificate"),
            (TlsServerConfig { key_file: Some(key.into()), ..Default::default() }, "cert_file", "cert_file is not set"),
            (TlsServerConfig { cert_file: Some(cert.into()), ..Default::default() }, "key_file", "key_file is not set"),
            (
                TlsServerConfig { client_ca_file: Some(junk.into()), ..cfg(cert, key) },
                "client_ca_file",
                "no PEM certificate",
            ),
            (
                TlsServerConfig { min_version: Some("1.1".into()), ..cfg(cert, key) },
                "min_version",
                "TLS 1.1 is not supported",
            ),
            (
                TlsServerConfig { min_version: Some("1.4".into()), ..cfg(cert, key) },
                "min_version",
                "unknown TLS version \"1.4\"",
            ),
            (
                TlsServerConfig { min_version: Some("1.3".into()), max_version: Some("1.2".into()), ..cfg(cert, key) },
                "max_version",
                "below min_version",
            ),
            (
                TlsServerConfig { reload_interval: Some(crate::config::Duration::from_secs(60)), ..cfg(cert, key) },
                "reload_interval",
                "reload_interval is not supported",
            ),
            (TlsServerConfig { ca_file: Some(pki.ca_file.clone()), ..cfg(cert, key) }, "ca_file", "no use on a server"),
        ];
        for (c, field, message) in cases {
            let e = server_tls(&c, &[b"h2"]).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
            assert!(e.message.contains(message), "{field}: {e:?}");
            assert!(e.hint.is_some() || field == "max_version", "{e:?}");
        }
    }

    #[test]
    fn versions_follow_min_and_max() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make(dir.path());
        let c = |min: Option<&str>, max: Option<&str>| TlsServerConfig {
            min_version: min.map(str::to_string),
            max_version: max.map(str::to_string),
            ..cfg(&pki.server_cert_file, &pki.server_key_file)
        };
        let v = |c: &TlsServerConfig| versions(c).unwrap().iter().map(|v| v.version).collect::<Vec<_>>();
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v(&c(None, None)), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(v(&c(Some("1.3"), None)), vec![TLSv1_3]);
        assert_eq!(v(&c(Some(""), Some("1.2"))), vec![TLSv1_2]);
    }
}
