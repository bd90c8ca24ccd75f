// Run in a fresh process (node --import tsx test/helpers/loaded-modules.ts FUNCTION [EVENT_JSON]):
// imports functions/index.ts as Cloud Functions does, delivers the CloudEvent to FUNCTION when one is
// given (POSTed to its Functions Framework server), and prints the files it resolved under node_modules
// as one JSON line.
import { registerHooks } from 'node:module';
import type { AddressInfo } from 'node:net';

const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, next) {
    const result = next(specifier, context);
    const at = result.url.indexOf('/node_modules/');
    if (at >= 0) resolved.add(result.url.slice(at + '/node_modules/'.length));
    return result;
  },
});

const [target, eventJson] = process.argv.slice(2);
await import('../../functions/index.js');
if (target && eventJson) {
  // Through the Functions Framework's server, as a structured-mode CloudEvent: the event functions read
  // their CloudEvent from the request themselves.
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  const server = getTestServer(target);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents+json' },
    body: eventJson,
  });
  if (res.status !== 204) throw new Error(`${target} answered ${res.status}: ${await res.text()}`);
  server.close();
}
process.stdout.write(`${JSON.stringify({ resolved: [...resolved] })}\n`);
process.exit(0);
