#!/usr/bin/env python3
"""Writes fuzz/seeds/ottl/: the OTTL examples of the Collector's transform,
filter and OTTL function READMEs and of sluice's README, each behind the
first byte the `ottl` target reads (src/fuzz_targets.rs):
context (% 7: resource, scope, span, spanevent, metric, datapoint, log),
form (/ 7 % 3: statements, conditions, flat form with inferred context) and,
for resource and scope, the signal (/ 21 % 3: traces, metrics, logs).
    python3 fuzz/ottl_seeds.py
"""
import os
import re
import shutil

CTX = {"resource": 0, "scope": 1, "span": 2, "spanevent": 3, "metric": 4, "datapoint": 5, "log": 6}
SIGNAL_CTX = {"span": 2, "spanevent": 2, "metric": 4, "datapoint": 4, "log": 6}

# One text a line; a group is its lines joined by "\n" (written with " || ").
# "@context " before a text names its context where the guess would be wrong.
EXAMPLES = r'''
keep_keys(span.attributes, ["service.name", "service.namespace", "cloud.region", "process.command_line"])
replace_pattern(span.attributes["process.command_line"], "password\\=[^\\s]*(\\s?)", "password=***")
limit(span.attributes, 100, [])
truncate_all(span.attributes, 4096)
keep_keys(resource.attributes, ["host.name"])
truncate_all(resource.attributes, 4096)
set(metric.description, "Sum") where metric.type == "Sum"
convert_sum_to_gauge() where metric.name == "system.processes.count"
convert_gauge_to_sum("cumulative", false) where metric.name == "prometheus_metric"
set(log.severity_text, "FAIL") where log.body == "request failed"
replace_all_matches(log.attributes, "/user/*/list/*", "/user/{userId}/list/{listId}")
replace_all_patterns(log.attributes, "value", "/account/\\d{4}", "/account/{accountId}")
set(log.body, log.attributes["http.route"])
metric.type == METRIC_DATA_TYPE_SUM
IsMap(log.body) and log.body["object"] != nil
set(metric.description, "test passed") where datapoint.attributes["test"] == "pass"
set(resource.attributes["test"], "passed") || set(metric.description, "test passed")
convert_sum_to_gauge() where metric.name == "system.processes.count" || limit(datapoint.attributes, 100, ["host.name"])
set(resource.attributes["namespace"], resource.attributes["k8s.namespace.name"])
delete_key(resource.attributes, "k8s.namespace.name")
set(resource.cache["attrs"], resource.attributes) || keep_matching_keys(resource.cache["attrs"], "pod_labels_.*") || set(resource.attributes["kubernetes.labels"], resource.cache["attrs"])
merge_maps(log.cache, ParseJSON(log.body), "upsert") where IsMatch(log.body, "^\\{") || set(log.attributes["attr1"], log.cache["attr1"]) || set(log.attributes["nested.attr3"], log.cache["nested"]["attr3"])
set(log.severity_number, SEVERITY_NUMBER_INFO) where IsString(log.body) and IsMatch(log.body, "\\sINFO\\s")
set(log.severity_number, SEVERITY_NUMBER_WARN) where IsString(log.body) and IsMatch(log.body, "\\sWARN\\s")
set(resource.attributes["test"], Concat([resource.attributes["foo"], resource.attributes["bar"]], " "))
set(span.attributes["tree.root"], true) where span.kind == SPAN_KIND_SERVER and resource.attributes["service.name"] == "svc-b"
set(spanevent.name, span.name)
set(log.attributes["test"], "pass") where log.attributes["test"] == nil
set(datapoint.attributes["deployment.environment"], "production")
set(metric.unit, "1") where datapoint.attributes["host.name"] == "h1"
replace_all_patterns(resource.attributes, "key", "k8s\\.pod\\.name", "pod")
attributes["container.name"] == "app_container_1"
resource.attributes["host.name"] == "localhost"
name == "app_3"
attributes["http.route"] == "/health"
IsMatch(name, ".*grpc.*")
@metric name == "my.metric" and resource.attributes["my_label"] == "abc123"
type == METRIC_DATA_TYPE_HISTOGRAM
metric.type == METRIC_DATA_TYPE_SUMMARY
@metric HasAttrKeyOnDatapoint("http.method")
@metric HasAttrOnDatapoint("env", "dev")
IsMatch(body, ".*password.*")
severity_number < SEVERITY_NUMBER_WARN
Substring(body, 0, 20) == "x"
set(attributes["env"], "prod") where resource.attributes["service.name"] == "checkout"
set(name, Concat([name, kind.string], "|"))
set(status.code, STATUS_CODE_ERROR) where attributes["http.status_code"] >= 500
set(attributes["http.request.method"], attributes["http.method"])
delete_key(attributes, "http.method")
delete_matching_keys(attributes, "^process\\.")
keep_matching_keys(attributes, "^(s|i)$")
limit(attributes, 2, ["empty"])
name == "GET /users/123" and kind == SPAN_KIND_SERVER
not (attributes["missing"] != nil) or false
IsMatch(name, "^GET /users/[0-9]+$")
end_time - start_time > Duration("400ms")
end_time_unix_nano - start_time_unix_nano == 500000000
(1 + 2) * 3 == 9 and 7 / 2 == 3
trace_id.string == "01010101010101010101010101010101"
span_id == SpanID(0x0202020202020202)
trace_id == TraceID(0x01010101010101010101010101010101)
instrumentation_scope.name == "lib" and scope.name == "lib"
Len(attributes) == 4 and Split("a,b", ",")[1] == "b"
attributes["i"] * 2 + 1 > 14 and attributes["d"] / 0.5 == 3.0
set(attributes["lower"], ToLowerCase(attributes["s"]))
set(attributes["upper"], ToUpperCase(name))
set(attributes["snake"], ConvertCase("HelloWorld", "snake"))
set(attributes["int"], Int("42"))
set(attributes["dbl"], Double(attributes["i"]))
set(attributes["str"], String(attributes["m"]))
set(attributes["sub"], Substring(name, 4, 6))
set(attributes["sha"], SHA256("abc"))
set(attributes["sha1"], SHA1(attributes["s"]))
set(attributes["sha512"], SHA512(name))
set(attributes["json"], ParseJSON("{\"a\": {\"b\": [1, 2.5, true, null]}}"))
set(attributes["ex"], ExtractPatterns(name, "^(?P<method>\\w+) (?P<path>.*)$"))
set(attributes["hex"], Hex(span_id))
set(attributes["ms"], UnixMilli(start_time))
set(attributes["ns"], UnixNano(Now()))
set(attributes["nested"]["deep"], "v")
set(attributes["m"]["a"], attributes["l"][1])
set(attributes["m"], {"a": {"b": "c"}, "l": [1, 2]})
flatten(attributes["m"], "p", 2)
merge_maps(attributes, {"http.method": "POST", "new": 1}, "insert")
replace_all_matches(attributes, "G*", "verb")
replace_all_patterns(attributes, "key", "^http\\.", "h.")
append(attributes["list"], "a")
append(attributes["l"], values = ["b", "c"])
replace_pattern(name, "^GET (.*)$", "$1", SHA256, "path:%s")
replace_match(attributes["s"], "G?T*", "read")
set(attributes["split"], Split(attributes["s"], " "))
IsBool(attributes["b"]) and IsInt(attributes["i"]) and IsDouble(attributes["d"]) and IsList(attributes["l"])
set(time, Time(body, "%Y-%m-%d %H:%M:%S.%L")) where IsString(body)
@log set(time, Time("2023-05-26 12:34:56", "%Y-%m-%d %H:%M:%S", "Europe/Paris"))
@log set(time, Time("Mon, 02 Jan 2006 15:04:05 MST", "%a, %d %b %Y %H:%M:%S %Z", location="Asia/Tokyo", locale="en"))
set(time, Time(body, "%F", "UTC", "en"))
set(observed_time_unix_nano, time_unix_nano + 1000)
set(severity_text, "FAIL") where body == "request failed"
set(attributes["len"], Len(body))
set(body, {"object": "x"})
set(attributes["obj"], body["object"]) where IsMap(body) and body["object"] != nil
set(body["s"], body.string) where IsMap(body)
set(cache["a"], 1) where name != nil || set(attributes["c"], cache["a"])
set(attributes["a"], 0xdeadbeef)
@datapoint set(value_double, value_double * 2) where metric.name == "g"
set(value_int, value_int + 1) where IsInt(value_int)
@datapoint set(attributes["count"], count) where metric.type == METRIC_DATA_TYPE_HISTOGRAM
sum > 1.0 and count >= 2
@datapoint set(start_time, time - Duration("1h"))
set(aggregation_temporality, AGGREGATION_TEMPORALITY_DELTA) where is_monotonic == true
set(is_monotonic, false) where type == METRIC_DATA_TYPE_SUM
set(flags, 1) where trace_id.string != ""
set(trace_state, "ot=th:0")
set(dropped_attributes_count, 3)
set(kind, SPAN_KIND_CLIENT) where kind.deprecated_string == "SPAN_KIND_SERVER"
set(status.message, "x") where status.code == STATUS_CODE_ERROR
set(parent_span_id.string, "0303030303030303")
set(trace_id.string, "0101010101010101010101010101010a")
set(event_name, "x") where severity_number >= SEVERITY_NUMBER_ERROR
'''

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "ottl")

