// The local simulator of the Compute Engine, OS Config, Cloud Storage, Resource Manager and Service Usage
// REST APIs, plus Compute's audit log with its two routes (the Eventarc stand-in, the log sink) and the
// control API. Binds to 127.0.0.1 only.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runAgents } from './agent.js';
import { computeRoutes } from './compute-api.js';
import { controlRoutes } from './control-api.js';
import { AuditLog, Eventarc } from './eventarc.js';
import { LogSink } from './log-sink.js';
import { isServiceDisabled, resourceManagerRoutes, serviceDisabledError } from './resource-manager-api.js';
import { HttpError, match, MediaResponse, readBody, sendJson, sleep, type Route } from './http.js';
import { storageRoutes } from './storage-api.js';
import { osConfigRoutes } from './osconfig-api.js';
import { applyFieldMask, parseFieldMask } from './field-mask.js';
import { World } from './world.js';
import { LogShipper } from './logs.js';
import { Quotas, quotaRoutes } from './quotas.js';
import { IdentityTokens, identityTokenRoutes } from './identity-tokens.js';

export interface SimulatorOptions {
  port?: number;
  /** Where audit-log CloudEvents are POSTed (the vmLifecycle function). */
  eventSinkUrl?: string;
  /** The Eventarc trigger's project (the orchestrator's): only its entries are POSTed. Unset: every project's. */
  eventarcProject?: string;
  /** The Pub/Sub (emulator) topic an organisation log sink publishes every project's audit entries to. */
  auditLogTopic?: { projectId: string; topic: string };
  /** Run every agent this often; 0 = only on POST /control/agents/run. */
  agentIntervalMs?: number;
  /** The Pub/Sub (emulator) topic shipping VMs send osquery logs to. */
  logTopic?: { projectId: string; topic: string };
  /** Ship a round of logs this often; 0 = only on POST /control/logs/ship. */
  logIntervalMs?: number;
  /**
   * The audience the OS policy's token refresher asks the metadata server for (HEARTBEAT_TOKEN_AUDIENCE):
   * heartbeats carry tokens for it. Unset: no VM gets a token (every heartbeat unsigned).
   */
  tokenAudience?: string;
}

export interface Simulator {
  url: string;
  port: number;
  world: World;
  /** Compute's audit log: writes each operation's entries to Eventarc and the log sink. */
  auditLog: AuditLog;
  eventarc: Eventarc;
  /** Set with `auditLogTopic`. */
  logSink: LogSink | undefined;
  shipper: LogShipper | undefined;
  /** Google's per-minute quotas, off until set (PUT /control/quotas). */
  quotas: Quotas;
  /** The metadata server's instance identity tokens; their certificates at `${url}/oauth2/v1/certs`. */
  identityTokens: IdentityTokens;
  close(): Promise<void>;
}

const PROJECT_IN_PATH = /^\/(?:compute\/v1|v1)\/projects\/([^/]+)/;
/** The APIs the `disabledApis` fault can turn off, by route name. */
const SERVICE_OF_ROUTE = /^(compute|osconfig)\./;

/** Injected faults apply to the Google API surface only, never to /control. */
async function applyFaults(world: World, r: Route, path: string): Promise<void> {
  const f = world.faults;
  if (f.latencyMs > 0) await sleep(f.latencyMs);
  // `match` picks calls by method name (compute.instances.setLabels) or by a piece of their path (one VM).
  const matches = (m: string | undefined) => !m || r.name.includes(m) || path.includes(m);
  const hold = f.hold.find((h) => h.count > 0 && matches(h.match));
  if (hold) {
    hold.count -= 1;
    f.hold = f.hold.filter((h) => h.count > 0);
    await world.hold(r.name, path);
  }
  const project = PROJECT_IN_PATH.exec(path)?.[1];
  if (project && f.deniedProjects.includes(project))
    throw apiError(path, 403, 'PERMISSION_DENIED', 'forbidden', `Required permission denied on project ${project}`);
  const service = SERVICE_OF_ROUTE.exec(r.name)?.[1];
  if (project && service && isServiceDisabled(world, project, `${service}.googleapis.com`))
    throw serviceDisabledError(world, project, `${service}.googleapis.com`, service === 'compute');
  const next = f.failNext.find((n) => n.count > 0 && matches(n.match));
  let status: number | undefined;
  if (next) {
    next.count -= 1;
    f.failNext = f.failNext.filter((n) => n.count > 0);
    status = next.status;
  } else if (Math.random() < f.rate429) status = 429;
  else if (Math.random() < f.rate503) status = 503;
  if (status) {
    const rpc = status === 429 ? 'RESOURCE_EXHAUSTED' : status === 503 ? 'UNAVAILABLE' : 'INTERNAL';
    throw apiError(path, status, rpc, status === 429 ? 'rateLimitExceeded' : 'backendError', `simulated ${status}`);
  }
}

