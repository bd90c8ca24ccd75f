// osq-orch as a user runs it: a subprocess, its output and exit code.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_BUNDLE_DIR } from '../shared/osquery/bundle.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SCHEMA = path.resolve(ROOT, '../shared/osquery/schema-5.23.1.json');
const t = suite('osq-orch CLI');

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/osq-orch.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });

t('lint passes the default bundle (exit 0)', () => {
  const r = run(['lint', '--schema', SCHEMA]);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /queries, [\d.]+ executions per host per hour, 0 errors/);
});

t('lint fails a broken bundle (exit 1), one line per finding with file, pack, query and reason', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bad-bundle-'));
  cpSync(DEFAULT_BUNDLE_DIR, dir, { recursive: true });
  writeFileSync(path.join(dir, 'packs/users.conf'), JSON.stringify({ queries: { broken: { query: 'SELECT nope FROM users', interval: 3600 } } }));
  const r = run(['lint', dir, '--schema', SCHEMA]);
  assert.is(r.status, 1);
  assert.match(r.stdout, /^error packs\/users.conf pack=users query=broken: SQLite: no such column: nope$/m);
});

t('lint with a schema that cannot be read exits 2 with the reason', () => {
  const r = run(['lint', '--schema', '/nonexistent/schema.json']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /ENOENT/);
});

t('render prints the zone\'s assignment as JSON', () => {
  const r = run(['render', '--zone', 'us-east1-b', '--project', 'acme'], { CONFIG_BUCKET: 'cfg', LOG_TOPIC: 'logs' });
  assert.is(r.status, 0, r.stderr);
  const assignment = JSON.parse(r.stdout);
  assert.is(assignment.name, 'projects/acme/locations/us-east1-b/osPolicyAssignments/osquery');
  assert.match(assignment.osPolicies[0].id, /^osquery-v[0-9a-f]{12}$/);
  assert.match(r.stderr, /is not published/);
});

t('unknown command: usage and exit 2', () => {
  const r = run(['frobnicate']);
  assert.is(r.status, 2);
  assert.match(r.stdout, /osq-orch <command>/);
});

t.run();
