//! Configuration of the `file_storage` extension: where persistent sending
//! queues keep their files. Field names are the Collector's.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileStorageConfig {
    /// Directory of the queues; created if missing. Each queue gets its own
    /// subdirectory named from the exporter ID and signal.
    pub directory: String,
    /// fsync every record and acknowledgement before it counts as written.
    /// Default false: a process crash loses nothing, a machine crash can lose
    /// what the kernel had not written back yet.
    #[serde(default)]
    pub fsync: bool,
}
