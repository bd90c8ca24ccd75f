// One Cloud Functions instance: a Node process that loads the built main module (dist/functions/index.js)
// and serves one function through the Functions Framework's server, one request at a time (Cloud
// Functions' default concurrency of 1: Terraform sets no other for fleetAudit and fleetAuditShard). The
// bench's front (test/bench/fleet100k.ts) queues requests while every instance is busy, as Cloud Run
// does, so a second request here is a bug and answers 429 (Pub/Sub would redeliver it).
// Plain JavaScript, run without tsx: its memory is the instance's, nothing else's.
//   node function-instance.mjs <path of dist/functions/index.js> <function>
// Tells its parent (IPC) {port} once listening; answers the message 'usage' with what it spent so far
// (shared/metrics.ts counters), the requests it served, its peak resident memory and, when started with
// --expose-gc, the heap still in use after a full collection (what the requests it served left behind).
import { createServer } from 'node:http';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const [mainModule, target] = process.argv.slice(2);
await import(pathToFileURL(mainModule).href);
// The same module instance the function counts in (the built tree's shared/metrics.js).
const { usageSnapshot } = await import(pathToFileURL(path.join(path.dirname(mainModule), '../shared/metrics.js')).href);
const { getTestServer } = await import('@google-cloud/functions-framework/testing');
const app = getTestServer(target).listeners('request')[0];

const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
// maxRSS is in KiB: the peak over the life of the process so far.
const peakRssMb = () => mb(process.resourceUsage().maxRSS * 1024);
/** The peak once the first request was answered: a fresh instance's cold start and one request. */
let firstRequestPeakRssMb = null;
let busy = false;
let served = 0;
let refused = 0;
const server = createServer((req, res) => {
  if (busy) {
    refused += 1;
    res.writeHead(429).end();
    return;
  }
  busy = true;
  served += 1;
  res.on('close', () => {
    busy = false;
    firstRequestPeakRssMb ??= peakRssMb();
  });
  app(req, res);
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message !== 'usage') return;
  globalThis.gc?.();
  process.send({
    heapUsedAfterGcMb: globalThis.gc ? mb(process.memoryUsage().heapUsed) : null,
    usage: usageSnapshot(),
    served,
    refused,
    rssMb: mb(process.memoryUsage().rss),
    peakRssMb: peakRssMb(),
    firstRequestPeakRssMb,
  });
});
process.on('disconnect', () => process.exit(0));
