// Head-sampled traffic for test_weights_e2e.py: the real OpenTelemetry JS SDK sends spans that
// already carry a sampling weight, the way they reach a collector behind other samplers:
//   - an incoming W3C context (traceparent + tracestate `ot=th:<T>`, extracted by the SDK's own
//     W3CTraceContextPropagator) whose tracestate the SDK copies onto every span of the trace;
//   - a Honeycomb-style `SampleRate` span attribute (a JS integer goes out as an OTLP int, a
//     fraction as a double).
// Each case of the manifest given on the command line becomes `count` one-span traces (or, for
// `mixed`, a root with a SampleRate attribute and a child continued from an incoming context of
// the same trace with its own th: two weights in one trace). `error: true` sets the status to
// ERROR so the collector's errors policy keeps the trace; otherwise its ratio policy decides.
//
// Usage: NODE_PATH=tests/js/node_modules node weights.js PROTOCOL ENDPOINT CASES OUT
//   CASES  JSON: [{"name", "count", "error", "tracestate"?, "sampleRate"?, "mixed"?}, ...]
//   OUT    where to write what was sent: [{"case", "traceId", "spanIds"}, ...]
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const [protocol, endpoint, casesPath, outPath] = process.argv.slice(2);
if (!protocol || !endpoint || !casesPath || !outPath) {
  console.error('usage: weights.js PROTOCOL ENDPOINT CASES OUT');
  process.exit(2);
}

function exporterFor(p) {
  const pkg = {
    grpc: '@opentelemetry/exporter-trace-otlp-grpc',
    'http/protobuf': '@opentelemetry/exporter-trace-otlp-proto',
    'http/json': '@opentelemetry/exporter-trace-otlp-http',
  }[p];
  if (!pkg) throw new Error('unknown protocol ' + p);
  const { OTLPTraceExporter } = require(pkg);
  return new OTLPTraceExporter({ url: endpoint });
}

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'tt-weights' }),
  spanProcessors: [
    new BatchSpanProcessor(exporterFor(protocol), {
      maxExportBatchSize: 64,
      scheduledDelayMillis: 50,
      maxQueueSize: 100000,
    }),
  ],
});
const tracer = provider.getTracer('tt-weights', '1.0.0');
const propagator = new W3CTraceContextPropagator();

// The context a server builds from an incoming request's headers.
function incoming(traceId, tracestate) {
  const carrier = {
    traceparent: '00-' + traceId + '-' + crypto.randomBytes(8).toString('hex') + '-01',
  };
  if (tracestate) carrier.tracestate = tracestate;
  return propagator.extract(api.ROOT_CONTEXT, carrier, api.defaultTextMapGetter);
}

function finish(span, error) {
  if (error) span.setStatus({ code: api.SpanStatusCode.ERROR, message: 'boom' });
  span.end();
  return span.spanContext().spanId;
}

const sent = [];
for (const c of JSON.parse(fs.readFileSync(casesPath, 'utf8'))) {
  for (let i = 0; i < c.count; i++) {
    const traceId = crypto.randomBytes(16).toString('hex');
    const spanIds = [];
    if (c.mixed) {
      // Root: no incoming tracestate, weighed by its SampleRate attribute.
      const root = tracer.startSpan('GET /cart', { kind: api.SpanKind.SERVER },
                                    incoming(traceId, null));
      root.setAttribute('SampleRate', c.sampleRate);
      // Child: another service continued the trace from a context carrying its own th.
      const child = tracer.startSpan('GET /price', { kind: api.SpanKind.SERVER },
                                     incoming(traceId, c.tracestate));
      spanIds.push({ id: finish(root, c.error), weight: 'sampleRate' });
      spanIds.push({ id: finish(child, false), weight: 'tracestate' });
    } else {
      const span = tracer.startSpan('GET /checkout', { kind: api.SpanKind.SERVER },
                                    incoming(traceId, c.tracestate || null));
      if (c.sampleRate !== undefined) span.setAttribute('SampleRate', c.sampleRate);
      span.setAttribute('http.request.method', 'GET');
      spanIds.push({ id: finish(span, c.error), weight: c.tracestate ? 'tracestate' : 'sampleRate' });
    }
    sent.push({ case: c.name, traceId, spans: spanIds });
  }
}

provider.forceFlush().then(() => provider.shutdown()).then(() => {
  fs.writeFileSync(outPath, JSON.stringify(sent));
  console.log('weights.js: sent ' + sent.length + ' traces over ' + protocol);
}, (e) => {
  console.error('weights.js: export failed: ' + e);
  process.exit(1);
});
