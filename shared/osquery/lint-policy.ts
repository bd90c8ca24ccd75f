// This project's performance policy for a bundle, and the file beside osquery.conf that may change it for
// that bundle. `osq-orch lint` and `osq-orch publish` read the same settings, so what lints clean is
// what publishes.
import { z } from 'zod';
import type { Bundle } from './bundle.js';

/** Policy findings: errors (`on`, the default), warnings (`warn`), or not reported (`off`). */
export type PolicyMode = 'on' | 'warn' | 'off';
export const POLICY_MODES: readonly PolicyMode[] = ['on', 'warn', 'off'];

export interface LintOptions {
  /** Projected scheduled-query executions per host per hour allowed. */
  budgetPerHour: number;
  /** No query runs more often than this, except heartbeats (`removed: false`, `denylist: false`). */
  minIntervalSeconds: number;
  policy: PolicyMode;
}

export const DEFAULT_LINT_OPTIONS: LintOptions = { budgetPerHour: 60, minIntervalSeconds: 300, policy: 'on' };

/** The policy file, in the bundle folder beside osquery.conf. It is never placed on a VM. */
export const LINT_POLICY_FILE = 'lint-policy.json';

const policyFile = z.strictObject({
  policy: z.enum(['on', 'warn', 'off']).optional(),
  budgetPerHour: z.number().positive().optional(),
  minIntervalSeconds: z.number().int().min(1).max(604_800).optional(),
});

/**
 * The lint settings for a bundle: the defaults, then the bundle's lint-policy.json, then `overrides`
 * (command-line options). A policy file that does not parse is an error, never silently ignored.
 */
export function lintOptionsFor(bundle: Bundle, overrides: Partial<LintOptions> = {}): LintOptions {
  const text = bundle.files.get(LINT_POLICY_FILE);
  let fromFile: z.infer<typeof policyFile> = {};
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`${LINT_POLICY_FILE} is not JSON: ${error instanceof Error ? error.message : error}`);
    }
    const parsed = policyFile.safeParse(json);
    if (!parsed.success) throw new Error(`${LINT_POLICY_FILE}: ${z.prettifyError(parsed.error)}`);
    fromFile = parsed.data;
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_LINT_OPTIONS, ...fromFile, ...defined };
}
