//! Configuration of the server authenticator extensions and of the `auth:`
//! reference a receiver protocol makes to one, field for field the Collector's
//! (`bearertokenauth`, `basicauth`, `configauth.Config`).

use super::Authenticator;
use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `auth:` under `protocols.grpc` / `protocols.http`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// ID of an authenticator extension listed in `service.extensions`.
    pub authenticator: String,
    /// The Collector's query parameters handed to the authenticator: not implemented.
    #[serde(default)]
    pub request_params: Option<crate::config::component::CollectorOnly>,
}

/// The `bearertokenauth` extension: requests must carry one of the tokens.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BearerTokenAuthConfig {
    /// Header that carries the credential. Default `Authorization`.
    pub header: String,
    /// Word before the token in the header. Default `Bearer`; empty means the
    /// header holds the bare token.
    pub scheme: String,
    /// The accepted token.
    #[schemars(extend("x-sensitive" = true))]
    pub token: Option<String>,
    /// Several accepted tokens (e.g. during a rotation).
    #[schemars(extend("x-sensitive" = true))]
    pub tokens: Vec<String>,
    /// File holding the token(s), one per line, read at start.
    pub filename: Option<String>,
}

impl Default for BearerTokenAuthConfig {
    fn default() -> Self {
        BearerTokenAuthConfig {
            header: "Authorization".into(),
            scheme: "Bearer".into(),
            token: None,
            tokens: Vec::new(),
            filename: None,
        }
    }
}

/// The `basicauth` extension: HTTP Basic credentials checked against an htpasswd table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The accepted users and their password hashes.
    pub htpasswd: Option<HtpasswdConfig>,
    /// The Collector's client side; refused here (sluice's exporters send
    /// credentials through `headers`).
    pub client_auth: Option<BasicClientAuth>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HtpasswdConfig {
    /// Path of an htpasswd file (`user:hash` lines).
    pub file: Option<String>,
    /// The same lines, inline; both may be set.
    #[schemars(extend("x-sensitive" = true))]
    pub inline: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct BasicClientAuth {
    /// User name.
    pub username: String,
    /// Password.
    #[schemars(extend("x-sensitive" = true))]
    pub password: String,
}

pub fn bearertokenauth(c: &mut Checker, cfg: &BearerTokenAuthConfig) {
    if let Err(e) = Authenticator::bearer(cfg) {
        let path: Vec<&str> = e.field.split("::").collect();
        c.error(&path, e.message, e.hint.as_deref());
    }
}
pub fn basicauth(c: &mut Checker, cfg: &BasicAuthConfig) {
    if let Err(e) = Authenticator::basic(cfg) {
        let path: Vec<&str> = e.field.split("::").collect();
        c.error(&path, e.message, e.hint.as_deref());
    }
}