def is_statement(text):
    return re.match(r"^[a-z_]+\(", text) is not None

def bare(text):
    """The text without the insides of its strings."""
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)

def prefixes(text):
    return {m for m in re.findall(r"\b([a-z]+)\.(?=[a-z_])", bare(text)) if m in CTX}

def fully_prefixed(text):
    """Whether every path names its context (the flat form needs it)."""
    b = bare(text)
    for m in re.finditer(r"(?<![\w.])([a-z_][a-z_0-9]*)\b(?!\s*\()", b):
        word = m.group(1)
        if word in ("where", "and", "or", "not", "true", "false", "nil", "cache"):
            continue
        if b[m.end():m.end() + 1] == "=" and b[m.end():m.end() + 2] != "==":
            continue  # a named argument
        if word in CTX and b[m.end():m.end() + 1] == ".":
            continue
        return False
    return True

def guess(text):
    if re.search(r"\b(body|severity_\w+|observed_time\w*|event_name)\b", text):
        return "log"
    if re.search(r"\b(value_\w+|count|sum|HasAttr\w+)\b", text) and "metric.type" not in text:
        return "datapoint"
    if re.search(r"\b(type|aggregation_temporality|is_monotonic|convert_\w+)\b", text) or "METRIC_" in text:
        return "metric"
    if "metric." in text:
        return "metric"
    return "span"

def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    seeds = []
    for line in EXAMPLES.strip().splitlines():
        forced = None
        if line.startswith("@"):
            forced, line = line[1:].split(" ", 1)
        texts = [t.strip() for t in line.split(" || ")]
        text = "\n".join(texts)
        form = 0 if is_statement(texts[0]) else 1
        found = set().union(*(prefixes(t) for t in texts))
        if forced:
            seeds.append((form * 7 + CTX[forced], text))
        elif found and all(fully_prefixed(t) for t in texts):
            signals = {SIGNAL_CTX[c] for c in found if c in SIGNAL_CTX} or {2, 4, 6}
            for ctx in sorted(signals):
                seeds.append((14 + ctx, text))
            deepest = max(found, key=lambda c: CTX[c])
            seeds.append((form * 7 + CTX[deepest], text))
        else:
            seeds.append((form * 7 + CTX[guess(text)], text))
    for i, (first, text) in enumerate(seeds, 1):
        with open(os.path.join(OUT, f"seed-{i:03}"), "wb") as f:
            f.write(bytes([first]) + text.encode())
    print(f"{len(seeds)} seeds in {OUT}")

main()
