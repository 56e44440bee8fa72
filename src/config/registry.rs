//! The components built into sluice: their type names (with the Collector's
//! aliases), the signals each supports, and their typed configs.

use crate::data::Signal;
use crate::queue::storage_config::FileStorageConfig;
use crate::receivers::auth::config::{BasicAuthConfig, BearerTokenAuthConfig};
use crate::receivers::filelog::config::FilelogReceiverConfig;
use crate::receivers::otlp::config::OtlpReceiverConfig;
use crate::telemetry::health_config::HealthCheckConfig;

pub use super::component::{ComponentKind, ComponentMeta as ComponentType, ALL_SIGNALS};

/// The components not yet built on the component contract (their typed
/// configs are the enums below); processors come from [`crate::components`].
const OTHERS: &[ComponentType] = &[
    ComponentType {
        kind: ComponentKind::Receiver,
        name: "otlp",
        aliases: &["otlp_grpc"],
        signals: ALL_SIGNALS,
        description: "OTLP over gRPC and HTTP (protobuf and JSON)",
    },
    ComponentType {
        kind: ComponentKind::Receiver,
        name: "filelog",
        aliases: &["file_log"],
        signals: &[Signal::Logs],
        description: "follows log files (Kubernetes container logs: CRI, Docker), with checkpoints in file_storage",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "health_check",
        aliases: &[],
        signals: &[],
        description: "liveness, readiness and startup endpoints",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "file_storage",
        aliases: &[],
        signals: &[],
        description: "a directory for persistent sending queues (sending_queue.storage)",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "bearertokenauth",
        aliases: &[],
        signals: &[],
        description: "receivers require a bearer token (auth: {authenticator: bearertokenauth})",
    },
    ComponentType {
        kind: ComponentKind::Extension,
        name: "basicauth",
        aliases: &[],
        signals: &[],
        description: "receivers require HTTP Basic credentials from an htpasswd table",
    },
];

/// Every built-in component type, in `sluice components` order.
pub fn all() -> impl Iterator<Item = &'static ComponentType> {
    let receivers = OTHERS.iter().filter(|c| c.kind == ComponentKind::Receiver);
    let processors = crate::components::PROCESSORS.iter().map(|f| &f.meta);
    let exporters = crate::components::EXPORTERS.iter().map(|f| &f.meta);
    let rest = OTHERS.iter().filter(|c| c.kind != ComponentKind::Receiver);
    receivers.chain(processors).chain(exporters).chain(rest)
}

/// Looks up a type by name or alias within a section.
pub fn find(kind: ComponentKind, type_name: &str) -> Option<&'static ComponentType> {
    all().find(|c| c.kind == kind && c.is_named(type_name))
}

/// The names (and aliases) of every type of a section, for "did you mean" hints.
pub fn names(kind: ComponentKind) -> Vec<&'static str> {
    all().filter(|c| c.kind == kind).flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied())).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverConfig {
    Otlp(Box<OtlpReceiverConfig>),
    Filelog(Box<FilelogReceiverConfig>),
}

/// What a component uses an extension it names for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionUse {
    Authenticator,
    Storage,
}

/// A receiver's reference to an extension: the fields under the receiver
/// that name it, its ID, and what for.
pub type ExtensionReference<'a> = (&'static [&'static str], &'a str, ExtensionUse);

impl ReceiverConfig {
    /// The extensions this receiver names (authenticators, checkpoint storage).
    pub fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        match self {
            ReceiverConfig::Otlp(c) => {
                const GRPC: &[&str] = &["protocols", "grpc", "auth", "authenticator"];
                const HTTP: &[&str] = &["protocols", "http", "auth", "authenticator"];
                let grpc = c.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref()).map(|a| (GRPC, a));
                let http = c.protocols.http.as_ref().and_then(|h| h.auth.as_ref()).map(|a| (HTTP, a));
                grpc.into_iter()
                    .chain(http)
                    .map(|(fields, a)| (fields, a.authenticator.as_str(), ExtensionUse::Authenticator))
                    .collect()
            }
            ReceiverConfig::Filelog(c) => {
                c.storage.as_deref().map(|s| (&["storage"][..], s, ExtensionUse::Storage)).into_iter().collect()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionConfig {
    HealthCheck(HealthCheckConfig),
    FileStorage(FileStorageConfig),
    BearerTokenAuth(BearerTokenAuthConfig),
    BasicAuth(BasicAuthConfig),
}
