#!/usr/bin/env node
// Send a deterministic trace workload with the real OpenTelemetry Node SDK
// over OTLP/HTTP with JSON bodies (@opentelemetry/exporter-trace-otlp-http,
// which sends `Transfer-Encoding: chunked` without Content-Length).
//
//   node send_json.mjs --endpoint http://127.0.0.1:4318 --count 30 \
//       --expect-file /tmp/expect.json [--service-name NAME] [--batch-size N]
//
// --count spans in trees of three (root → child → grandchild), with string,
// int, double, bool and array attributes, events and statuses. The expect file
// is {"signal": "traces", "items": [...]} in the normalized form of
// tests/peers/otlpnorm.py, built here from the SDK's ReadableSpans
// independently of the exporter's own serializer.
//
// Each export prints `EXPORT signal=traces items=N result=SUCCESS|FAILURE`
// on stderr; the exit status is 0 only if every export succeeded.

import { writeFileSync } from 'node:fs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { SpanKind, SpanStatusCode, trace, context } from '@opentelemetry/api';

function parseArgs(argv) {
  const args = { endpoint: 'http://127.0.0.1:4318', count: 30, batchSize: 512, serviceName: 'sluice-e2e-node', expectFile: null };
  for (let i = 2; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--endpoint': args.endpoint = v; i++; break;
      case '--count': args.count = parseInt(v, 10); i++; break;
      case '--batch-size': args.batchSize = parseInt(v, 10); i++; break;
      case '--service-name': args.serviceName = v; i++; break;
      case '--expect-file': args.expectFile = v; i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return args;
}

// ---- normalization (mirrors otlpnorm.py) ----------------------------------

// The OTLP JS transformer encodes integral numbers as intValue, others as doubleValue.
function anyValue(v) {
  if (typeof v === 'string') return { string: v };
  if (typeof v === 'boolean') return { bool: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { int: v } : { double: v };
  if (Array.isArray(v)) return { array: v.map(anyValue) };
  throw new Error(`unsupported attribute value ${v}`);
}

function attributes(attrs) {
  const out = {};
  for (const k of Object.keys(attrs || {}).sort()) out[k] = anyValue(attrs[k]);
  return out;
}

// Nanosecond timestamps exceed 2^53, so they travel as BigInt and are written
// as bare JSON integers (see toJson).
const nanos = (hr) => BigInt(hr[0]) * 1000000000n + BigInt(hr[1]);

function normalizeSpan(s) {
  const ctx = s.spanContext();
  const parent = s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId;
  const scope = s.instrumentationScope || s.instrumentationLibrary;
  return {
    signal: 'traces',
    resource: { attributes: attributes(s.resource.attributes) },
    scope: { name: scope.name, version: scope.version || '', attributes: {} },
    name: s.name,
    kind: s.kind + 1, // api SpanKind INTERNAL=0 … → OTLP SPAN_KIND_INTERNAL=1 …
    trace_id: ctx.traceId,
    span_id: ctx.spanId,
    parent_span_id: parent || '',
    trace_state: ctx.traceState ? ctx.traceState.serialize() : '',
    start_time_unix_nano: nanos(s.startTime),
    end_time_unix_nano: nanos(s.endTime),
    attributes: attributes(s.attributes),
    events: s.events.map((e) => ({ name: e.name, time_unix_nano: nanos(e.time), attributes: attributes(e.attributes) })),
    links: [],
    status: { code: s.status.code, message: s.status.message || '' },
  };
}

function toJson(obj) {
  const text = JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? `__BIGINT__${v}` : v));
  return text.replace(/"__BIGINT__(-?\d+)"/g, '$1');
}

// ---- workload ---------------------------------------------------------------

function attrsFor(i) {
  return {
    'item.index': i,
    'item.label': `label-${i % 7}`,
    'item.ratio': i / 8 + 0.125,
    'item.even': i % 2 === 0,
    'item.tags': [`t${i % 3}`, 'common'],
    'item.ints': [i, i + 1, -i],
    'item.floats': [0.5, i * 1.5 + 0.25],
    'item.bools': [true, i % 3 === 0],
  };
}

async function main() {
  const args = parseArgs(process.argv);
  const results = { ok: 0, failed: 0 };
  const inner = new OTLPTraceExporter({ url: args.endpoint.replace(/\/$/, '') + '/v1/traces', timeoutMillis: 10000 });
  // Reports each export's outcome; the SDK's processor otherwise only logs it.
  const reporting = {
    export(spans, done) {
      const t = Date.now();
      inner.export(spans, (r) => {
        const ok = r.code === 0;
        ok ? results.ok++ : results.failed++;
        process.stderr.write(`EXPORT signal=traces items=${spans.length} result=${ok ? 'SUCCESS' : 'FAILURE'} seconds=${((Date.now() - t) / 1000).toFixed(3)}${r.error ? ' error=' + r.error.message : ''}\n`);
        done(r);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
  const captured = [];
  const capture = {
    onStart() {},
    onEnd(span) { captured.push(span); },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({
      'service.name': args.serviceName,
      'service.instance.id': 'instance-1',
      'deployment.environment': 'e2e',
      'host.cpu.count': 2,
    })),
    spanProcessors: [
      capture,
      new BatchSpanProcessor(reporting, { maxExportBatchSize: args.batchSize, maxQueueSize: Math.max(2048, args.count * 2), scheduledDelayMillis: 50 }),
    ],
  });
  const tracer = provider.getTracer('sluice.e2e.node', '4.5.6');

  let made = 0;
  for (let tree = 0; made < args.count; tree++) {
    const t0 = 1700000000 + tree; // seconds; fixed, so the workload is deterministic
    const depth = Math.min(3, args.count - made);
    const spans = [];
    let parentCtx = context.active();
    for (let level = 0; level < depth; level++) {
      const kind = [SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.CLIENT][level];
      const name = level === 0 ? `root-${tree}` : `child-${tree}-${level}`;
      const span = tracer.startSpan(name, { kind, attributes: attrsFor(made), startTime: [t0, level * 10000] }, parentCtx);
      span.addEvent(level === 0 ? 'request.received' : 'step', { level, ok: true }, [t0, level * 10000 + 5]);
      if (level === 0) span.setStatus({ code: SpanStatusCode.OK });
      if (level === 2) span.setStatus({ code: SpanStatusCode.ERROR, message: `failure in tree ${tree}` });
      parentCtx = trace.setSpan(parentCtx, span);
      spans.push(span);
      made++;
    }
    spans.reverse().forEach((s, i) => s.end([t0, 900000 - (spans.length - 1 - i) * 1000]));
  }

  await provider.forceFlush();
  await provider.shutdown();
  const items = captured.map(normalizeSpan);
  if (args.expectFile) writeFileSync(args.expectFile, toJson({ signal: 'traces', items }));
  const ok = results.failed === 0 && results.ok > 0;
  console.log(`SENT signal=traces items=${items.length} exports_ok=${results.ok} exports_failed=${results.failed} ${ok ? 'OK' : 'FAILED'}`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(2); });
