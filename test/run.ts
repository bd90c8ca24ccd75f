// `npm test [-- --unit] [FILE...]`: the pure suites (test/unit/) first, without emulators: they need none,
// and a broken decision shows in seconds; then, unless --unit, the Firestore and Pub/Sub emulators on free
// ports, every other uvu suite under test/, and the emulators stopped whatever happened. Ends with
// `N passed, N failed`.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { MissingPrerequisiteError, startEmulators, type Emulators } from '../infra/local/emulators.js';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const only = args.filter((a) => a !== '--unit' && a !== '--');
const files = readdirSync(path.join(root, 'test'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
const isUnit = (f: string) => f.startsWith(`unit${path.sep}`);
const unitFiles = files.filter(isUnit);
const stackFiles = unitOnly ? [] : files.filter((f) => !isUnit(f));

const API_BUDGET_OFF = Object.fromEntries(
  ['OSCONFIG_READS', 'OSCONFIG_WRITES', 'SERVICE_USAGE', 'RESOURCE_MANAGER'].map((f) => [
    `API_BUDGET_${f}`,
    process.env[`API_BUDGET_${f}`] ?? '0',
  ]),
);
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 300_000);
const started = Date.now();
let emulators: Emulators | undefined;
const stop = async () => {
  await emulators?.stop();
  emulators = undefined;
};
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => void stop().then(() => process.exit(130)));

let passed = 0;
let failed = 0;

/** One uvu process per file: a file's module state (clients, config) never leaks into the next. */
async function runFile(file: string, env: Record<string, string>): Promise<void> {
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', `^${file.replace(/[.]/g, '\\.')}$`],
      {
        cwd: root,
        env: {
          ...process.env,
          ...env,
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
          // Express's default error handler stays quiet about the framework's own 4xx/5xx.
          NODE_ENV: 'test',
          // No metadata server off Google Cloud: skip the client libraries' probe for one.
          METADATA_SERVER_DETECTION: 'none',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    // A suite that hangs (a handle left open) is stopped and counted as failed, not left to stall CI.
    const timer = setTimeout(() => {
      output += `\n${file}: still running after ${FILE_TIMEOUT_MS / 1000} s; stopped\n`;
      process.stderr.write(`\n${file}: still running after ${FILE_TIMEOUT_MS / 1000} s; stopped\n`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => {
      output += c;
      process.stdout.write(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c;
      process.stderr.write(c);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
  // eslint-disable-next-line no-control-regex -- strip uvu's colours
  const plain = result.output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  passed += ok;
  // A file that crashed before uvu counted anything still counts as a failure.
  failed += Math.max(total - ok, result.code !== 0 && total === ok ? 1 : 0);
}

try {
  // The pure suites: no emulator, and no address of one (a test that reached for Firestore would fail).
  for (const file of unitFiles)
    await runFile(file, { FIRESTORE_EMULATOR_HOST: '', PUBSUB_EMULATOR_HOST: '', GOOGLE_CLOUD_PROJECT: 'unit-tests' });
  if (unitFiles.length)
    console.log(`\n${unitFiles.length} pure test files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (stackFiles.length) {
    try {
      emulators = await startEmulators();
    } catch (error) {
      if (error instanceof MissingPrerequisiteError) {
        console.error(`npm test cannot start the emulators: ${error.message}`);
        console.log(`${passed} passed, ${failed + 1} failed`);
        process.exit(2);
      }
      throw error;
    }
    console.log(`emulators up: firestore ${emulators.firestoreHost}, pubsub ${emulators.pubsubHost}`);
    for (const file of stackFiles)
      await runFile(file, {
        FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
        PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
        GOOGLE_CLOUD_PROJECT: emulators.projectId,
        // The global API budget is off unless a test sets it (test/api-budget.test.ts): files share one
        // emulator, and a budget spent by one file would pace the next.
        ...API_BUDGET_OFF,
      });
  }
} finally {
  await stop();
}
console.log(`\n${unitFiles.length + stackFiles.length} test files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
