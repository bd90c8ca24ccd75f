// One cold start, in a fresh Node process, as a Cloud Functions instance has it: load the built main
// module (dist/functions/index.js, loaded whole for every function) and the Functions Framework's
// server for one target, then deliver one event over HTTP. Prints one JSON line of figures.
// Plain JavaScript, run without tsx: nothing but what the instance loads is measured.
//   node coldstart.mjs <path of dist/functions/index.js> <function> '<{"headers":{...},"body":"..."}>'
// (an HTTP function's request may name its "method" and "path"; events are POSTed to /)
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const [mainModule, target, eventJson] = process.argv.slice(2);
const event = JSON.parse(eventJson);
const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;

const t0 = performance.now();
await import(pathToFileURL(mainModule).href);
const importMs = Math.round(performance.now() - t0);
const importRssMb = mb(process.memoryUsage().rss);

// The same Express server the framework's own main builds for a target.
const { getTestServer } = await import('@google-cloud/functions-framework/testing');
const server = getTestServer(target);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const readyMs = Math.round(performance.now() - t0);

const t1 = performance.now();
const status = await new Promise((resolve, reject) => {
  const req = request(
    {
      host: '127.0.0.1',
      port: server.address().port,
      method: event.method ?? 'POST',
      path: event.path ?? '/',
      headers: event.headers,
    },
    (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    },
  );
  req.on('error', reject);
  req.end(event.body);
});
const firstEventMs = Math.round(performance.now() - t1);
// maxRSS is in KiB: the peak over the whole life of the process, import and first event included.
const peakRssMb = mb(process.resourceUsage().maxRSS * 1024);
process.stdout.write(
  `${JSON.stringify({ coldstart: target, status, importMs, importRssMb, readyMs, firstEventMs, peakRssMb })}\n`,
);
process.exit(status >= 200 && status < 300 ? 0 : 1);
