//! Server authenticators: the `bearertokenauth` and `basicauth` extensions,
//! which a receiver protocol uses through `auth: {authenticator: <id>}`.
//!
//! Guarantees: credentials are checked from the request headers alone,
//! before the body is read; tokens and password digests are compared in
//! constant time; everything that can be wrong with the settings (no token,
//! an unreadable token file, a bad htpasswd line) is found by
//! [`Authenticator::build`], which config validation and start both call.
//!
//! `basicauth` under attack ([`Authenticator::verify`]): bcrypt runs on the
//! blocking pool, at most half the CPUs at once, never on the async
//! workers; credentials that verified are remembered (a bounded cache), so
//! a client that logged in once pays no bcrypt again; an unknown user costs
//! a bcrypt at the table's highest cost like a known one (no user
//! enumeration by timing); a client address with [`FAILURE_LIMIT`] failed
//! checks within [`FAILURE_WINDOW`] is refused without a check
//! (`reason="throttled"`) until the window ends.

pub mod config;
pub mod htpasswd;

use super::{ExtensionFactory, ExtensionSpec, ExtensionUse};
use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use config::{BasicAuthConfig, BearerTokenAuthConfig};
use htpasswd::Htpasswd;
use http::{HeaderMap, HeaderName, HeaderValue};
use ring::digest;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Failed checks from one client address within [`FAILURE_WINDOW`] after
/// which its requests are refused unchecked until the window ends.
pub const FAILURE_LIMIT: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// Client addresses whose failures are tracked at once.
const TRACKED_CLIENTS: usize = 4096;

pub static BEARER_FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "bearertokenauth",
        aliases: &[],
        signals: &[],
        description: "receivers require a bearer token (auth: {authenticator: bearertokenauth})",
        example: "filename: /etc/sluice/token\n",
    },
    settings: SettingsType::of::<BearerTokenAuthConfig>(),
    compile: |input| {
        let cfg: BearerTokenAuthConfig = input.typed()?;
        input.check(|c| config::bearertokenauth(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

pub static BASIC_FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "basicauth",
        aliases: &[],
        signals: &[],
        description: "receivers require HTTP Basic credentials from an htpasswd table",
        example: "htpasswd:\n  file: /etc/sluice/htpasswd\n",
    },
    settings: SettingsType::of::<BasicAuthConfig>(),
    compile: |input| {
        let cfg: BasicAuthConfig = input.typed()?;
        input.check(|c| config::basicauth(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExtensionSpec for BearerTokenAuthConfig {
    fn provides(&self) -> Option<ExtensionUse> {
        Some(ExtensionUse::Authenticator)
    }

    fn authenticator(&self) -> Option<Result<Authenticator, AuthSettingError>> {
        Some(Authenticator::bearer(self))
    }

    fn files(&self) -> Vec<String> {
        self.filename.iter().cloned().collect()
    }
}

impl ExtensionSpec for BasicAuthConfig {
    fn provides(&self) -> Option<ExtensionUse> {
        Some(ExtensionUse::Authenticator)
    }

    fn authenticator(&self) -> Option<Result<Authenticator, AuthSettingError>> {
        Some(Authenticator::basic(self))
    }

    fn files(&self) -> Vec<String> {
        self.htpasswd.as_ref().and_then(|h| h.file.clone()).into_iter().collect()
    }
}

/// Why a request's credentials were refused; the `reason` label of
/// `sluice_receiver_auth_failures_total` (see [`AuthFailure::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential header, or an empty one.
    Missing,
    /// A header in the wrong scheme or not decodable.
    Malformed,
    /// Well-formed credentials that match no token or user.
    Invalid,
    /// Not checked: the client failed too many times lately.
    Throttled,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 4] =
        [AuthFailure::Missing, AuthFailure::Malformed, AuthFailure::Invalid, AuthFailure::Throttled];

    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_credentials",
            AuthFailure::Malformed => "malformed_credentials",
            AuthFailure::Invalid => "invalid_credentials",
            AuthFailure::Throttled => "throttled",
        }
    }

    /// What the client is told; it never echoes what was sent.
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing or empty authorization header",
            AuthFailure::Malformed => "authorization header is not in the expected scheme",
            AuthFailure::Invalid => "invalid credentials",
            AuthFailure::Throttled => "too many failed attempts from this address; retry later",
        }
    }
}

