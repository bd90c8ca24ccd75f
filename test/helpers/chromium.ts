// Headless Chromium driven over the DevTools protocol (Node 22's WebSocket; no browser-automation
// dependency). Debian's `chromium` package provides /usr/bin/chromium; the test says so when it is missing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export class MissingChromiumError extends Error {
  override name = 'MissingChromiumError';
}

/** Throws a clear error naming the package when the browser is not installed. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new MissingChromiumError(
      `${CHROMIUM} not found: the browser test needs Debian's chromium package ` +
        '(`apt-get install -y chromium` as root, or with sudo; `./dev test` and .ci/run install it when they can)',
    );
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

export interface Page {
  /** Navigates and resolves once the load event fired. */
  goto(url: string): Promise<void>;
  /** Evaluates an expression in the page and returns its value (JSON-serialisable). */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the whole page (not only the viewport). */
  screenshot(file: string): Promise<void>;
  /** Console errors, uncaught exceptions and failed loads the page reported so far. */
  errors: string[];
}

export interface Browser {
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--remote-debugging-port=0',
];

export async function launchChromium(): Promise<Browser> {
  requireChromium();
  const profile = mkdtempSync(path.join(tmpdir(), 'chromium-profile-'));
  const child: ChildProcess = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`Chromium did not start within 30 s:\n${err}`)), 30_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`Chromium exited (${code}) before listening:\n${err}`)));
  });

  const socket = new WebSocket(endpoint);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`cannot connect to ${endpoint}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Listener[]>();
  socket.addEventListener('message', (event) => {
    const msg = JSON.parse(String(event.data)) as {
      id?: number;
      result?: Record<string, unknown>;
      error?: { message: string };
      method?: string;
      params?: Record<string, unknown>;
      sessionId?: string;
    };
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result ?? {});
    } else if (msg.method) for (const l of listeners.get(msg.method) ?? []) l(msg.params ?? {}, msg.sessionId);
  });
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  const on = (method: string, l: Listener) => listeners.set(method, [...(listeners.get(method) ?? []), l]);

  return {
    async newPage(viewport = { width: 1280, height: 900 }) {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      const errors: string[] = [];
      const mine = (l: (p: Record<string, unknown>) => void) => (p: Record<string, unknown>, s?: string) =>
        s === sessionId && l(p);
      on(
        'Runtime.consoleAPICalled',
        mine((p) => {
          if (p.type === 'error' || p.type === 'assert')
            errors.push(
              `console.${p.type}: ` +
                JSON.stringify((p.args as unknown[]).map((a) => (a as { value?: unknown }).value)),
            );
        }),
      );
      on(
        'Runtime.exceptionThrown',
        mine((p) => errors.push(`exception: ${JSON.stringify(p.exceptionDetails)}`)),
      );
      // Network failures, CSP violations and the like arrive as log entries.
      on(
        'Log.entryAdded',
        mine((p) => {
          const e = p.entry as { level: string; text: string; url?: string };
          if (e.level === 'error') errors.push(`${e.text}${e.url ? ` (${e.url})` : ''}`);
        }),
      );
      for (const domain of ['Page', 'Runtime', 'Log']) await send(`${domain}.enable`, {}, sessionId);
      await send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1, mobile: false }, sessionId);
      return {
        errors,
        async goto(url) {
          const loaded = new Promise<void>((resolve) => {
            const l: Listener = (_p, s) => {
              if (s !== sessionId) return;
              listeners.set(
                'Page.loadEventFired',
                (listeners.get('Page.loadEventFired') ?? []).filter((x) => x !== l),
              );
              resolve();
            };
            on('Page.loadEventFired', l);
          });
          const nav = (await send('Page.navigate', { url }, sessionId)) as { errorText?: string };
          if (nav.errorText) throw new Error(`navigating to ${url}: ${nav.errorText}`);
          await loaded;
        },
        async evaluate<T>(expression: string) {
          const r = (await send(
            'Runtime.evaluate',
            { expression, returnByValue: true, awaitPromise: true },
            sessionId,
          )) as {
            result: { value?: T };
            exceptionDetails?: unknown;
          };
          if (r.exceptionDetails) throw new Error(`evaluating ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
          return r.result.value as T;
        },
        async screenshot(file) {
          const metrics = (await send('Page.getLayoutMetrics', {}, sessionId)) as {
            cssContentSize: { width: number; height: number };
          };
          const height = Math.ceil(metrics.cssContentSize.height);
          await send(
            'Emulation.setDeviceMetricsOverride',
            { width: viewport.width, height, deviceScaleFactor: 1, mobile: false },
            sessionId,
          );
          const shot = (await send('Page.captureScreenshot', { format: 'png' }, sessionId)) as { data: string };
          writeFileSync(file, Buffer.from(shot.data, 'base64'));
          await send(
            'Emulation.setDeviceMetricsOverride',
            { ...viewport, deviceScaleFactor: 1, mobile: false },
            sessionId,
          );
        },
      };
    },
    async close() {
      await send('Browser.close').catch(() => undefined);
      socket.close();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        await exited;
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
