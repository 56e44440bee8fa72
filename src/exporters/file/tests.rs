use super::*;
use crate::config::Duration as CfgDuration;
use crate::exporters::otlp::tests::traces;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fn config(path: &Path, format: FileFormat) -> FileExporterConfig {
    FileExporterConfig {
        path: path.to_string_lossy().into_owned(),
        format,
        rotation: None,
        flush_interval: CfgDuration(Duration::from_millis(50)),
        compression: None,
        append: None,
        encoding: None,
        group_by: None,
        create_directory: None,
        directory_permissions: None,
    }
}

#[tokio::test]
async fn json_lines_read_back_as_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let exp = FileExporter::new(&config(&path, FileFormat::Json), Signal::Traces, "file").unwrap();
    let (a, b) = (traces(1), traces(3));
    exp.export(&Batch::Traces(a.clone())).await.unwrap();
    exp.export(&Batch::Traces(b.clone())).await.unwrap();
    exp.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"traceId\":\"01010101010101010101010101010101\""), "{}", lines[0]);
    assert_eq!(serde_json::from_str::<ExportTraceServiceRequest>(lines[0]).unwrap(), a);
    assert_eq!(serde_json::from_str::<ExportTraceServiceRequest>(lines[1]).unwrap(), b);
    assert!(matches!(exp.export(&Batch::Traces(a)).await, Err(ExportError::Permanent { .. })));
}

#[tokio::test]
async fn proto_records_are_length_prefixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pb");
    let exp = FileExporter::new(&config(&path, FileFormat::Proto), Signal::Traces, "file").unwrap();
    let req = traces(2);
    exp.export(&Batch::Traces(req.clone())).await.unwrap();
    exp.export(&Batch::Traces(req.clone())).await.unwrap();
    exp.shutdown().await;
    let bytes = std::fs::read(&path).unwrap();
    let mut rest = bytes.as_slice();
    let mut n = 0;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(ExportTraceServiceRequest::decode(&rest[4..4 + len]).unwrap(), req);
        rest = &rest[4 + len..];
        n += 1;
    }
    assert_eq!(n, 2);
}

#[tokio::test]
async fn data_is_flushed_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let exp = FileExporter::new(&config(&path, FileFormat::Json), Signal::Traces, "file").unwrap();
    exp.export(&Batch::Traces(traces(1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn concurrent_exports_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let exp = Arc::new(FileExporter::new(&config(&path, FileFormat::Json), Signal::Traces, "file").unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let exp = exp.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    exp.export(&Batch::Traces(traces(1 + i))).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    exp.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 80);
    for line in text.lines() {
        serde_json::from_str::<ExportTraceServiceRequest>(line).unwrap();
    }
}

#[tokio::test]
async fn rotates_by_size_and_keeps_max_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.json");
    let mut cfg = config(&path, FileFormat::Json);
    cfg.rotation = Some(RotationConfig { max_megabytes: 1, max_days: 0, max_backups: 2, localtime: false });
    let exp = FileExporter::new(&cfg, Signal::Traces, "file").unwrap();
    // About 400 KiB per record: the 1 MiB file holds two, so 9 records rotate 4 times.
    let big = traces(1500);
    let record_len = encode_record(&Batch::Traces(big.clone()), FileFormat::Json).unwrap().len();
    assert!(record_len > 300 * 1024 && record_len < 512 * 1024, "{record_len}");
    for _ in 0..9 {
        exp.export(&Batch::Traces(big.clone())).await.unwrap();
    }
    exp.shutdown().await;
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[2], "spans.json");
    for backup in &names[..2] {
        let ts = backup.strip_prefix("spans-").and_then(|s| s.strip_suffix(".json")).unwrap();
        assert!(is_timestamp(ts), "{backup}");
        let text = std::fs::read_to_string(dir.path().join(backup)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.len() as u64 <= 1 << 20);
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}

#[test]
fn missing_directory_is_a_clear_error() {
    let cfg = config(Path::new("/nonexistent-dir/out.json"), FileFormat::Json);
    let err = FileExporter::new(&cfg, Signal::Traces, "file").err().unwrap();
    assert!(err.contains("/nonexistent-dir") && err.contains("does not exist"), "{err}");
}

#[test]
fn backup_names() {
    let at = UNIX_EPOCH + Duration::from_millis(784_111_777_042);
    assert_eq!(timestamp(at, false), "1994-11-06T08-49-37.042");
    assert_eq!(
        backup_path(Path::new("/var/log/out.json"), at, false),
        Path::new("/var/log/out-1994-11-06T08-49-37.042.json")
    );
    assert_eq!(backup_path(Path::new("data"), at, false), Path::new("data-1994-11-06T08-49-37.042"));
}

#[tokio::test]
async fn instances_on_one_path_share_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.json");
    let cfg = config(&path, FileFormat::Json);
    let traces_exp = FileExporter::new(&cfg, Signal::Traces, "file").unwrap();
    let logs_exp = FileExporter::new(&cfg, Signal::Logs, "file").unwrap();
    assert!(Arc::ptr_eq(&traces_exp.shared, &logs_exp.shared));
    let proto = FileExporter::new(&config(&path, FileFormat::Proto), Signal::Metrics, "file/p");
    assert!(proto.err().unwrap().contains("another format"));
    traces_exp.export(&Batch::Traces(traces(1))).await.unwrap();
    traces_exp.shutdown().await;
    // The other instance still writes after the first one shut down.
    logs_exp.export(&Batch::Logs(Default::default())).await.unwrap();
    logs_exp.shutdown().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    // Once all are shut down, a new instance opens the file afresh.
    let again = FileExporter::new(&cfg, Signal::Traces, "file").unwrap();
    again.export(&Batch::Traces(traces(1))).await.unwrap();
    again.shutdown().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}
