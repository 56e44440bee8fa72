//! The `file_storage` extension: a directory where persistent sending queues
//! and `filelog` checkpoints keep their files.

use super::{ExtensionFactory, ExtensionSpec, ExtensionUse};
use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::queue::storage_config::{file_storage, FileStorageConfig};
use std::sync::Arc;

pub static FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "file_storage",
        aliases: &[],
        signals: &[],
        description: "a directory for persistent sending queues (sending_queue.storage)",
    },
    compile: |input| {
        let cfg: FileStorageConfig = input.typed()?;
        input.check(|c| file_storage(c, &cfg)).then(|| Arc::new(cfg) as _)
    },
};

impl ExtensionSpec for FileStorageConfig {
    fn provides(&self) -> Option<ExtensionUse> {
        Some(ExtensionUse::Storage)
    }

    fn storage(&self) -> Option<&FileStorageConfig> {
        Some(self)
    }
}
