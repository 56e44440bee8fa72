//! Configuration of the `filelog` receiver, field for field the Collector's
//! where the feature exists there (names and defaults of its `filelog`
//! receiver and of its `container` operator).

use crate::config::component::{Checker, CollectorOnly};
use crate::config::duration::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Collector default of `max_log_size`: 1 MiB.
pub const DEFAULT_MAX_LOG_SIZE: u64 = 1024 * 1024;
/// Collector default of `fingerprint_size`: 1 KiB.
pub const DEFAULT_FINGERPRINT_SIZE: u64 = 1024;
/// Collector default of `max_concurrent_files`.
pub const DEFAULT_MAX_CONCURRENT_FILES: usize = 1024;

/// The operator types sluice runs inside `filelog.operators`.
pub const OPERATOR_TYPES: &[&str] = &["container"];
/// The `format` values of the `container` operator (the Collector's, plus
/// `cri` as a name for the format containerd and CRI-O share).
pub const CONTAINER_FORMATS: &[&str] = &["docker", "crio", "containerd", "cri"];

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilelogReceiverConfig {
    /// Glob patterns of the files to read (`*`, `?`, `[...]`, `**`).
    pub include: Vec<String>,
    /// Glob patterns of files not to read, even when `include` matches them.
    pub exclude: Vec<String>,
    /// `beginning` or `end` (default): where to start in files found at
    /// start-up that no checkpoint knows. Files that appear later are read
    /// from their beginning.
    pub start_at: String,
    /// Attribute `log.file.name` on each record. Default true.
    pub include_file_name: bool,
    /// Attribute `log.file.path` on each record. Default false.
    pub include_file_path: bool,
    /// How often the globs are matched and files read. Default 200ms.
    pub poll_interval: Duration,
    /// ID of a `file_storage` extension whose directory keeps the read offsets.
    pub storage: Option<String>,
    /// Join lines into one record by a start or end pattern.
    pub multiline: Option<MultilineConfig>,
    /// Longest entry; longer ones are cut at this size and the rest becomes
    /// the next entry. Default 1MiB.
    pub max_log_size: ByteSize,
    /// Bytes at the start of a file that identify it across renames and restarts. Default 1kb.
    pub fingerprint_size: ByteSize,
    /// Most files held open at once. Default 1024.
    pub max_concurrent_files: usize,
    /// Only `utf-8` (the default) is supported.
    pub encoding: String,
    /// How long an unfinished entry (a last line without newline, a multiline
    /// entry, a partial container line) waits for more data before it is sent as is. Default 500ms.
    pub force_flush_period: Duration,
    /// Parsers run on each line, in order; sluice has `container`.
    pub operators: Vec<OperatorConfig>,
    /// Attributes added to every record, and resource attributes of every
    /// batch (string values; the Collector's `EXPR(...)` is refused).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Resource attributes added to every record.
    pub resource: std::collections::BTreeMap<String, String>,
    /// The Collector's settings sluice does not implement (yet).
    pub exclude_older_than: Option<CollectorOnly>,
    pub preserve_leading_whitespaces: Option<CollectorOnly>,
    pub preserve_trailing_whitespaces: Option<CollectorOnly>,
    pub include_file_name_resolved: Option<CollectorOnly>,
    pub include_file_path_resolved: Option<CollectorOnly>,
    pub include_file_owner_name: Option<CollectorOnly>,
    pub include_file_owner_group_name: Option<CollectorOnly>,
    pub include_file_record_number: Option<CollectorOnly>,
    pub include_file_record_offset: Option<CollectorOnly>,
    pub max_batches: Option<CollectorOnly>,
    pub delete_after_read: Option<CollectorOnly>,
    pub acquire_fs_lock: Option<CollectorOnly>,
    pub header: Option<CollectorOnly>,
    pub retry_on_failure: Option<CollectorOnly>,
    pub ordering_criteria: Option<CollectorOnly>,
    pub compression: Option<CollectorOnly>,
    pub polls_to_archive: Option<CollectorOnly>,
    pub on_truncate: Option<CollectorOnly>,
}

impl Default for FilelogReceiverConfig {
    fn default() -> Self {
        FilelogReceiverConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            start_at: "end".into(),
            include_file_name: true,
            include_file_path: false,
            poll_interval: Duration::from_millis(200),
            storage: None,
            multiline: None,
            max_log_size: ByteSize(DEFAULT_MAX_LOG_SIZE),
            fingerprint_size: ByteSize(DEFAULT_FINGERPRINT_SIZE),
            max_concurrent_files: DEFAULT_MAX_CONCURRENT_FILES,
            encoding: "utf-8".into(),
            force_flush_period: Duration::from_millis(500),
            operators: Vec::new(),
            attributes: Default::default(),
            resource: Default::default(),
            exclude_older_than: None,
            preserve_leading_whitespaces: None,
            preserve_trailing_whitespaces: None,
            include_file_name_resolved: None,
            include_file_path_resolved: None,
            include_file_owner_name: None,
            include_file_owner_group_name: None,
            include_file_record_number: None,
            include_file_record_offset: None,
            max_batches: None,
            delete_after_read: None,
            acquire_fs_lock: None,
            header: None,
            retry_on_failure: None,
            ordering_criteria: None,
            compression: None,
            polls_to_archive: None,
            on_truncate: None,
        }
    }
}

impl FilelogReceiverConfig {
    pub fn start_at_beginning(&self) -> bool {
        self.start_at == "beginning"
    }

