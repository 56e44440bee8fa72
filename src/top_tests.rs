use super::*;

const PAGE_1: &str = r#"# HELP otelcol_receiver_accepted_spans_total Spans accepted.
# TYPE otelcol_receiver_accepted_spans_total counter
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc",service_name="sluice",service_instance_id="x",service_version="0.1.0"} 1000
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http",service_name="sluice",service_instance_id="x",service_version="0.1.0"} 0
otelcol_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 0
otelcol_processor_incoming_items_total{processor="batch",otel_signal="traces"} 1000
otelcol_processor_outgoing_items_total{processor="batch",otel_signal="traces"} 900
otelcol_processor_dropped_spans_total{processor="filter/drop",} 0
otelcol_exporter_sent_spans_total{exporter="otlp/tempo"} 800
otelcol_exporter_send_failed_spans_total{exporter="otlp/tempo"} 0
otelcol_exporter_queue_size{exporter="otlp/tempo",data_type="traces"} 3
otelcol_exporter_queue_capacity{exporter="otlp/tempo",data_type="traces"} 1024
sluice_exporter_queue_sizer{exporter="otlp/tempo",data_type="traces",sizer="requests"} 1
otelcol_exporter_queue_size{exporter="otlp/bulk",data_type="traces"} 1536
otelcol_exporter_queue_capacity{exporter="otlp/bulk",data_type="traces"} 1073741824
sluice_exporter_queue_sizer{exporter="otlp/bulk",data_type="traces",sizer="bytes"} 1
otelcol_connector_incoming_items_total{connector="count",otel_signal="traces"} 1000
otelcol_connector_outgoing_items_total{connector="count",otel_signal="metrics"} 4
sluice_pipeline_queue_size{pipeline="traces",unit="batches"} 5
sluice_pipeline_queue_capacity{pipeline="traces",unit="batches"} 256
sluice_pipeline_queue_size{pipeline="traces/2",unit="bytes"} 13107200
sluice_pipeline_queue_capacity{pipeline="traces/2",unit="bytes"} 67108864
otelcol_process_uptime_seconds_total 3725.5
otelcol_process_cpu_seconds_total 10
otelcol_process_memory_rss_bytes 52428800
sluice_memory_limiter_refusing 0
"#;

fn page_2() -> String {
    PAGE_1
        .replace("} 1000\n", "} 3000\n")
        .replace(
            "outgoing_items_total{processor=\"batch\",otel_signal=\"traces\"} 900",
            "outgoing_items_total{processor=\"batch\",otel_signal=\"traces\"} 2900",
        )
        .replace("sent_spans_total{exporter=\"otlp/tempo\"} 800", "sent_spans_total{exporter=\"otlp/tempo\"} 2400")
        .replace(
            "send_failed_spans_total{exporter=\"otlp/tempo\"} 0",
            "send_failed_spans_total{exporter=\"otlp/tempo\"} 100",
        )
        .replace("otelcol_process_cpu_seconds_total 10", "otelcol_process_cpu_seconds_total 11")
}

fn samples() -> (Sample, Sample) {
    let t0 = Instant::now();
    let prev = Sample { at: t0, series: parse(PAGE_1) };
    let cur = Sample { at: t0 + Duration::from_secs(2), series: parse(&page_2()) };
    (prev, cur)
}

fn layout() -> Layout {
    let mut l = Layout::default();
    l.add("traces", Kind::Receiver, &["otlp".into()]);
    l.add("traces", Kind::Processor, &["batch".into()]);
    l.add("traces", Kind::Exporter, &["otlp/tempo".into()]);
    l.add("traces/2", Kind::Receiver, &["otlp".into()]);
    l
}

#[test]
fn parses_series_without_the_service_labels() {
    let series = parse(PAGE_1);
    let first = &series[0];
    assert_eq!(first.name, "otelcol_receiver_accepted_spans_total");
    assert_eq!(first.value, 1000.0);
    assert_eq!(
        first.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        ["receiver=otlp", "transport=grpc"]
    );
    // A trailing comma in the labels, no labels at all, escapes and +Inf.
    assert_eq!(
        series.iter().find(|s| s.name == "otelcol_processor_dropped_spans_total").unwrap().labels["processor"],
        "filter/drop"
    );
    assert_eq!(series.iter().find(|s| s.name == "otelcol_process_uptime_seconds_total").unwrap().value, 3725.5);
    let odd = parse("m{a=\"x\\\"y\",le=\"+Inf\"} +Inf\nnot a metric line\n");
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].labels["a"], "x\"y");
    assert_eq!(odd[0].value, f64::INFINITY);
}

