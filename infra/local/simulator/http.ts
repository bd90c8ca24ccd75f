// Minimal routing and JSON helpers for the simulator's REST surface.
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON from the wire
  /** The body as received (uploads are not JSON). */
  raw: Buffer;
  contentType: string;
}

export type Handler = (req: Request) => unknown | Promise<unknown>;

export interface Route {
  method: string;
  pattern: RegExp;
  /** Name used for request counting, e.g. compute.instances.get. */
  name: string;
  handler: Handler;
}

export const route = (method: string, pattern: RegExp, name: string, handler: Handler): Route => ({
  method,
  pattern,
  name,
  handler,
});

export async function readBody(req: IncomingMessage): Promise<{ raw: Buffer; json: unknown }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const type = req.headers['content-type'] ?? 'application/json';
  if (raw.length === 0 || !type.includes('json')) return { raw, json: undefined };
  try {
    return { raw, json: JSON.parse(raw.toString('utf8')) };
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function match(routes: Route[], method: string, path: string): { route: Route; params: string[] } | null {
  for (const r of routes) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(path);
    if (m) return { route: r, params: m.slice(1).map((p) => decodeURIComponent(p ?? '')) };
  }
  return null;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A non-JSON answer (object downloads). */
export class MediaResponse {
  constructor(
    readonly data: Buffer,
    readonly contentType = 'application/octet-stream',
  ) {}
}