    /// The `container` operator, if listed.
    pub fn container(&self) -> Option<&OperatorConfig> {
        self.operators.iter().find(|o| o.kind == "container")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A regex matching the first line of an entry.
    pub line_start_pattern: Option<String>,
    /// A regex matching the last line of an entry.
    pub line_end_pattern: Option<String>,
}

/// One entry of `operators`. Only `container` runs; its fields are the Collector's.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// The operator: `container` (Kubernetes container logs).
    #[serde(rename = "type")]
    pub kind: String,
    /// The operator's name, for references between operators.
    pub id: Option<String>,
    /// `docker`, `crio`, `containerd` (or `cri`); absent: detected per line.
    pub format: Option<String>,
    /// Resource attributes from /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log. Default true.
    #[serde(default = "yes")]
    pub add_metadata_from_filepath: bool,
    /// Longest entry joined from partial lines; absent or 0: the receiver's `max_log_size`.
    pub max_log_size: Option<ByteSize>,
}

fn yes() -> bool {
    true
}

/// Sizes are the config layer's (`kb`, `MiB`, ...).
pub use crate::config::size::{parse_byte_size, ByteSize};

/// The `type` of each `filelog` operator, read from the YAML before the
/// operators are typed (an unknown operator's own fields are not ours to name).
pub fn filelog_operator_types(c: &mut Checker) {
    let Some(ops) = c.node.get("operators") else { return };
    let crate::config::node::Value::Seq(items) = &ops.value.value else { return };
    let supported =
        format!("sluice runs these operators: {}, e.g. operators: [{{type: container}}]", OPERATOR_TYPES.join(", "));
    for (i, item) in items.iter().enumerate() {
        let index = i.to_string();
        match item.get("type").map(|e| &e.value.value) {
            Some(crate::config::node::Value::Scalar(t, _)) if OPERATOR_TYPES.contains(&t.as_str()) => {}
            Some(crate::config::node::Value::Scalar(t, _)) => {
                let hint = match crate::config::suggest::did_you_mean(t, OPERATOR_TYPES.iter().copied()) {
                    Some(h) => format!("{h} ({supported})"),
                    None => supported.clone(),
                };
                c.error(&["operators", &index, "type"], format!("unknown operator type \"{t}\""), Some(&hint));
            }
            _ => c.error(&["operators", &index], "the operator has no type", Some(&supported)),
        }
    }
}
pub fn filelog_receiver(c: &mut Checker, cfg: &FilelogReceiverConfig) {
    use crate::receivers::filelog::glob::Glob;
    for (field, map) in [("attributes", &cfg.attributes), ("resource", &cfg.resource)] {
        for (k, v) in map {
            if v.trim_start().starts_with("EXPR(") {
                c.error(
                    &[field, k],
                    "the Collector has `EXPR(...)`; sluice does not support it (yet)",
                    Some("write the value as plain text"),
                );
            }
        }
    }
    if cfg.include.is_empty() {
        c.error(
            &["include"],
            "include must list at least one file pattern",
            Some("e.g. include: [/var/log/pods/*/*/*.log]"),
        );
    }
    for (field, patterns) in [("include", &cfg.include), ("exclude", &cfg.exclude)] {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(e) = Glob::new(p) {
                c.error(
                    &[field, &i.to_string()],
                    format!("invalid pattern \"{p}\": {e}"),
                    Some("globs take *, ?, [abc], [!abc] and ** (any directories)"),
                );
            }
        }
    }
    if cfg.start_at != "beginning" && cfg.start_at != "end" {
        c.error(
            &["start_at"],
            format!("start_at \"{}\" is not beginning or end", cfg.start_at),
            Some("start_at: end (the default) or start_at: beginning"),
        );
    }
    if !matches!(cfg.encoding.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
        c.error(
            &["encoding"],
            format!("encoding \"{}\" is not supported", cfg.encoding),
            Some("sluice reads UTF-8 only: remove encoding or set encoding: utf-8"),
        );
    }
    if cfg.poll_interval.is_zero() {
        c.error(&["poll_interval"], "poll_interval must be above zero", Some("e.g. 200ms (the default)"));
    }
    if cfg.max_log_size.0 == 0 {
        c.error(&["max_log_size"], "max_log_size must be above zero", Some("e.g. 1MiB (the default)"));
    }
    if cfg.fingerprint_size.0 < 16 {
        c.error(
            &["fingerprint_size"],
            format!("fingerprint_size {} is below 16 bytes", cfg.fingerprint_size.0),
            Some("e.g. 1kb (the default); short fingerprints make different files look the same"),
        );
    }
    if cfg.max_concurrent_files == 0 {
        c.error(&["max_concurrent_files"], "max_concurrent_files must be at least 1", Some("e.g. 1024 (the default)"));
    }
    if let Some(m) = &cfg.multiline {
        match (&m.line_start_pattern, &m.line_end_pattern) {
            (Some(_), Some(_)) => {
                c.error(&["multiline"], "only one of line_start_pattern and line_end_pattern can be set", None)
            }
            (None, None) => c.error(
                &["multiline"],
                "multiline needs line_start_pattern or line_end_pattern",
                Some("e.g. line_start_pattern: ^\\d{4}-\\d{2}-\\d{2}"),
            ),
            _ => {}
        }
        for (field, p) in [("line_start_pattern", &m.line_start_pattern), ("line_end_pattern", &m.line_end_pattern)] {
            if let Some(Err(e)) = p.as_deref().map(regex::Regex::new) {
                c.error(&["multiline", field], format!("invalid regex: {e}"), None);
            }
        }
    }
    for (i, op) in cfg.operators.iter().enumerate() {
        if let Some(f) = &op.format {
            if !CONTAINER_FORMATS.contains(&f.as_str()) {
                let hint =
                    format!("one of {}, or leave format out to detect it per line", CONTAINER_FORMATS.join(", "));
                c.error(
                    &["operators", &i.to_string(), "format"],
                    format!("unknown container format \"{f}\""),
                    Some(&hint),
                );
            }
        }
    }
}
