// Traffic of a small distributed application for the collector's multi-collector tests: every
// service has its own tracer provider, BatchSpanProcessor and OTLP exporter, as separate
// processes would, and sends to its own collector (a sidecar per service). Context crosses the
// services as W3C traceparent headers through api.propagation inject/extract on a carrier
// object, so each service's entry span has a REMOTE parent (OTLP span flags 0x300).
//
// A cross-service trace is six spans, two per service:
//   frontend  SERVER "GET /checkout" (the root) -> PRODUCER "publish order" (injected)
//   middle    CONSUMER "process order" (remote parent) -> CLIENT "GET /stock" (injected)
//   leaf      SERVER "GET /stock" (remote parent) -> INTERNAL "db.query"
// The frontend hands the order over a queue and answers at once, so nothing that happens in the
// middle or the leaf shows in the frontend's spans. Evidence is injected in one service only:
//   error in middle: the CONSUMER span fails (status ERROR);
//   error in leaf:   db.query fails (status ERROR), the leaf retries and answers 200;
//   slow in middle:  the CONSUMER span lasts TT_SVC_SLOW_MS after a quick stock call;
//   slow in leaf:    db.query lasts TT_SVC_SLOW_MS, so the leaf's SERVER span and the middle's
//                    CLIENT and CONSUMER spans wait for it: the middle sees the latency too.
// Timestamps are explicit (start and end chosen, never slept for), so a slow trace costs no
// wall time. Traces are paced over TT_SVC_SPREAD_MS of wall time and the processors keep the
// SDK's default 5 s schedule (TT_SVC_BSP_DELAY_MS overrides it): a trace's spans leave the
// three services in different export batches, at moments that differ by up to the schedule.
// TT_SVC_LOCAL frontend-only traces (static pages, two spans) go first, TT_SVC_OFFSET_MS before
// the cross-service traffic, so the frontend's export timer runs out of phase with the others.
//
// Usage (NODE_PATH=tests/js/node_modules):
//   node services.js sidecars PROTOCOLS FRONTEND_EP MIDDLE_EP LEAF_EP MANIFEST
//     PROTOCOLS: one of grpc | http/protobuf, or three comma-separated (frontend,middle,leaf);
//     an endpoint is http://127.0.0.1:PORT for grpc, http://127.0.0.1:PORT/v1/traces for http.
//     Endpoints may also come from TT_SVC_FRONTEND, TT_SVC_MIDDLE, TT_SVC_LEAF (pass "-").
//   node services.js frontend PROTOCOL ENDPOINT MANIFEST
//   node services.js backend PROTOCOL ENDPOINT MANIFEST
//     Two processes of one application sharing one collector: the frontend process starts
//     TT_SVC_REQUESTS root traces, lets its processor export them on its own timer, then prints
//     one "TP <traceparent> <t0 ms>" line per request and exits. The backend process reads
//     those lines on stdin, serves each request with a SERVER span whose parent is the remote
//     CLIENT span and which fails (status ERROR; the frontend saw 202 Accepted) plus an
//     INTERNAL child, and exports on its own timer. Both write a manifest.
// Options (env): TT_SVC_NORMAL (200), TT_SVC_ERRORS (40), TT_SVC_SLOW (40), TT_SVC_LOCAL (0),
//   TT_SVC_SLOW_MS (1500), TT_SVC_SPREAD_MS (6000), TT_SVC_OFFSET_MS (1500), TT_SVC_REQUESTS (24),
//   TT_SVC_BSP_DELAY_MS (unset: the SDK's default), TT_SVC_EXPORT_WAIT_MS (60000).
// The manifest: {mode, traces: [{traceId, category (normal|error|slow), injected (middle|leaf|
//   null), seenBy (services whose own spans show the evidence), local (frontend only), spanIds,
//   services: {frontend: [span ids], middle: [...], leaf: [...]}}]}. Any failed export makes the
//   exit status 1.
'use strict';
const fs = require('fs');
const readline = require('readline');
const api = require('@opentelemetry/api');
const { ExportResultCode, W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const num = (name, dflt) => (process.env[name] ? parseInt(process.env[name], 10) : dflt);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());

