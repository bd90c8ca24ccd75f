// promtool, Prometheus's rule checker, from Debian's prometheus package: `./dev test` and .ci/run fetch it
// (.ci/promtool.sh keeps the binary alone in ~/.cache/osquery-orchestrator/promtool). The tests that need it
// fail naming the package when it is missing; they never pass without it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export class MissingPromtoolError extends Error {
  override name = 'MissingPromtoolError';
}

const CACHED = path.join(
  process.env.OSQ_ORCH_PROMTOOL_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'osquery-orchestrator/promtool'),
  'promtool',
);

let found: string | null | undefined;

/** The promtool to run: $PROMTOOL, promtool on PATH, or the one .ci/promtool.sh fetched; null when none. */
export function promtoolPath(): string | null {
  if (found !== undefined) return found;
  const candidates = [process.env.PROMTOOL, 'promtool', CACHED].filter((c): c is string => Boolean(c));
  found =
    candidates.find((c) => (c.includes('/') ? existsSync(c) : true) && spawnSync(c, ['--version']).status === 0) ??
    null;
  return found;
}

/** The promtool path, or a clear error naming the package. */
export function requirePromtool(): string {
  const p = promtoolPath();
  if (!p)
    throw new MissingPromtoolError(
      "promtool not found: the rule tests need it, from Debian's prometheus package (`./dev test` and .ci/run " +
        `fetch it into ${path.dirname(CACHED)}; or apt-get install -y prometheus, or set PROMTOOL)`,
    );
  return p;
}

/** Runs promtool in a directory; its exit status and everything it printed. */
export function promtool(args: string[], cwd: string): { status: number; output: string } {
  const r = spawnSync(requirePromtool(), args, { cwd, encoding: 'utf8' });
  return { status: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}
