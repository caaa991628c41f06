#!/usr/bin/env node
// A real OpenTelemetry JS SDK client for tailtrace's wire-compatibility test
// (tests/wire/test_wire_js.c). It exports a fixed set of spans that between them carry every
// field kind the SDK can produce, through one of the official OTLP exporters, and exits 0 only
// when the exporter reports success.
//
// Usage: node export_all_fields.js <http/protobuf|http/json|grpc> <url> [gzip|none] [tag]
// The tag (default "run") is added as the resource attribute "wire.run" so the C side can tell
// runs apart. Every value below is mirrored by assertions in tests/wire/test_wire_js.c: change
// both together.
'use strict';

const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { ExportResultCode, TraceState } = require('@opentelemetry/core');

const [protocol, url, compression = 'none', tag = 'run'] = process.argv.slice(2);
if (!protocol || !url) {
  console.error('usage: export_all_fields.js <http/protobuf|http/json|grpc> <url> [gzip|none] [tag]');
  process.exit(2);
}

function makeExporter() {
  const opts = { url, compression, timeoutMillis: 20000 };
  switch (protocol) {
    case 'http/protobuf':
      return new (require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter)(opts);
    case 'http/json':
      return new (require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)(opts);
    case 'grpc':
      return new (require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter)(opts);
    default:
      console.error('unknown protocol ' + protocol);
      process.exit(2);
  }
}

// The exporter's own result is the truth about delivery: wrap export() to record it.
const exporter = makeExporter();
let failures = 0;
let exported = 0;
const realExport = exporter.export.bind(exporter);
exporter.export = (spans, done) => {
  realExport(spans, (result) => {
    if (result.code === ExportResultCode.SUCCESS) exported += spans.length;
    else {
      failures++;
      console.error('export failed: ' + (result.error && result.error.message));
    }
    done(result);
  });
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'wire-test',
    'wire.run': tag,
    'res.int': 7,
    'res.bool': false,
    'res.double': 0.25,
    'res.strs': ['x', 'y'],
  }),
  spanLimits: {
    attributeCountLimit: 16,
    eventCountLimit: 3,
    linkCountLimit: 2,
    attributePerEventCountLimit: 8,
    attributePerLinkCountLimit: 8,
  },
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('tt-wire', '1.2.3');

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';
const parentCtx = api.trace.setSpanContext(api.ROOT_CONTEXT, {
  traceId: TRACE_ID,
  spanId: PARENT_ID,
  traceFlags: api.TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'),
});
const T0 = [1700000000, 123456789]; // 1700000000123456789 ns
const T1 = [1700000001, 0];
const TE = [1700000000, 500000000];

// 1. The span with every field kind.
const linkCtx = {
  traceId: '11111111111111111111111111111111',
  spanId: '2222222222222222',
  traceFlags: api.TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('vendor=value'),
};
const span = tracer.startSpan(
  'all-fields',
  {
    kind: api.SpanKind.SERVER,
    startTime: T0,
    attributes: {
      'attr.string': 'hello',
      'attr.bool': true,
      'attr.int': 42,
      'attr.negint': -5,
      'attr.double': 3.5,
      'attr.strings': ['a', 'b'],
      'attr.bools': [true, false],
      'attr.ints': [1, 2, 3],
      'attr.doubles': [1.5, 2.5],
      'attr.utf8': 'héllo ☃',
    },
    links: [{ context: linkCtx, attributes: { 'link.attr': 'lv', 'link.n': 9 } }],
  },
  parentCtx,
);
span.addEvent('evt', { 'event.attr': 'ev', 'event.n': 7 }, TE);
span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'boom' });
span.end(T1);

// 2. One span per remaining kind (children of the first), status OK on one of them.
const childCtx = api.trace.setSpan(parentCtx, span);
for (const [name, kind] of [
  ['kind-internal', api.SpanKind.INTERNAL],
  ['kind-client', api.SpanKind.CLIENT],
  ['kind-producer', api.SpanKind.PRODUCER],
  ['kind-consumer', api.SpanKind.CONSUMER],
]) {
  const s = tracer.startSpan(name, { kind, startTime: T0 }, childCtx);
  if (kind === api.SpanKind.CLIENT) s.setStatus({ code: api.SpanStatusCode.OK });
  s.end(T1);
}

// 3. A span over the limits, so the dropped counts are non-zero: 20 attributes (limit 16),
// 5 events (limit 3), 3 links (limit 2). A new root: its own trace, no remote parent.
const attrs = {};
for (let i = 0; i < 20; i++) attrs['k' + i] = i;
const lim = tracer.startSpan('limits', {
  root: true,
  startTime: T0,
  attributes: attrs,
  links: [1, 2, 3].map((n) => ({
    context: { ...linkCtx, spanId: '000000000000000' + n, traceState: undefined },
  })),
});
for (let i = 0; i < 5; i++) lim.addEvent('e' + i, {}, TE);
lim.end(T1);

provider
  .forceFlush()
  .then(() => provider.shutdown())
  .then(() => {
    if (failures > 0 || exported !== 6) {
      console.error(`exported ${exported} spans, ${failures} failed exports`);
      process.exit(1);
    }
    process.exit(0);
  })
  .catch((e) => {
    console.error('error: ' + e);
    process.exit(1);
  });
