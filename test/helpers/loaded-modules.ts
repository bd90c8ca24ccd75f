// Run in a fresh process (node --import tsx test/helpers/loaded-modules.ts FUNCTION [EVENT_JSON]):
// imports functions/index.ts as Cloud Functions does, delivers the CloudEvent to FUNCTION when one is
// given, and prints the files it resolved under node_modules as one JSON line.
import { registerHooks } from 'node:module';

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
  const { getFunction } = await import('@google-cloud/functions-framework/testing');
  const handler = getFunction(target) as (event: unknown) => Promise<void>;
  await handler(JSON.parse(eventJson));
}
process.stdout.write(`${JSON.stringify({ resolved: [...resolved] })}\n`);
process.exit(0);
