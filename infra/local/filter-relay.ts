// A stand-in for Pub/Sub's subscription filtering on the local stack. Google's emulator stores a
// subscription's `filter` but pushes every message; the filtered subscription therefore pushes here,
// and the relay does what the service would: a message the filter rejects is acknowledged (204) and
// never reaches the function; a matching one is forwarded unchanged (same path, headers and body) and
// the function's answer is returned, so acknowledgements and redeliveries behave as without the relay.
// For a pull subscription (logHeartbeat's pull delivery) the relay hands a matching message to a
// callback instead (which republishes it where the pull subscription reads), and answers 204 once done.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileFilter } from './pubsub-filter.js';

export interface RelayCounts {
  /** Pushes passed on to the function, counted once it answered (redeliveries included). */
  forwarded: number;
  /** Messages the filter rejected: acknowledged without invoking the function. */
  filtered: number;
  /** Forwarded pushes the function did not acknowledge (non-2xx, or unreachable): Pub/Sub redelivers them. */
  failed: number;
}

export interface FilterRelay {
  /** Base URL (ends with a slash); push endpoints append the Functions Framework's topic path to it. */
  url: string;
  counts: RelayCounts;
  /** The filter applied now ('' = everything passes). */
  readonly filter: string;
  /** Reads the subscription's filter back from the (emulated) Pub/Sub service and applies it from now on. */
  useFilterOf(subscription: string): Promise<string>;
  /**
   * Paused, it acknowledges nothing that matches (503): Pub/Sub keeps redelivering, so the subscription
   * backs up as when the heartbeat path falls behind; resumed, the backlog drains (the demo's backlog story).
   */
  paused: boolean;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'keep-alive', 'transfer-encoding']);

/** A matching message's data (base64, as pushed) and attributes. */
export type RelayedMessage = { data: string; attributes: Record<string, string> };

/**
 * Starts a relay in front of `target`: a function's base URL (ending with a slash), or a callback that
 * takes each matching message (a failure answers 502, so Pub/Sub redelivers it).
 */
export async function startFilterRelay(
  target: string | ((message: RelayedMessage) => Promise<void>),
  port = 0,
): Promise<FilterRelay> {
  let filter = '';
  let passes = compileFilter('');
  const counts: RelayCounts = { forwarded: 0, filtered: 0, failed: 0 };
  let paused = false;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        let attributes: Record<string, string> = {};
        let data = '';
        try {
          const push = JSON.parse(body.toString('utf8')) as {
            message?: { attributes?: Record<string, string>; data?: string };
          };
          attributes = push.message?.attributes ?? {};
          data = push.message?.data ?? '';
        } catch {
          // Not a push body: forwarded as is, the function answers it.
        }
        if (!passes(attributes)) {
          counts.filtered += 1;
          res.writeHead(204).end();
          return;
        }
        if (paused) {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('relay: paused (a backlog)');
          return;
        }
        // The target's answer (a callback that returns has acknowledged), or 502 when it cannot be reached.
        let answer: { status: number; type: string; body: Buffer | string };
        try {
          if (typeof target !== 'string') {
            await target({ data, attributes });
            answer = { status: 204, type: 'text/plain', body: '' };
          } else {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(req.headers))
              if (!HOP_BY_HOP.has(k) && typeof v === 'string') headers[k] = v;
            const upstream = await fetch(new URL((req.url ?? '/').replace(/^\//, ''), target), {
              method: req.method,
              headers,
              body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
            });
            answer = {
              status: upstream.status,
              type: upstream.headers.get('content-type') ?? 'text/plain',
              body: Buffer.from(await upstream.arrayBuffer()),
            };
          }
        } catch (error) {
          answer = { status: 502, type: 'text/plain', body: `relay: ${(error as Error).message}` };
        }
        counts.forwarded += 1;
        if (answer.status < 200 || answer.status > 299) counts.failed += 1;
        res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
      })();
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    counts,
    get filter() {
      return filter;
    },
    get paused() {
      return paused;
    },
    set paused(value: boolean) {
      paused = value;
    },
    useFilterOf: async (subscription) => {
      const { PubSub } = await import('@google-cloud/pubsub');
      const pubsub = new PubSub({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
      try {
        const [metadata] = await pubsub.subscription(subscription).getMetadata();
        filter = metadata.filter ?? '';
        passes = compileFilter(filter);
        return filter;
      } finally {
        await pubsub.close();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
