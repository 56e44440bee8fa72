//! Configuration of the `file_storage` extension: where persistent sending
//! queues keep their files. Field names are the Collector's.

use crate::config::component::Checker;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
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

/// The directory must be absent (its nearest existing ancestor writable, so
/// it can be created at start) or a writable directory. Nothing is created here.
pub fn file_storage(c: &mut Checker, cfg: &FileStorageConfig) {
    let hint = Some("give a directory the agent's user can write, e.g. /var/lib/sluice");
    if cfg.directory.trim().is_empty() {
        c.error(&["directory"], "directory must not be empty", hint);
        return;
    }
    let mut probe = std::path::Path::new(&cfg.directory);
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if !m.is_dir() => {
                c.error(&["directory"], format!("{} is not a directory", probe.display()), hint);
                return;
            }
            Ok(_) => break,
            Err(_) => match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p,
                _ => return, // relative path under the working directory
            },
        }
    }
    let Ok(cpath) = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()) else {
        c.error(&["directory"], "directory contains a NUL byte", None);
        return;
    };
    // SAFETY: access(2) with a NUL-terminated path we own.
    if unsafe { libc::access(cpath.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let what = if probe == std::path::Path::new(&cfg.directory) {
            format!("directory {} is not writable", cfg.directory)
        } else {
            format!("directory {} cannot be created: {} is not writable", cfg.directory, probe.display())
        };
        c.error(&["directory"], what, hint);
    }
}
