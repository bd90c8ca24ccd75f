// Starts Google's Firestore and Pub/Sub emulators on free loopback ports and stops them (whole process
// groups: gcloud wraps a Java process). Used by `npm test` and `npm start`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

export class MissingPrerequisiteError extends Error {
  override name = 'MissingPrerequisiteError';
}

function onPath(command: string, env: NodeJS.ProcessEnv): string | null {
  const found = spawnSync('/bin/sh', ['-c', `command -v ${command}`], { encoding: 'utf8', env });
  return found.status === 0 ? found.stdout.trim() : null;
}

/** Fails at once, naming what is missing: gcloud, Java, or an emulator component. */
export function checkEmulatorPrerequisites(env: NodeJS.ProcessEnv = process.env): void {
  const gcloud = onPath('gcloud', env);
  if (!gcloud)
    throw new MissingPrerequisiteError(
      'gcloud (the Google Cloud CLI) is not on PATH. Install it: https://cloud.google.com/sdk/docs/install',
    );
  const java = onPath('java', env);
  if (!java)
    throw new MissingPrerequisiteError(
      'java is not on PATH: the Firestore and Pub/Sub emulators need Java 17 or newer',
    );
  const version = spawnSync(java, ['-version'], { encoding: 'utf8' });
  const major = Number(/version "(\d+)/.exec(version.stderr ?? '')?.[1] ?? 0);
  if (major > 0 && major < 17)
    throw new MissingPrerequisiteError(`java ${major} found; the emulators need Java 17 or newer`);
  const sdkRoot = path.resolve(path.dirname(realpathSync(gcloud)), '..');
  const components: Array<[string, string, string]> = [
    ['cloud-firestore-emulator', 'cloud-firestore-emulator', 'google-cloud-cli-firestore-emulator'],
    ['pubsub-emulator', 'pubsub-emulator', 'google-cloud-cli-pubsub-emulator'],
  ];
  for (const [dir, component, aptPackage] of components) {
    if (!existsSync(path.join(sdkRoot, 'platform', dir))) {
      throw new MissingPrerequisiteError(
        `the gcloud component ${component} is not installed ` +
          `(gcloud components install ${component}, or apt-get install ${aptPackage})`,
      );
    }
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Emulators {
  firestoreHost: string;
  pubsubHost: string;
  projectId: string;
  stop(): Promise<void>;
}

async function waitUntilUp(
  host: string,
  name: string,
  child: ChildProcess,
  output: () => string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`the ${name} emulator exited (code ${child.exitCode}):\n${output().slice(-2000)}`);
    try {
      const res = await fetch(`http://${host}/`);
      if ((await res.text()).includes('Ok')) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `the ${name} emulator did not answer on ${host} within ${timeoutMs / 1000} s:\n${output().slice(-2000)}`,
  );
}

function startOne(args: string[]): { child: ChildProcess; output: () => string } {
  // detached: its own process group, so stop() reaches the Java grandchild too.
  const child = spawn('gcloud', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffer = '';
  const keep = (chunk: Buffer) => (buffer = (buffer + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => buffer };
}

// A process of its own that ends the emulators' process groups once this process is gone, however it
// ended (a SIGKILL gives stop() no chance), and ends itself once the groups are gone.
const WATCHER = `
const [parent, ...groups] = process.argv.slice(1).map(Number);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
setInterval(() => {
  const left = groups.filter((g) => alive(-g));
  if (left.length === 0) process.exit(0);
  if (!alive(parent)) for (const g of left) try { process.kill(-g, 'SIGKILL'); } catch {}
}, 1000);
`;

/** Starts the watcher over the emulators' process groups (gcloud leads each; Java runs inside it). */
function watchOverEmulators(children: ChildProcess[]): void {
  const groups = children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  spawn(process.execPath, ['-e', WATCHER, String(process.pid), ...groups.map(String)], {
    detached: true,
    stdio: 'ignore',
  }).unref();
}

function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      resolve();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* group already gone */
      }
      resolve();
    });
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

export async function startEmulators(projectId = 'osquery-orchestrator-local'): Promise<Emulators> {
  checkEmulatorPrerequisites();
  const [firestorePort, pubsubPort] = [await freePort(), await freePort()];
  const firestoreHost = `127.0.0.1:${firestorePort}`;
  const pubsubHost = `127.0.0.1:${pubsubPort}`;
  const firestore = startOne(['emulators', 'firestore', 'start', `--host-port=${firestoreHost}`, '--quiet']);
  const pubsub = startOne([
    'beta',
    'emulators',
    'pubsub',
    'start',
    `--host-port=${pubsubHost}`,
    `--project=${projectId}`,
    '--quiet',
  ]);
  watchOverEmulators([firestore.child, pubsub.child]);
  const stop = async () => {
    await Promise.all([killGroup(firestore.child), killGroup(pubsub.child)]);
  };
  try {
    await Promise.all([
      waitUntilUp(firestoreHost, 'Firestore', firestore.child, firestore.output),
      waitUntilUp(pubsubHost, 'Pub/Sub', pubsub.child, pubsub.output),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { firestoreHost, pubsubHost, projectId, stop };
}
