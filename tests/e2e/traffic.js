// Traffic generator for the collector's end-to-end tests: the real OpenTelemetry JS SDK
// (sdk-trace-base 2.x + the 0.223.x OTLP exporters) sends a mix of normal, errored and slow
// multi-span traces to the collector. Spans of one trace are ended in shuffled order across
// traces and exported in small batches, so a trace's spans arrive in separate requests and
// out of order (children before or after their root).
//
// Usage: NODE_PATH=tests/js/node_modules node traffic.js PROTOCOL ENDPOINT MANIFEST [options]
//   PROTOCOL  grpc | http/protobuf | http/json
//   ENDPOINT  grpc: http://127.0.0.1:PORT ; http: http://127.0.0.1:PORT/v1/traces
//   MANIFEST  where to write what was sent (JSON), for the checker
// Options (env): TT_E2E_NORMAL (default 600), TT_E2E_ERRORS (30), TT_E2E_SLOW (30),
//   TT_E2E_SLOW_MS (2000), TT_E2E_PHASE (main | late), TT_E2E_LATE_OF (manifest of the main
//   phase: the late phase adds one late child span to each listed trace).
'use strict';
const fs = require('fs');
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const [protocol, endpoint, manifestPath] = process.argv.slice(2);
if (!protocol || !endpoint || !manifestPath) {
  console.error('usage: traffic.js PROTOCOL ENDPOINT MANIFEST');
  process.exit(2);
}

function exporterFor(p) {
  if (p === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url: endpoint });
  }
  if (p === 'http/protobuf') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url: endpoint });
  }
  if (p === 'http/json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url: endpoint });
  }
  throw new Error('unknown protocol ' + p);
}

const num = (name, dflt) => (process.env[name] ? parseInt(process.env[name], 10) : dflt);
const phase = process.env.TT_E2E_PHASE || 'main';

const exporter = exporterFor(protocol);
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'tt-e2e', 'deployment.environment': 'test' }),
  spanProcessors: [
    new BatchSpanProcessor(exporter, {
      maxExportBatchSize: 16,
      scheduledDelayMillis: 50,
      maxQueueSize: 100000,
    }),
  ],
});
const tracer = provider.getTracer('tt-e2e-traffic', '1.0.0');

// Fixed epoch for explicit timestamps: start/end times are chosen, never slept for.
const base = Date.now() - 60000;
const ms = (t) => new Date(base + t);

function shuffle(a) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// Builds one trace: a SERVER root and two children; returns the spans to end later, in any
// order, with the end time each gets.
function buildTrace(category, t0, slowMs) {
  const rootDur = category === 'slow' ? slowMs : 10 + Math.floor(Math.random() * 40);
  const root = tracer.startSpan('GET /checkout', { kind: api.SpanKind.SERVER, startTime: ms(t0) });
  const ctx = api.trace.setSpan(api.context.active(), root);
  const a = tracer.startSpan('db.query', { kind: api.SpanKind.CLIENT, startTime: ms(t0 + 1) }, ctx);
  const b = tracer.startSpan('render', { kind: api.SpanKind.INTERNAL, startTime: ms(t0 + 2) }, ctx);
  a.setAttribute('db.system', 'postgresql');
  b.setAttribute('items', 3);
  if (category === 'error') {
    a.setStatus({ code: api.SpanStatusCode.ERROR, message: 'connection reset' });
    a.recordException({ name: 'IOError', message: 'connection reset' });
  }
  const sc = root.spanContext();
  return {
    entry: {
      traceId: sc.traceId,
      category,
      spanIds: [sc.spanId, a.spanContext().spanId, b.spanContext().spanId],
    },
    ends: [
      [root, ms(t0 + rootDur)],
      [a, ms(t0 + Math.min(5, rootDur - 2))],
      [b, ms(t0 + rootDur - 1)],
    ],
  };
}

async function main() {
  const manifest = { protocol, phase, traces: [] };
  let ends = [];
  if (phase === 'main') {
    const cats = [];
    for (let i = 0; i < num('TT_E2E_NORMAL', 600); i++) cats.push('normal');
    for (let i = 0; i < num('TT_E2E_ERRORS', 30); i++) cats.push('error');
    for (let i = 0; i < num('TT_E2E_SLOW', 30); i++) cats.push('slow');
    shuffle(cats);
    const slowMs = num('TT_E2E_SLOW_MS', 2000);
    cats.forEach((c, i) => {
      const t = buildTrace(c, i * 3, slowMs);
      manifest.traces.push(t.entry);
      ends = ends.concat(t.ends);
    });
  } else {
    // Late phase: one more child for each trace of the main phase, sent after the collector
    // has decided; it must follow its trace's decision.
    const main = JSON.parse(fs.readFileSync(process.env.TT_E2E_LATE_OF, 'utf8'));
    for (const tr of main.traces) {
      const ctx = api.trace.setSpanContext(api.context.active(), {
        traceId: tr.traceId,
        spanId: tr.spanIds[0],
        traceFlags: api.TraceFlags.SAMPLED,
        isRemote: true,
      });
      const s = tracer.startSpan('late.work', { startTime: ms(10) }, ctx);
      const sc = s.spanContext();
      if (sc.traceId !== tr.traceId) throw new Error('late span did not join its trace');
      manifest.traces.push({ traceId: sc.traceId, category: tr.category, spanIds: [sc.spanId] });
      ends.push([s, ms(11)]);
    }
  }
  // End in chunks with a flush after each, so batches go out steadily (the exporter caps its
  // concurrent requests) and the spans of one trace land in different requests.
  shuffle(ends);
  for (let i = 0; i < ends.length; i += 64) {
    for (const [span, end] of ends.slice(i, i + 64)) span.end(end);
    await provider.forceFlush();
  }
  await provider.shutdown();
  fs.writeFileSync(manifestPath, JSON.stringify(manifest));
  console.log(`sent ${manifest.traces.length} traces (${phase}) over ${protocol}`);
}

main().catch((e) => {
  console.error('traffic.js failed:', e);
  process.exit(1);
});
