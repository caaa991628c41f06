// Known traffic for tests/e2e/test_signals_e2e.py, sent by the real OpenTelemetry JS SDK: each
// trace is a SERVER root of a known duration (some failed by status, some by an HTTP 503), a
// CLIENT and an INTERNAL child that the golden signals must not count, and on every fifth trace a
// CONSUMER child that they must. Explicit start and end times make every duration exact.
//
// Usage: NODE_PATH=tests/js/node_modules node signals_traffic.js PROTOCOL ENDPOINT MANIFEST
//   TT_SIG_TRACES (default 300) traces; TT_SIG_ROUTES (default 3) distinct http.route values.
// The manifest lists the spans the collector should count and how many spans were sent.
'use strict';
const fs = require('fs');
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const [protocol, endpoint, manifestPath] = process.argv.slice(2);
if (!protocol || !endpoint || !manifestPath) {
  console.error('usage: signals_traffic.js PROTOCOL ENDPOINT MANIFEST');
  process.exit(2);
}

function exporterFor(p) {
  if (p === 'grpc')
    return new (require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter)({ url: endpoint });
  if (p === 'http/protobuf')
    return new (require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter)({ url: endpoint });
  if (p === 'http/json')
    return new (require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)({ url: endpoint });
  throw new Error('unknown protocol ' + p);
}

const traces = parseInt(process.env.TT_SIG_TRACES || '300', 10);
const routes = parseInt(process.env.TT_SIG_ROUTES || '3', 10);
// Milliseconds, none on a bucket bound (the libtailtrace client covers the bounds exactly).
const durMs = [0.4, 1.7, 4, 9, 14, 26, 45, 80, 120, 260, 480, 900, 1400, 2600, 6000, 12000,
  40000, 70000];

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'tt-sig-js' }),
  spanProcessors: [new BatchSpanProcessor(exporterFor(protocol), {
    maxExportBatchSize: 64, maxQueueSize: 100000, scheduledDelayMillis: 50,
  })],
});
const tracer = provider.getTracer('signals');

// [seconds, nanoseconds] from a base in whole seconds plus a duration in nanoseconds.
const hr = (baseS, ns) => [baseS + Math.floor(ns / 1e9), ns % 1e9];

const counted = [];
let sent = 0;
const baseS = Math.floor(Date.now() / 1000) - 120;
for (let i = 0; i < traces; i++) {
  const durNs = Math.round(durMs[i % durMs.length] * 1e6);
  const route = '/items/' + (i % routes);
  const root = tracer.startSpan('GET /items/{id}', {
    kind: api.SpanKind.SERVER, startTime: hr(baseS, 0),
    attributes: { 'http.route': route, 'http.request.method': 'GET' },
  });
  const failed = i % 7 === 0;
  const http5xx = !failed && i % 11 === 0;
  root.setAttribute('http.response.status_code', http5xx ? 503 : 200);
  if (failed)
    root.setStatus({ code: api.SpanStatusCode.ERROR, message: 'boom' });
  const ctx = api.trace.setSpan(api.context.active(), root);
  for (const [name, kind] of [['SELECT items', api.SpanKind.CLIENT], ['render', api.SpanKind.INTERNAL]]) {
    const c = tracer.startSpan(name, { kind, startTime: hr(baseS, 100) }, ctx);
    c.end(hr(baseS, 200));
    sent++;
  }
  if (i % 5 === 0) {
    const c = tracer.startSpan('process order', { kind: api.SpanKind.CONSUMER, startTime: hr(baseS, 0) }, ctx);
    c.setStatus({ code: api.SpanStatusCode.OK });
    c.end(hr(baseS, 3200000)); // 3.2 ms
    sent++;
    counted.push({ service: 'tt-sig-js', operation: 'process order', kind: 'CONSUMER', status: 'OK',
      error: false, route: '', dur_ns: 3200000 });
  }
  root.end(hr(baseS, durNs));
  sent++;
  counted.push({ service: 'tt-sig-js', operation: 'GET /items/{id}', kind: 'SERVER',
    status: failed ? 'ERROR' : 'UNSET', error: failed || http5xx, route, dur_ns: durNs });
}

provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => {
    fs.writeFileSync(manifestPath, JSON.stringify({ spans: counted, sent }));
    console.log('signals_traffic: ' + sent + ' spans sent, ' + counted.length + ' to be counted');
  })
  .catch((e) => { console.error(e); process.exit(1); });
