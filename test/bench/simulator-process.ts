// The simulator in a process of its own, as the real APIs are remote: its work does not share the
// measured process's event loop. Benchmarks drive it through its control API.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, type Emulators } from '../../infra/local/emulators.js';

export interface SimulatorProcess {
  url: string;
  /** The parsed JSON answer (as fetch's `json()` types it: callers know the shapes they ask for). */
  control(method: string, p: string, body?: unknown): ReturnType<Response['json']>;
  /** Requests the simulator has served so far (its API calls, as a remote service would count them). */
  requests(): Promise<number>;
  kill(): void;
}

/** Starts the simulator (`simulatorArgs` after its port; `nodeArgs` for Node itself) and waits until it answers. */
export async function startSimulatorProcess(
  emulators: Emulators,
  simulatorArgs: string[] = [],
  nodeArgs: string[] = [],
): Promise<SimulatorProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      'tsx',
      path.join(import.meta.dirname, '../../infra/local/simulator/main.ts'),
      '--port',
      String(port),
      '--agent-interval-ms',
      '0',
      ...simulatorArgs,
    ],
    {
      stdio: 'ignore',
      env: { ...process.env, PUBSUB_EMULATOR_HOST: emulators.pubsubHost, GOOGLE_CLOUD_PROJECT: emulators.projectId },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const control = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${url}/control${p}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  for (let i = 0; i < 300; i++) {
    try {
      await control('GET', '/health');
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    control,
    requests: async () => ((await control('GET', '/stats')) as { total: number }).total,
    kill: () => child.kill(),
  };
}

/**
 * Points this process's clients and configuration at the emulators and the simulator, with the benches'
 * settings: audits of `targetProjects`, OS Config pacing out of the way, logs at LOG_LEVEL or `warn`.
 */
export function useBenchStack(emulators: Emulators, simulator: SimulatorProcess, targetProjects: string[]): void {
  Object.assign(process.env, {
    FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
    PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
    GOOGLE_CLOUD_PROJECT: emulators.projectId,
    GOOGLE_API_ENDPOINT: simulator.url,
    METADATA_SERVER_DETECTION: 'none',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    TARGET_PROJECTS: targetProjects.join(','),
    CONFIG_BUCKET: 'bench-config',
    OSCONFIG_WRITES_PER_MINUTE: '6000',
    OSCONFIG_READS_PER_MINUTE: '6000',
    // No global API budget: these records measure the audit's own cost (audit.projects10k measures quotas).
    // BENCH_API_BUDGET=defaults keeps the budgets at their defaults, to see what the budget adds to a record.
    ...(process.env.BENCH_API_BUDGET === 'defaults'
      ? {}
      : {
          API_BUDGET_OSCONFIG_READS: '0',
          API_BUDGET_OSCONFIG_WRITES: '0',
          API_BUDGET_SERVICE_USAGE: '0',
          API_BUDGET_RESOURCE_MANAGER: '0',
        }),
  });
}
