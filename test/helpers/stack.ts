// The local stack for integration tests: the simulator, the functions served by the Functions
// Framework, and the Firestore emulator that `npm test` started.
import { suite } from 'uvu';
import { closeClients, resetClients } from '../../shared/clients.js';
import { config, heartbeatTokenAudience, resetConfig } from '../../shared/config.js';
import { COMPUTE_AUDIT_LOG_TOPIC, serveFunctions, type ServedFunctions } from '../../infra/local/functions.js';
import { startSimulator, type Simulator } from '../../infra/local/simulator/server.js';

export interface Stack {
  sim: Simulator;
  /** Base URL of the vmLifecycle function. */
  vmLifecycleUrl: string;
  functions: ServedFunctions;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  control<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  /** Waits until every audit-log event emitted so far has been delivered and handled (by both routes). */
  flushEvents(): Promise<void>;
  apiCalls(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export function requireEmulators(): void {
  if (!process.env.FIRESTORE_EMULATOR_HOST)
    throw new Error('FIRESTORE_EMULATOR_HOST is not set: run the tests with `npm test`, which starts the emulators');
}

export interface StackOptions {
  /** The log sink route: every project's audit entries through the Pub/Sub emulator to vmLifecycle. */
  auditLogSink?: boolean;
  /** Eventarc's own project: only its entries go that way. Unset: every project's (the default stack). */
  eventarcProject?: string;
}

export async function startStack(env: Record<string, string> = {}, options: StackOptions = {}): Promise<Stack> {
  requireEmulators();
  Object.assign(process.env, env);
  resetConfig();
  const projectId = process.env.GOOGLE_CLOUD_PROJECT!;
  const sim = await startSimulator({
    agentIntervalMs: 0,
    logTopic: { projectId, topic: config().LOG_TOPIC },
    eventarcProject: options.eventarcProject,
    auditLogTopic: options.auditLogSink ? { projectId, topic: COMPUTE_AUDIT_LOG_TOPIC } : undefined,
    tokenAudience: heartbeatTokenAudience(),
  });
  process.env.GOOGLE_API_ENDPOINT = sim.url;
  // The simulator signs the VMs' identity tokens: logHeartbeat checks them against its certificates.
  process.env.HEARTBEAT_TOKEN_CERTS_URL = `${sim.url}/oauth2/v1/certs`;
  resetConfig();
  resetClients();
  const functions = await serveFunctions();
  const vmLifecycleUrl = functions.urls.vmLifecycle;
  await functions.wireTriggers();
  sim.eventarc.sinkUrl = vmLifecycleUrl;
  sim.eventarc.maxAttempts = 3;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const control = async <T = any>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${sim.url}/control${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`control ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json as T;
  };
  return {
    sim,
    vmLifecycleUrl,
    functions,
    control,
    flushEvents: async () => {
      await sim.auditLog.idle();
      // The sink's messages are handled once vmLifecycle acknowledged each (redeliveries until it does).
      const relay = functions.sinkRelay.counts;
      for (const deadline = Date.now() + 30_000; sim.logSink;) {
        if (relay.forwarded - relay.failed >= sim.logSink.publishedTotal) break;
        if (Date.now() > deadline)
          throw new Error(
            `log sink: ${relay.forwarded - relay.failed} of ${sim.logSink.publishedTotal} ` +
              'messages acknowledged after 30 s',
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    apiCalls: async () => (await control<{ requests: Record<string, number> }>('GET', '/stats')).requests,
    close: async () => {
      await functions.close();
      await sim.close();
      await closeClients();
    },
  };
}

/**
 * Deletes every document in the emulator's database. The emulator refuses (409) while a transaction holds
 * a lock, and a test file that ended mid-transaction (its process gone) leaves one until the emulator
 * expires it: wait for that rather than fail every file after it.
 */
export async function clearFirestore(waitMs = 90_000): Promise<void> {
  requireEmulators();
  const project = process.env.GOOGLE_CLOUD_PROJECT;
  const emulator = `http://${process.env.FIRESTORE_EMULATOR_HOST}/emulator/v1`;
  const url = `${emulator}/projects/${project}/databases/(default)/documents`;
  for (let delay = 250, deadline = Date.now() + waitMs; ; delay = Math.min(delay * 2, 5_000)) {
    const res = await fetch(url, { method: 'DELETE' });
    if (res.ok) return;
    if (res.status !== 409 || Date.now() + delay > deadline)
      throw new Error(`clearing Firestore failed: ${res.status} ${(await res.text()).slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * logHeartbeat and logHeartbeatDrain, as the stack serves them, start over as new instances would: they remember
 * no host. (A test that calls the use case itself builds its own engine.)
 */
export async function newHeartbeatInstances(): Promise<void> {
  (await import('../../functions/log-heartbeat.js')).logHeartbeatEngine.renew();
  (await import('../../functions/log-heartbeat-drain.js')).logHeartbeatDrainEngine.renew();
}

/** Polls `get` every 100 ms until `ok` holds; after `ms`, throws naming what it waited for and the last value. */
export async function waitFor<T>(
  what: string,
  get: () => Promise<T> | T,
  ok: (v: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LogLine {
  severity: string;
  message: string;
  [key: string]: unknown;
}

/** Collects the structured log lines written while `fn` runs (and keeps them off the console). */
export async function captureLogs<T>(fn: () => Promise<T>): Promise<{ result: T; logs: LogLine[] }> {
  const { log } = await import('../../shared/log.js');
  const logs: LogLine[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const level = log.level;
  log.level = 'debug';
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = chunk.toString();
    if (text.startsWith('{"severity"')) {
      for (const line of text.split('\n').filter(Boolean)) logs.push(JSON.parse(line) as LogLine);
      return true;
    }
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    return { result: await fn(), logs };
  } finally {
    process.stdout.write = write;
    log.level = level;
  }
}

/**
 * A uvu suite on one local stack, started once with `env` and emptied before each test (Firestore and
 * the simulator's world); `eachTest` then sets up what every test of the suite starts from.
 */
export function stackSuite(
  name: string,
  env: Record<string, string> = {},
  eachTest: (stack: Stack) => Promise<void> = async () => undefined,
) {
  const t = suite<{ stack: Stack }>(name);
  t.before(async (ctx) => {
    ctx.stack = await startStack(env);
  });
  t.after(async (ctx) => ctx.stack.close());
  t.before.each(async ({ stack }) => {
    await clearFirestore();
    await stack.control('POST', '/reset');
    await eachTest(stack);
  });
  return t;
}

/** Sets projects' metadata to enable-osconfig=TRUE, as most suites' VMs need. */
export async function enableOsConfig(stack: Stack, ...projects: string[]): Promise<void> {
  for (const id of projects) await stack.control('POST', '/projects', { id, metadata: { 'enable-osconfig': 'TRUE' } });
}
