// `npm start` (infra/local/start.ts) as a user runs it, in a subprocess: whatever stops it, it stops
// what it started. Every process it starts inherits its environment, so a token in that environment
// finds any emulator (gcloud and its Java child) left behind, among other suites' emulators.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../infra/local/emulators.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const t = suite('npm start stops what it started');

/** Live processes whose environment carries the token. */
function processesWith(token: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`START_TEST_TOKEN=${token}`))
        pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

async function leftBehind(token: string): Promise<number[]> {
  // Stopping a group is not instantaneous: give stragglers a few seconds before calling them leaks.
  for (let i = 0; i < 40; i++) {
    const pids = processesWith(token);
    if (pids.length === 0) return [];
    await new Promise((r) => setTimeout(r, 250));
  }
  const pids = processesWith(token);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL'); // leave nothing running after the suite, pass or fail
    } catch {
      // already gone
    }
  }
  return pids;
}

/** `npm start` killed with SIGKILL (no chance to stop anything) once its emulators are up. */
function npmStartKilled(args: string[]) {
  const token = randomUUID();
  return new Promise<{ stdout: string; token: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'infra/local/start.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, START_TEST_TOKEN: token },
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
      if (/Pub\/Sub emulator\s+127\.0\.0\.1:\d+/.test(stdout)) child.kill('SIGKILL');
    });
    child.on('close', () => resolve({ stdout, token }));
  });
}

function npmStart(args: string[], env: Record<string, string>) {
  const token = randomUUID();
  return new Promise<{ code: number | null; stdout: string; stderr: string; token: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'infra/local/start.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, START_TEST_TOKEN: token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr, token }));
  });
}

t('a bad setting: exit 1, one line naming every bad variable, no emulator left running', async () => {
  const r = await npmStart(['--no-demo', '--simulator-port', String(await freePort())], {
    HEARTBEAT_WRITE_WINDOW_SECONDS: 'soon',
    OSCONFIG_READS_PER_MINUTE: '0',
  });
  const leaked = await leftBehind(r.token);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.equal(leaked, [], `processes left running: ${leaked.join(' ')}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /HEARTBEAT_WRITE_WINDOW_SECONDS/);
  assert.match(lines[0]!, /OSCONFIG_READS_PER_MINUTE/);
});

t('a failure after the emulators started (the simulator port is taken): exit 1, both emulators stopped', async () => {
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const r = await npmStart(
      ['--no-demo', '--simulator-port', String(port), '--functions-port', String(await freePort())],
      {},
    );
    const leaked = await leftBehind(r.token);
    assert.equal(leaked, [], `processes left running: ${leaked.join(' ')}`);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /EADDRINUSE/);
    assert.match(r.stdout, /Firestore emulator\s+127\.0\.0\.1:\d+/, 'the emulators had started');
    const firestore = /Firestore emulator\s+(127\.0\.0\.1:\d+)/.exec(r.stdout)![1];
    const answered = await fetch(`http://${firestore}/`).then(
      () => true,
      () => false,
    );
    assert.not.ok(answered, `the Firestore emulator at ${firestore} still answers`);
  } finally {
    taken.close();
  }
});

t('killed with SIGKILL once its emulators are up: they stop anyway, nothing is left running', async () => {
  const r = await npmStartKilled([
    '--no-demo',
    '--simulator-port',
    String(await freePort()),
    '--functions-port',
    String(await freePort()),
  ]);
  const firestore = /Firestore emulator\s+(127\.0\.0\.1:\d+)/.exec(r.stdout)?.[1];
  assert.ok(firestore, `the emulators had started:\n${r.stdout}`);
  const leaked = await leftBehind(r.token);
  assert.equal(leaked, [], `processes left running: ${leaked.join(' ')}`);
  const answered = await fetch(`http://${firestore}/`).then(
    () => true,
    () => false,
  );
  assert.not.ok(answered, `the Firestore emulator at ${firestore} still answers`);
});

t.run();