/// A problem with an authenticator extension's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthSettingError {
    /// The field, below the extension (e.g. `filename`, `htpasswd::file`).
    pub field: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

fn setting(field: &'static str, message: impl Into<String>, hint: &str) -> AuthSettingError {
    AuthSettingError { field, message: message.into(), hint: Some(hint.to_string()) }
}

/// A built authenticator, ready to check requests.
#[derive(Debug)]
pub enum Authenticator {
    Bearer(BearerAuth),
    Basic(BasicAuth),
}

impl Authenticator {
    pub fn bearer(cfg: &BearerTokenAuthConfig) -> Result<Authenticator, AuthSettingError> {
        BearerAuth::build(cfg).map(Authenticator::Bearer)
    }

    pub fn basic(cfg: &BasicAuthConfig) -> Result<Authenticator, AuthSettingError> {
        BasicAuth::build(cfg).map(Authenticator::Basic)
    }

    /// Checks the request's credentials.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        match self {
            Authenticator::Bearer(b) => b.check(headers),
            Authenticator::Basic(b) => b.check(headers),
        }
    }

    /// As [`Authenticator::check`], with a slow check (bcrypt) on the
    /// blocking pool and failures counted against `peer` (see the module doc).
    pub async fn verify(
        self: &std::sync::Arc<Self>,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(), AuthFailure> {
        let Authenticator::Basic(basic) = &**self else {
            return self.check(headers);
        };
        let Some(login) = basic.parse(headers)? else {
            return Ok(());
        };
        if peer.is_some_and(|ip| basic.throttled(ip)) {
            return Err(AuthFailure::Throttled);
        }
        let result = if basic.table.is_slow(&login.user) {
            let Ok(slot) = std::sync::Arc::clone(&basic.slots).acquire_owned().await else {
                return Err(AuthFailure::Invalid);
            };
            let me = std::sync::Arc::clone(self);
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                match &*me {
                    Authenticator::Basic(b) => b.finish(&login),
                    Authenticator::Bearer(_) => Err(AuthFailure::Invalid),
                }
            })
            .await
            .unwrap_or(Err(AuthFailure::Invalid))
        } else {
            basic.finish(&login)
        };
        if let (Err(AuthFailure::Invalid), Some(ip)) = (result, peer) {
            basic.failed(ip);
        }
        result
    }

    /// The `WWW-Authenticate` challenge of an HTTP 401.
    pub fn challenge(&self) -> HeaderValue {
        match self {
            Authenticator::Bearer(b) => b.challenge.clone(),
            Authenticator::Basic(_) => HeaderValue::from_static("Basic realm=\"sluice\", charset=\"UTF-8\""),
        }
    }
}