function exporterFor(protocol, url) {
  if (protocol === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url });
  }
  if (protocol === 'http/protobuf') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url });
  }
  throw new Error('unknown protocol ' + protocol);
}

// One service: its provider, its processor on the default schedule, and an exporter wrapper
// that counts what the collector accepted, so a process can wait for its own timer to export
// instead of flushing early.
class Service {
  constructor(name, protocol, url) {
    this.name = name;
    this.exported = 0;
    this.failed = 0;
    this.ended = 0;
    const inner = exporterFor(protocol, url);
    const self = this;
    const exporter = {
      export(spans, done) {
        inner.export(spans, (result) => {
          if (result.code === ExportResultCode.SUCCESS) self.exported += spans.length;
          else {
            self.failed += spans.length;
            console.error(`${name}: export of ${spans.length} spans failed: ${result.error}`);
          }
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
    };
    // The SDK's schedule and batch size; only the queue is larger, so that no span is dropped.
    const opts = { maxQueueSize: 100000 };
    if (process.env.TT_SVC_BSP_DELAY_MS)
      opts.scheduledDelayMillis = parseInt(process.env.TT_SVC_BSP_DELAY_MS, 10);
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': name, 'deployment.environment': 'test' }),
      spanProcessors: [new BatchSpanProcessor(exporter, opts)],
    });
    this.tracer = this.provider.getTracer('tt-e2e-services', '1.0.0');
  }

  span(name, kind, start, ctx) {
    return this.tracer.startSpan(name, { kind, startTime: new Date(start) }, ctx);
  }

  end(span, at) {
    span.end(new Date(at));
    this.ended++;
  }

  // Resolves once the processor has exported every ended span on its own schedule.
  async exportedAll(what) {
    const deadline = Date.now() + num('TT_SVC_EXPORT_WAIT_MS', 60000);
    while (this.exported + this.failed < this.ended) {
      if (Date.now() > deadline)
        throw new Error(`${this.name}: ${what}: ${this.exported} of ${this.ended} spans exported`);
      await sleep(20);
    }
  }

  async close() {
    await this.provider.forceFlush();
    await this.provider.shutdown();
  }
}

// What crosses a process boundary: the carrier of headers, filled and read by the global
// propagator. The extracted parent is remote.
function inject(span) {
  const carrier = {};
  api.propagation.inject(api.trace.setSpan(api.ROOT_CONTEXT, span), carrier);
  return carrier;
}

function extract(carrier) {
  const ctx = api.propagation.extract(api.ROOT_CONTEXT, carrier);
  const sc = api.trace.getSpanContext(ctx);
  if (!sc || !sc.isRemote)
    throw new Error('traceparent did not extract: ' + JSON.stringify(carrier));
  return ctx;
}

const child = (span) => api.trace.setSpan(api.ROOT_CONTEXT, span);
const ids = (...spans) => spans.map((s) => s.spanContext().spanId);
const fail = (span, message) => {
  span.setStatus({ code: api.SpanStatusCode.ERROR, message });
  span.recordException({ name: 'Error', message });
};

// One cross-service request; spans are ended in the order the work finishes.
function crossTrace(svc, category, injected, slowMs) {
  const [fe, mid, leaf] = svc;
  const t0 = Date.now() - slowMs - 1000;
  const root = fe.span('GET /checkout', api.SpanKind.SERVER, t0, api.ROOT_CONTEXT);
  root.setAttribute('http.request.method', 'GET');
  root.setAttribute('http.response.status_code', 202);
  const pub = fe.span('publish order', api.SpanKind.PRODUCER, t0 + 5, child(root));
  const toMiddle = inject(pub);
  fe.end(pub, t0 + 8);
  fe.end(root, t0 + 20);

  const slowLeaf = category === 'slow' && injected === 'leaf';
  const slowMiddle = category === 'slow' && injected === 'middle';
  const q = slowLeaf ? slowMs : 10; // db.query
  const consume = mid.span('process order', api.SpanKind.CONSUMER, t0 + 30, extract(toMiddle));
  const call = mid.span('GET /stock', api.SpanKind.CLIENT, t0 + 32, child(consume));
  call.setAttribute('http.request.method', 'GET');
  const toLeaf = inject(call);

  const serve = leaf.span('GET /stock', api.SpanKind.SERVER, t0 + 33, extract(toLeaf));
  serve.setAttribute('http.response.status_code', 200);
  const db = leaf.span('db.query', api.SpanKind.INTERNAL, t0 + 34, child(serve));
  db.setAttribute('db.system', 'postgresql');
  if (category === 'error' && injected === 'leaf') fail(db, 'deadlock detected (retried)');
  leaf.end(db, t0 + 34 + q);
  leaf.end(serve, t0 + 36 + q);

  call.setAttribute('http.response.status_code', 200);
  mid.end(call, t0 + 38 + q);
  if (category === 'error' && injected === 'middle') fail(consume, 'order rejected');
  mid.end(consume, slowMiddle ? t0 + 30 + slowMs : t0 + 42 + q);

  const seenBy = !injected ? [] : slowLeaf ? ['leaf', 'middle'] : [injected];
  const services = { frontend: ids(root, pub), middle: ids(consume, call), leaf: ids(serve, db) };
  return {
    traceId: root.spanContext().traceId,
    category,
    injected,
    seenBy,
    local: false,
    services,
    spanIds: [].concat(services.frontend, services.middle, services.leaf),
  };
}

// A static page the frontend serves alone.
function localTrace(fe) {
  const t0 = Date.now() - 100;
  const root = fe.span('GET /static/app.js', api.SpanKind.SERVER, t0, api.ROOT_CONTEXT);
  const render = fe.span('read file', api.SpanKind.INTERNAL, t0 + 1, child(root));
  fe.end(render, t0 + 3);
  fe.end(root, t0 + 5);
  const services = { frontend: ids(root, render), middle: [], leaf: [] };
  return {
    traceId: root.spanContext().traceId,
    category: 'normal',
    injected: null,
    seenBy: [],
    local: true,
    services,
    spanIds: services.frontend.slice(),
  };
}

function shuffle(a) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function endpointArg(value, envName) {
  const v = value && value !== '-' ? value : process.env[envName];
  if (!v) throw new Error(`no endpoint: pass it or set ${envName}`);
  return v;
}

async function sidecars(argv) {
  const [protocols, feEp, midEp, leafEp, manifestPath] = argv;
  if (!protocols || !manifestPath)
    throw new Error('usage: services.js sidecars PROTOCOLS FE MID LEAF MANIFEST');
  const protos = protocols.includes(',') ? protocols.split(',') : [protocols, protocols, protocols];
  const eps = [endpointArg(feEp, 'TT_SVC_FRONTEND'), endpointArg(midEp, 'TT_SVC_MIDDLE'),
    endpointArg(leafEp, 'TT_SVC_LEAF')];
  const svc = ['frontend', 'middle', 'leaf'].map((n, i) => new Service(n, protos[i], eps[i]));
  const slowMs = num('TT_SVC_SLOW_MS', 1500);
  const plan = [];
  for (let i = 0; i < num('TT_SVC_NORMAL', 200); i++) plan.push(['normal', null]);
  // Half the evidence in the middle, half in the leaf.
  const where = (i) => (i % 2 ? 'leaf' : 'middle');
  for (let i = 0; i < num('TT_SVC_ERRORS', 40); i++) plan.push(['error', where(i)]);
  for (let i = 0; i < num('TT_SVC_SLOW', 40); i++) plan.push(['slow', where(i)]);
  shuffle(plan);

  const manifest = { mode: 'sidecars', protocols: protos, traces: [] };
  for (let i = 0; i < num('TT_SVC_LOCAL', 0); i++) manifest.traces.push(localTrace(svc[0]));
  if (manifest.traces.length > 0) await sleep(num('TT_SVC_OFFSET_MS', 1500));
  const step = num('TT_SVC_SPREAD_MS', 6000) / Math.max(1, plan.length);
  const start = Date.now();
  for (let i = 0; i < plan.length; i++) {
    manifest.traces.push(crossTrace(svc, plan[i][0], plan[i][1], slowMs));
    const ahead = start + (i + 1) * step - Date.now();
    if (ahead > 0) await sleep(ahead);
  }
  await Promise.all(svc.map((s) => s.close()));
  fs.writeFileSync(manifestPath, JSON.stringify(manifest));
  const failed = svc.reduce((n, s) => n + s.failed, 0);
  console.log(`services.js: sent ${manifest.traces.length} traces over ${protos.join(',')}; ` +
    svc.map((s) => `${s.name} ${s.exported} spans`).join(', ') +
    (failed ? `; ${failed} spans FAILED to export` : ''));
  if (failed) process.exitCode = 1;
}

async function frontendProcess(argv) {
  const [protocol, endpoint, manifestPath] = argv;
  const fe = new Service('frontend', protocol, endpoint);
  const manifest = { mode: 'frontend', traces: [] };
  const lines = [];
  for (let i = 0; i < num('TT_SVC_REQUESTS', 24); i++) {
    const t0 = Date.now() - 1000;
    const root = fe.span('POST /orders', api.SpanKind.SERVER, t0, api.ROOT_CONTEXT);
    const call = fe.span('POST /reserve', api.SpanKind.CLIENT, t0 + 2, child(root));
    const carrier = inject(call);
    // The backend queues the work and answers 202: its failure shows only in its own spans.
    call.setAttribute('http.response.status_code', 202);
    fe.end(call, t0 + 60);
    fe.end(root, t0 + 62);
    lines.push(`TP ${carrier.traceparent} ${t0}`);
    manifest.traces.push({ traceId: root.spanContext().traceId, category: 'error',
      services: { frontend: ids(root, call) } });
    await sleep(10);
  }
  // The processor's own timer exports: the backend's spans must come from an independent one.
  await fe.exportedAll('waiting for the scheduled export');
  fs.writeFileSync(manifestPath, JSON.stringify(manifest));
  await fe.close();
  for (const l of lines) console.log(l);
  console.error(`services.js frontend: ${fe.exported} spans exported on the timer`);
  if (fe.failed) process.exitCode = 1;
}

async function backendProcess(argv) {
  const [protocol, endpoint, manifestPath] = argv;
  const be = new Service('inventory', protocol, endpoint);
  const manifest = { mode: 'backend', traces: [] };
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const m = /^TP (\S+) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const t0 = parseInt(m[2], 10);
    const serve = be.span('POST /reserve', api.SpanKind.SERVER, t0 + 10,
      extract({ traceparent: m[1] }));
    const work = be.span('reserve stock', api.SpanKind.INTERNAL, t0 + 11, child(serve));
    fail(serve, 'out of stock');
    be.end(work, t0 + 40);
    be.end(serve, t0 + 50);
    manifest.traces.push({ traceId: serve.spanContext().traceId, category: 'error',
      services: { inventory: ids(serve, work) } });
  }
  await be.exportedAll('waiting for the scheduled export');
  fs.writeFileSync(manifestPath, JSON.stringify(manifest));
  await be.close();
  console.log(`services.js backend: ${manifest.traces.length} requests served, ` +
    `${be.exported} spans exported on the timer`);
  if (be.failed) process.exitCode = 1;
}

const modes = { sidecars, frontend: frontendProcess, backend: backendProcess };
const mode = process.argv[2];
if (!modes[mode]) {
  console.error('usage: services.js sidecars|frontend|backend ...');
  process.exit(2);
}
modes[mode](process.argv.slice(3)).catch((e) => {
  console.error('services.js failed:', e);
  process.exit(1);
});
