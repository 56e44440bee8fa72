//! Extensions: parts of the agent that are not in a pipeline but that
//! components use (a `file_storage` for persistent queues and checkpoints,
//! authenticators for receivers) or that serve the operator (`health_check`).
//!
//! Guarantee: a component finds an extension only through what the
//! extension's compiled form says it provides ([`ExtensionSpec`]); nothing
//! outside an extension's folder names its type.

pub mod auth;
pub mod file_storage;
pub mod health_check;

use crate::config::component::{Factory, SameSettings};
use crate::queue::storage_config::FileStorageConfig;
use crate::telemetry::health_config::HealthCheckConfig;

/// How an extension type is loaded: see [`crate::config::component`].
pub type ExtensionFactory = Factory<dyn ExtensionSpec>;

/// What a component uses an extension it names for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionUse {
    Authenticator,
    Storage,
}

impl ExtensionUse {
    /// In "authenticator X is not started".
    pub fn noun(self) -> &'static str {
        match self {
            ExtensionUse::Authenticator => "authenticator",
            ExtensionUse::Storage => "storage extension",
        }
    }

    /// In "extension X is not an authenticator".
    pub fn a_noun(self) -> &'static str {
        match self {
            ExtensionUse::Authenticator => "an authenticator",
            ExtensionUse::Storage => "a storage extension",
        }
    }

    /// In "authenticators defined here: ...".
    pub fn plural(self) -> &'static str {
        match self {
            ExtensionUse::Authenticator => "authenticators",
            ExtensionUse::Storage => "storage extensions",
        }
    }

    /// What to do when none is defined.
    pub fn hint(self) -> &'static str {
        match self {
            ExtensionUse::Authenticator => "use the ID of a bearertokenauth or basicauth extension",
            ExtensionUse::Storage => "use the ID of a file_storage extension",
        }
    }
}

/// A component's reference to an extension: the fields under the component
/// that name it, its ID, and what for.
pub type ExtensionReference<'a> = (&'static [&'static str], &'a str, ExtensionUse);

/// An extension's compiled settings. Built only from an
/// [`ExtensionFactory`]'s `compile`.
pub trait ExtensionSpec: SameSettings + Send + Sync + std::fmt::Debug {
    /// What components may use it for, if anything.
    fn provides(&self) -> Option<ExtensionUse> {
        None
    }

    /// The directory of a storage extension.
    fn storage(&self) -> Option<&FileStorageConfig> {
        None
    }

    /// Builds the authenticator of an authenticator extension (reading its
    /// token or htpasswd files now).
    fn authenticator(&self) -> Option<Result<auth::Authenticator, auth::AuthSettingError>> {
        None
    }

    /// Files it reads when a component using it starts: a reload that finds
    /// one changed restarts that component.
    fn files(&self) -> Vec<String> {
        Vec::new()
    }

    /// The health endpoints it serves, for a `health_check`.
    fn health_server(&self) -> Option<&HealthCheckConfig> {
        None
    }
}

crate::config::component::compiled_form!(dyn ExtensionSpec);