/// Builds the authenticator extension `name` (a component ID) from the
/// configured extensions. Config validation has made sure it exists, is an
/// authenticator and is started; this still says so if not.
pub fn authenticator_for(
    extensions: &std::collections::BTreeMap<crate::config::ComponentId, std::sync::Arc<dyn ExtensionSpec>>,
    name: &str,
) -> Result<Authenticator, String> {
    let id = crate::config::ComponentId::parse(name)?;
    match extensions.get(&id).map(|e| e.authenticator()) {
        Some(Some(built)) => built.map_err(|e| format!("extensions::{name}::{}: {}", e.field, e.message)),
        Some(None) => Err(format!("extension \"{name}\" is not an authenticator")),
        None => Err(format!("undefined extension \"{name}\"")),
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// `bearertokenauth`: the header must be `<scheme> <token>` for one of the tokens.
#[derive(Debug)]
pub struct BearerAuth {
    header: HeaderName,
    /// `"<scheme> "`, or empty for a bare token.
    prefix: String,
    /// SHA-256 of each accepted token: comparing fixed-size digests keeps the
    /// comparison's time independent of the tokens' lengths too.
    digests: Vec<[u8; 32]>,
    challenge: HeaderValue,
}

impl BearerAuth {
    fn build(cfg: &BearerTokenAuthConfig) -> Result<BearerAuth, AuthSettingError> {
        let header = HeaderName::from_bytes(cfg.header.as_bytes()).map_err(|_| {
            setting("header", format!("\"{}\" is not a valid header name", cfg.header), "e.g. Authorization")
        })?;
        if cfg.token.is_some() && !cfg.tokens.is_empty() {
            return Err(setting("tokens", "token and tokens are both set", "list every token under tokens"));
        }
        let mut tokens: Vec<String> = cfg.token.iter().chain(&cfg.tokens).cloned().collect();
        if let Some(path) = &cfg.filename {
            if !tokens.is_empty() {
                return Err(setting(
                    "filename",
                    "filename is set together with token or tokens",
                    "keep either the file or the inline tokens",
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                setting("filename", format!("cannot read {path}: {e}"), "give a file the agent's user can read")
            })?;
            tokens = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            if tokens.is_empty() {
                return Err(setting("filename", format!("{path} holds no token"), "write the token on one line"));
            }
        }
        if tokens.is_empty() {
            return Err(setting("token", "no token is configured", "set token, tokens or filename"));
        }
        if let Some(i) = tokens.iter().position(|t| t.is_empty() || HeaderValue::from_str(t).is_err()) {
            return Err(setting(
                if cfg.token.is_some() { "token" } else { "tokens" },
                format!("token {} is empty or not a valid header value", i + 1),
                "tokens are non-empty visible ASCII",
            ));
        }
        let scheme = cfg.scheme.trim();
        let challenge = if scheme.is_empty() { "Bearer".to_string() } else { scheme.to_string() };
        let challenge = HeaderValue::from_str(&format!("{challenge} realm=\"sluice\""))
            .map_err(|_| setting("scheme", format!("\"{scheme}\" is not a valid scheme"), "e.g. Bearer"))?;
        Ok(BearerAuth {
            header,
            prefix: if scheme.is_empty() { String::new() } else { format!("{scheme} ") },
            digests: tokens.iter().map(|t| sha256(t.as_bytes())).collect(),
            challenge,
        })
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        let value = headers.get(&self.header).map(HeaderValue::as_bytes).unwrap_or_default();
        if value.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let token = if self.prefix.is_empty() {
            value
        } else {
            // The scheme is case-insensitive (RFC 9110 §11.1).
            let n = self.prefix.len();
            if value.len() <= n || !value[..n].eq_ignore_ascii_case(self.prefix.as_bytes()) {
                return Err(AuthFailure::Malformed);
            }
            &value[n..]
        };
        let got = sha256(token);
        // Every token is compared, so the time does not tell which one matched.
        let matched = self.digests.iter().fold(false, |m, want| constant_time_eq(&got, want) | m);
        if matched {
            Ok(())
        } else {
            Err(AuthFailure::Invalid)
        }
    }
}

/// How many verified credentials [`BasicAuth`] remembers, so a client
/// sending the same credentials on every request does not pay a bcrypt
/// verification (tens of milliseconds) each time.
const VERIFIED_CACHE_SIZE: usize = 1024;

/// `basicauth`: `Authorization: Basic base64(user:password)` checked against htpasswd.
#[derive(Debug)]
pub struct BasicAuth {
    table: Htpasswd,
    /// SHA-256 of `Authorization` values that verified. Cleared when full:
    /// it only saves work, it never decides anything the table would not.
    /// Read-locked on every request, write-locked only on a first login.
    verified: RwLock<std::collections::HashSet<[u8; 32]>>,
    /// bcrypt verifications running at once on the blocking pool.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Failed checks per client address: (count, start of its window).
    failures: Mutex<std::collections::HashMap<IpAddr, (u32, Instant)>>,
}

/// Credentials taken from a request, not yet checked.
struct Login {
    key: [u8; 32],
    user: String,
    password: String,
}

impl BasicAuth {
    fn build(cfg: &BasicAuthConfig) -> Result<BasicAuth, AuthSettingError> {
        if cfg.client_auth.is_some() {
            return Err(setting(
                "client_auth",
                "client_auth is not supported: sluice uses basicauth only to check requests to its receivers",
                "for an exporter, send the credentials with headers: {Authorization: \"Basic ...\"}",
            ));
        }
        let hint = "e.g. htpasswd: {file: /etc/sluice/htpasswd}, written with `htpasswd -B`";
        let Some(h) = &cfg.htpasswd else {
            return Err(setting("htpasswd", "htpasswd is not set: no user could ever log in", hint));
        };
        let mut table = Htpasswd::default();
        if let Some(path) = &h.file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                setting("htpasswd::file", format!("cannot read {path}: {e}"), "give a file the agent's user can read")
            })?;
            table = Htpasswd::parse(&text, path).map_err(|e| setting("htpasswd::file", e, hint))?;
        }
        if let Some(text) = &h.inline {
            table.extend(Htpasswd::parse(text, "inline").map_err(|e| setting("htpasswd::inline", e, hint))?);
        }
        if table.is_empty() {
            return Err(setting("htpasswd", "the htpasswd table holds no user", hint));
        }
        let slots = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        Ok(BasicAuth {
            table: table.with_decoy(),
            verified: RwLock::new(Default::default()),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots)),
            failures: Mutex::new(Default::default()),
        })
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), AuthFailure> {
        match self.parse(headers)? {
            None => Ok(()),
            Some(login) => self.finish(&login),
        }
    }

    fn throttled(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(&ip).is_some_and(|(n, since)| *n >= FAILURE_LIMIT && since.elapsed() < FAILURE_WINDOW)
    }

    fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= TRACKED_CLIENTS && !failures.contains_key(&ip) {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= TRACKED_CLIENTS {
                failures.clear();
            }
        }
        let now = Instant::now();
        let entry = failures.entry(ip).or_insert((0, now));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// The credentials of a request; `None` when they verified before.
    fn parse(&self, headers: &HeaderMap) -> Result<Option<Login>, AuthFailure> {
        use base64::Engine as _;
        let value = headers.get(http::header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
        if value.is_empty() {
            return Err(AuthFailure::Missing);
        }
        if value.len() <= 6 || !value[..6].eq_ignore_ascii_case(b"basic ") {
            return Err(AuthFailure::Malformed);
        }
        let key = sha256(value);
        if self.verified.read().map(|v| v.contains(&key)).unwrap_or(false) {
            return Ok(None);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value[6..].trim_ascii())
            .map_err(|_| AuthFailure::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
        Ok(Some(Login { key, user: user.to_string(), password: password.to_string() }))
    }

    /// Checks credentials against the table and remembers them when they verify.
    fn finish(&self, login: &Login) -> Result<(), AuthFailure> {
        if !self.table.verify(&login.user, &login.password) {
            return Err(AuthFailure::Invalid);
        }
        if let Ok(mut v) = self.verified.write() {
            if v.len() >= VERIFIED_CACHE_SIZE {
                v.clear();
            }
            v.insert(login.key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::config::HtpasswdConfig;
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn bearer(cfg: BearerTokenAuthConfig) -> Authenticator {
        Authenticator::bearer(&cfg).unwrap()
    }

    #[test]
    fn bearer_token_checks() {
        let a = bearer(BearerTokenAuthConfig { token: Some("s3cret".into()), ..Default::default() });
        assert_eq!(a.check(&headers(&[("authorization", "Bearer s3cret")])), Ok(()));
        assert_eq!(a.check(&headers(&[("authorization", "bearer s3cret")])), Ok(()));
        assert_eq!(a.check(&headers(&[])), Err(AuthFailure::Missing));
        assert_eq!(a.check(&headers(&[("authorization", "")])), Err(AuthFailure::Missing));
        assert_eq!(a.check(&headers(&[("authorization", "Basic s3cret")])), Err(AuthFailure::Malformed));
        assert_eq!(a.check(&headers(&[("authorization", "s3cret")])), Err(AuthFailure::Malformed));
        assert_eq!(a.check(&headers(&[("authorization", "Bearer s3cre")])), Err(AuthFailure::Invalid));
        assert_eq!(a.check(&headers(&[("authorization", "Bearer s3cret ")])), Err(AuthFailure::Invalid));
        assert_eq!(a.challenge(), "Bearer realm=\"sluice\"");
    }

    #[test]
    fn several_tokens_custom_header_and_bare_scheme() {
        let a = bearer(BearerTokenAuthConfig {
            header: "X-Api-Key".into(),
            scheme: String::new(),
            tokens: vec!["old".into(), "new".into()],
            ..Default::default()
        });
        assert_eq!(a.check(&headers(&[("x-api-key", "old")])), Ok(()));
        assert_eq!(a.check(&headers(&[("x-api-key", "new")])), Ok(()));
        assert_eq!(a.check(&headers(&[("x-api-key", "newer")])), Err(AuthFailure::Invalid));
        assert_eq!(a.check(&headers(&[("authorization", "new")])), Err(AuthFailure::Missing));
    }

    #[test]
    fn token_file_is_read_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let a = bearer(BearerTokenAuthConfig { filename: Some(path.to_str().unwrap().into()), ..Default::default() });
        assert_eq!(a.check(&headers(&[("authorization", "Bearer from-file")])), Ok(()));
        std::fs::write(&path, "\n").unwrap();
        let e = Authenticator::bearer(&BearerTokenAuthConfig {
            filename: Some(path.to_str().unwrap().into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!((e.field, e.message.ends_with("holds no token")), ("filename", true), "{e:?}");
    }

    #[test]
    fn bearer_setting_errors() {
        let cases = [
            (BearerTokenAuthConfig::default(), "token", "no token is configured"),
            (
                BearerTokenAuthConfig { token: Some("a".into()), tokens: vec!["b".into()], ..Default::default() },
                "tokens",
                "token and tokens are both set",
            ),
            (
                BearerTokenAuthConfig { token: Some("a".into()), filename: Some("/x".into()), ..Default::default() },
                "filename",
                "filename is set together with token or tokens",
            ),
            (
                BearerTokenAuthConfig { filename: Some("/nonexistent/token".into()), ..Default::default() },
                "filename",
                "cannot read /nonexistent/token: ",
            ),
            (BearerTokenAuthConfig { token: Some(String::new()), ..Default::default() }, "token", "token 1 is empty"),
            (
                BearerTokenAuthConfig { token: Some("a".into()), header: "bad header".into(), ..Default::default() },
                "header",
                "not a valid header name",
            ),
        ];
        for (cfg, field, message) in cases {
            let e = Authenticator::bearer(&cfg).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
            assert!(e.message.contains(message), "{e:?}");
            assert!(e.hint.is_some());
        }
    }

    fn basic_header(user: &str, password: &str) -> HeaderMap {
        use base64::Engine as _;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers(&[("authorization", &format!("Basic {v}"))])
    }

    #[test]
    fn basic_auth_file_and_inline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let bcrypt_hash = bcrypt::hash("hunter2", 4).unwrap().replacen("$2b$", "$2y$", 1);
        std::fs::write(&path, format!("bob:{bcrypt_hash}\n")).unwrap();
        let a = Authenticator::basic(&BasicAuthConfig {
            htpasswd: Some(HtpasswdConfig {
                file: Some(path.to_str().unwrap().into()),
                inline: Some("alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=".into()),
            }),
            client_auth: None,
        })
        .unwrap();
        assert_eq!(a.check(&basic_header("alice", "secret")), Ok(()));
        assert_eq!(a.check(&basic_header("bob", "hunter2")), Ok(()));
        // The second time comes from the cache of verified credentials; same answer.
        assert_eq!(a.check(&basic_header("bob", "hunter2")), Ok(()));
        assert_eq!(a.check(&basic_header("bob", "hunter3")), Err(AuthFailure::Invalid));
        assert_eq!(a.check(&basic_header("mallory", "secret")), Err(AuthFailure::Invalid));
        assert_eq!(a.check(&headers(&[])), Err(AuthFailure::Missing));
        assert_eq!(a.check(&headers(&[("authorization", "Bearer x")])), Err(AuthFailure::Malformed));
        assert_eq!(a.check(&headers(&[("authorization", "Basic !!!")])), Err(AuthFailure::Malformed));
        assert_eq!(a.check(&headers(&[("authorization", "Basic bm9jb2xvbg==")])), Err(AuthFailure::Malformed));
        assert_eq!(a.challenge(), "Basic realm=\"sluice\", charset=\"UTF-8\"");
    }

    #[test]
    fn basic_setting_errors() {
        let cfg = |file: Option<&str>, inline: Option<&str>| BasicAuthConfig {
            htpasswd: Some(HtpasswdConfig { file: file.map(str::to_string), inline: inline.map(str::to_string) }),
            client_auth: None,
        };
        let cases = [
            (BasicAuthConfig::default(), "htpasswd", "htpasswd is not set"),
            (cfg(None, None), "htpasswd", "holds no user"),
            (cfg(Some("/nonexistent/htpasswd"), None), "htpasswd::file", "cannot read /nonexistent/htpasswd"),
            (cfg(None, Some("u:$apr1$x$y")), "htpasswd::inline", "inline line 1 (u): MD5"),
        ];
        for (c, field, message) in cases {
            let e = Authenticator::basic(&c).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
            assert!(e.message.contains(message), "{e:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    fn bcrypt_basic(cost: u32) -> std::sync::Arc<Authenticator> {
        let hash = bcrypt::hash("hunter2", cost).unwrap();
        let cfg = BasicAuthConfig {
            htpasswd: Some(HtpasswdConfig { file: None, inline: Some(format!("bob:{hash}")) }),
            client_auth: None,
        };
        std::sync::Arc::new(Authenticator::basic(&cfg).unwrap())
    }

    #[tokio::test]
    async fn an_unknown_user_costs_a_bcrypt_like_a_known_one() {
        let a = bcrypt_basic(8);
        let time = |user: &'static str| {
            let a = std::sync::Arc::clone(&a);
            async move {
                let t = Instant::now();
                for i in 0..3 {
                    let h = basic_header(user, &format!("wrong{i}"));
                    assert_eq!(a.verify(&h, None).await, Err(AuthFailure::Invalid));
                }
                t.elapsed()
            }
        };
        let known = time("bob").await;
        let unknown = time("mallory").await;
        // Before the decoy an unknown user was refused ~1000 times faster.
        assert!(unknown * 2 > known, "unknown {unknown:?} vs known {known:?}");
        assert_eq!(a.verify(&basic_header("bob", "hunter2"), None).await, Ok(()));
    }

    #[tokio::test]
    async fn a_client_that_keeps_failing_is_throttled_but_cached_logins_pass() {
        let a = bcrypt_basic(4);
        let attacker: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let good = basic_header("bob", "hunter2");
        assert_eq!(a.verify(&good, Some(attacker)).await, Ok(()));
        for i in 0..FAILURE_LIMIT {
            let r = a.verify(&basic_header("bob", &format!("guess{i}")), Some(attacker)).await;
            assert_eq!(r, Err(AuthFailure::Invalid));
        }
        let t = Instant::now();
        let r = a.verify(&basic_header("bob", "guess-again"), Some(attacker)).await;
        assert_eq!(r, Err(AuthFailure::Throttled));
        assert!(t.elapsed() < Duration::from_millis(5), "refused without a bcrypt");
        assert_eq!(AuthFailure::Throttled.reason(), "throttled");
        // Credentials that verified before still pass; another address is not throttled.
        assert_eq!(a.verify(&good, Some(attacker)).await, Ok(()));
        assert_eq!(a.verify(&basic_header("bob", "nope"), Some(other)).await, Err(AuthFailure::Invalid));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bcrypt_runs_off_the_async_workers() {
        let a = bcrypt_basic(10);
        // While a bad password is checked (tens of ms), the runtime keeps answering.
        let slow = tokio::spawn({
            let a = std::sync::Arc::clone(&a);
            async move { a.verify(&basic_header("bob", "bad"), None).await }
        });
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            worst = worst.max(t.elapsed());
        }
        assert_eq!(slow.await.unwrap(), Err(AuthFailure::Invalid));
        assert!(worst < Duration::from_millis(30), "the runtime stalled {worst:?}");
    }
}