#[test]
fn rows_give_rates_per_second_and_queue_fill() {
    let (prev, cur) = samples();
    let rows = rows(&layout(), &prev, &cur);
    let row = |kind: &str, id: &str| {
        rows.iter().find(|r| r.kind == kind && r.id == id).unwrap_or_else(|| panic!("{kind} {id} in {rows:#?}")).clone()
    };
    let otlp = row("receiver", "otlp");
    assert_eq!(otlp.in_rate, Some(1000.0), "(3000 - 1000) / 2 s");
    assert_eq!(otlp.refused_rate, Some(0.0));
    assert_eq!(otlp.pipelines, "traces,traces/2");
    let batch = row("processor", "batch");
    assert_eq!((batch.in_rate, batch.out_rate), (Some(1000.0), Some(1000.0)));
    assert_eq!(batch.dropped_rate, None, "no dropped counter for batch on the page");
    let tempo = row("exporter", "otlp/tempo");
    let in_requests = Queue { size: 3.0, capacity: 1024.0, in_bytes: false };
    assert_eq!((tempo.out_rate, tempo.dropped_rate, tempo.queue), (Some(800.0), Some(50.0), Some(in_requests)));
    let in_bytes = Queue { size: 1536.0, capacity: 1073741824.0, in_bytes: true };
    assert_eq!(row("exporter", "otlp/bulk").queue, Some(in_bytes), "its sizer is bytes");
    // On the page but not in the config: listed, pipelines unknown.
    assert_eq!(row("processor", "filter/drop").pipelines, "-");
    let count = row("connector", "count");
    assert_eq!((count.in_rate, count.out_rate, count.dropped_rate), (Some(1000.0), Some(0.0), None));
    let traces = row("pipeline", "traces");
    assert_eq!(traces.queue, Some(Queue { size: 5.0, capacity: 256.0, in_bytes: false }));
    let bounded_in_bytes = Queue { size: 13107200.0, capacity: 67108864.0, in_bytes: true };
    assert_eq!(row("pipeline", "traces/2").queue, Some(bounded_in_bytes));
}

#[test]
fn a_counter_that_went_backwards_counts_from_zero() {
    let (_, cur) = samples();
    let prev = Sample { at: cur.at - Duration::from_secs(1), series: parse(&PAGE_1.replace("} 1000\n", "} 99999\n")) };
    let rows = rows(&Layout::default(), &prev, &cur);
    let otlp = rows.iter().find(|r| r.id == "otlp").unwrap();
    assert_eq!(otlp.in_rate, Some(3000.0));
}

#[test]
fn frame_shows_the_process_and_one_aligned_row_per_component() {
    let (prev, cur) = samples();
    let text = frame("http://127.0.0.1:8888/metrics", &layout(), &prev, &cur);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "sluice top  http://127.0.0.1:8888/metrics  up 1h2m5s  rss 50 MiB  cpu 50%  memory limiter ok"
    );
    assert!(lines[2].starts_with("KIND"), "{text}");
    let words = |prefix: &str| -> Vec<String> {
        let l = lines.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}:\n{text}"));
        l.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(words("receiver   otlp "), ["receiver", "otlp", "traces,traces/2", "1.0k", "-", "0", "-", "-"]);
    assert_eq!(
        words("exporter   otlp/tempo"),
        ["exporter", "otlp/tempo", "traces", "-", "800", "-", "50", "3/1024", "(0%)"]
    );
    assert_eq!(words("pipeline   traces "), ["pipeline", "traces", "traces", "-", "-", "-", "-", "5/256", "(2%)"]);
    // Queues bounded in bytes read in KiB, MiB, GiB.
    assert_eq!(words("exporter   otlp/bulk")[7..], ["1.5KiB/1.00GiB", "(0%)"]);
    assert_eq!(words("pipeline   traces/2")[7..], ["12.5MiB/64.0MiB", "(20%)"]);
    // Columns line up: every row's second column starts where the header's does.
    let id_col = lines[2].find("ID").unwrap();
    for l in &lines[3..] {
        assert_eq!(l.chars().nth(id_col - 1), Some(' '), "{l}");
        assert_ne!(l.chars().nth(id_col), Some(' '), "{l}");
    }
}

#[test]
fn urls_and_rates_read_as_written() {
    assert_eq!(split_url("http://127.0.0.1:8888/metrics").unwrap(), ("127.0.0.1:8888".into(), "/metrics".into()));
    assert_eq!(split_url("http://agent:9464").unwrap(), ("agent:9464".into(), "/metrics".into()));
    assert!(split_url("https://agent:9464").unwrap_err().contains("only http://"));
    assert_eq!([human(0.2), human(950.0), human(12_345.0), human(1_450_000.0)], ["0", "950", "12.3k", "1.45M"]);
}

#[test]
fn bytes_read_in_binary_units() {
    let cases = [(0.0, "0B"), (1023.0, "1023B"), (1024.0, "1.0KiB"), (1536.0, "1.5KiB"), (67108864.0, "64.0MiB")];
    for (bytes, text) in cases.into_iter().chain([(3.0 * 1073741824.0, "3.00GiB")]) {
        assert_eq!(human_bytes(bytes), text);
    }
}