/**
 * Compute and Storage answer `{error: {code, message, errors}}`; OS Config (a newer API) adds the gRPC `status` name.
 */
function apiError(path: string, code: number, status: string, reason: string, message: string): HttpError {
  const compute = !path.startsWith('/v1/');
  return new HttpError(code, message, {
    error: { code, message, ...(compute ? {} : { status }), errors: [{ domain: 'global', reason, message }] },
  });
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const world = new World();
  const eventarc = new Eventarc(options.eventSinkUrl, options.eventarcProject);
  const logSink = options.auditLogTopic ? new LogSink(options.auditLogTopic) : undefined;
  const auditLog = new AuditLog(world, logSink ? [eventarc, logSink] : [eventarc]);
  const identityTokens = new IdentityTokens(world);
  const shipper = options.logTopic
    ? new LogShipper(
        world,
        options.logTopic,
        options.tokenAudience ? { tokens: identityTokens, audience: options.tokenAudience } : undefined,
      )
    : undefined;
  const quotas = new Quotas();
  const routes: Route[] = [
    ...quotaRoutes(quotas),
    ...computeRoutes(world, auditLog),
    ...osConfigRoutes(world),
    ...storageRoutes(world),
    ...resourceManagerRoutes(world),
    ...identityTokenRoutes(identityTokens),
    ...controlRoutes(world, { auditLog, eventarc, logSink }, shipper),
  ];

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // The REST clients append `$alt=json;enum-encoding=int`; searchParams keeps it harmlessly.
    const found = match(routes, req.method ?? 'GET', url.pathname);
    try {
      if (!found)
        throw new HttpError(404, `no route for ${req.method} ${url.pathname}`, {
          error: { code: 404, message: `no route for ${req.method} ${url.pathname}`, status: 'NOT_FOUND' },
        });
      // Google's certificates are no project's API: not counted, no quota, no fault.
      if (found.route.name !== 'control' && !found.route.name.startsWith('oauth2.')) {
        world.count(found.route.name);
        // The caller is its credentials: every caller of the local stack is one user (the strict reading).
        quotas.admit(found.route.name, url.pathname, req.headers.authorization ?? 'anonymous');
        await applyFaults(world, found.route, url.pathname);
      }
      const { raw, json } = await readBody(req);
      const result = await found.route.handler({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        params: found.params,
        body: json,
        raw,
        contentType: req.headers['content-type'] ?? '',
      });
      if (result instanceof MediaResponse) {
        res.writeHead(200, { 'content-type': result.contentType, 'content-length': result.data.length });
        res.end(result.data);
      } else {
        const mask = req.headers['x-goog-fieldmask'] ?? url.searchParams.get('fields');
        sendJson(res, 200, mask ? applyFieldMask(result ?? {}, parseFieldMask(String(mask))) : (result ?? {}));
      }
    } catch (error) {
      if (error instanceof HttpError)
        sendJson(res, error.status, error.body ?? { error: { code: error.status, message: error.message } });
      else sendJson(res, 500, { error: { code: 500, message: String(error), status: 'INTERNAL' } });
    }
  });
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const timer = options.agentIntervalMs ? setInterval(() => runAgents(world), options.agentIntervalMs) : undefined;
  timer?.unref();
  const logTimer =
    shipper && options.logIntervalMs
      ? setInterval(() => void shipper.shipRound().catch(() => undefined), options.logIntervalMs)
      : undefined;
  logTimer?.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    world,
    auditLog,
    eventarc,
    logSink,
    shipper,
    quotas,
    identityTokens,
    close: async () => {
      if (timer) clearInterval(timer);
      if (logTimer) clearInterval(logTimer);
      await shipper?.close();
      await auditLog.idle();
      await logSink?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
