#!/usr/bin/env node
// osq-orch: the orchestrator from a terminal. `osq-orch help` lists the commands.
import { parseArgs } from 'node:util';
import { DEFAULT_BUNDLE_DIR, loadBundle } from '../shared/osquery/bundle.js';
import { formatFinding, lintBundle } from '../shared/osquery/lint.js';
import { LINT_POLICY_FILE, POLICY_MODES, lintOptionsFor, type PolicyMode } from '../shared/osquery/lint-policy.js';
import { DEFAULT_OSQUERY_VERSION, loadSchema, schemaSource as resolveSchema } from '../shared/osquery/schema.js';
import { quietKnownWarnings } from '../shared/warnings.js';
import { REPORT_HELP, report } from './report.js';

const HELP = `osq-orch <command> [options]

  lint [bundle-dir] [--schema PATH|URL] [--policy on|warn|off] [--budget N] [--min-interval S]
      Check an osquery bundle as osqueryd ${DEFAULT_OSQUERY_VERSION} would run it on Linux (findings of kind
      "broken") and against this project's performance policy (kind "policy"). Exit 1 when there are
      errors. --policy off checks for breakage alone, warn reports policy findings as warnings; a
      ${LINT_POLICY_FILE} in the bundle folder may set policy, budgetPerHour and minIntervalSeconds
      (options given here win). Default schema: osquery ${DEFAULT_OSQUERY_VERSION}'s, kept in the repository;
      OSQUERY_SCHEMA (a path or URL) or OSQUERY_VERSION (the published schema of that version) change it.

  render --zone ZONE [--project P] [--bundle DIR]
      Print the OS policy assignment the zone gets for the bundle, as JSON. Cloud Storage generations
      come from the published version (Firestore rollouts/{version}); unpublished ones print blank.

  publish [--bundle DIR] [--project P ...] [--schema PATH|URL]
      Lint, upload the files over 1024 characters to CONFIG_BUCKET, record rollouts/{version}, make it
      current, and bring every zone's assignment in every target project (TARGET_PROJECTS) to it,
      within OSCONFIG_WRITES_PER_MINUTE. Publishing the same bundle again changes nothing.

  audit [--project P ...] [--dry-run]
      Reconcile the target projects now (the same reconcile as fleetAuditShard), with progress on stderr
      and a summary: hosts per state, coverage, hosts needing action. --dry-run writes and fixes nothing.

${REPORT_HELP}
Settings come from the environment (see the README's configuration table).
`;

const schemaSource = (flag: string | undefined) =>
  resolveSchema(flag || process.env.OSQUERY_SCHEMA, process.env.OSQUERY_VERSION || DEFAULT_OSQUERY_VERSION);

async function render(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { zone: { type: 'string' }, project: { type: 'string' }, bundle: { type: 'string' } },
  });
  if (!values.zone) throw new Error('--zone is required');
  const { config, policySettings } = await import('../shared/config.js');
  const { renderBundle, policyConfigOf } = await import('../shared/osquery/render.js');
  const { buildOsqueryAssignment } = await import('../shared/domain/policy.js');
  const { getRollout } = await import('../shared/adapters/rollouts.js');
  const { assignmentName } = await import('../shared/adapters/osconfig.js');
  const { renderSettings } = await import('../shared/usecases/publish.js');
  const rendered = renderBundle(await loadBundle(values.bundle ?? DEFAULT_BUNDLE_DIR), renderSettings());
  const published = await getRollout(rendered.configVersion).catch(() => null);
  const generations = Object.fromEntries(
    (published?.files ?? []).filter((f) => f.generation).map((f) => [f.source, f.generation!]),
  );
  if (!published && rendered.files.some((f) => f.viaStorage))
    console.error(
      `version ${rendered.configVersion} is not published: Cloud Storage generations are blank until \`osq-orch publish\``,
    );
  const policy = policyConfigOf(rendered, published?.bucket ?? config().CONFIG_BUCKET ?? '', generations, 'blank');
  const project = values.project ?? config().TARGET_PROJECTS[0] ?? config().GOOGLE_CLOUD_PROJECT ?? 'PROJECT';
  const assignment = {
    name: assignmentName(project, values.zone, config().ASSIGNMENT_ID),
    ...buildOsqueryAssignment(policySettings(), policy),
  };
  console.log(JSON.stringify(assignment, null, 2));
  return 0;
}

async function publishCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { bundle: { type: 'string' }, project: { type: 'string', multiple: true }, schema: { type: 'string' } },
  });
  const { publish, BundleRejected } = await import('../shared/usecases/publish.js');
  try {
    const report = await publish({
      bundleDir: values.bundle,
      projects: values.project,
      schema: await loadSchema(schemaSource(values.schema)),
    });
    console.log(
      `version ${report.configVersion}: ${report.uploaded} file(s) uploaded, ${report.reused} already there; ` +
        `record ${report.recorded ? 'written' : 'unchanged'}`,
    );
    console.log(
      `zones: ${report.zones.created.length} created, ${report.zones.updated.length} updated, ` +
        `${report.zones.unchanged.length} unchanged (${report.osConfigWrites} OS Config writes)`,
    );
    for (const [project, reason] of Object.entries(report.failedProjects))
      console.log(`project ${project} failed: ${reason}`);
    return Object.keys(report.failedProjects).length > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof BundleRejected) {
      for (const line of error.findings) console.log(line);
      console.log('publish refused: fix the lint errors first');
      return 1;
    }
    throw error;
  }
}

/** A positive number from a command-line option, or undefined when it is not given. */
function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not ${value}`);
  return n;
}

async function lint(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      schema: { type: 'string' },
      budget: { type: 'string' },
      'min-interval': { type: 'string' },
      policy: { type: 'string' },
    },
  });
  if (values.policy !== undefined && !POLICY_MODES.includes(values.policy as PolicyMode))
    throw new Error(`--policy must be one of ${POLICY_MODES.join(', ')}, not ${values.policy}`);
  const dir = positionals[0] ?? DEFAULT_BUNDLE_DIR;
  const [bundle, schema] = await Promise.all([loadBundle(dir), loadSchema(schemaSource(values.schema))]);
  const options = lintOptionsFor(bundle, {
    budgetPerHour: positiveNumber('budget', values.budget),
    minIntervalSeconds: positiveNumber('min-interval', values['min-interval']),
    policy: values.policy as PolicyMode | undefined,
  });
  const result = lintBundle(bundle, schema, options);
  for (const f of result.findings) console.log(formatFinding(f));
  const errors = result.findings.filter((f) => f.severity === 'error');
  const count = (kind: string) => errors.filter((f) => f.kind === kind).length;
  console.log(
    `${result.queries} queries, ${result.executionsPerHour} executions per host per hour, ` +
      `${errors.length} errors (${count('broken')} broken, ${count('policy')} policy), ` +
      `${result.findings.length - errors.length} warnings; policy ${options.policy}`,
  );
  return errors.length > 0 ? 1 : 0;
}

async function audit(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { project: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean', default: false } },
  });
  const { auditProject } = await import('../shared/usecases/audit.js');
  const { coverageOf } = await import('../shared/adapters/audits.js');
  const { config } = await import('../shared/config.js');
  const projects = values.project ?? config().TARGET_PROJECTS;
  if (projects.length === 0) throw new Error('no project: pass --project or set TARGET_PROJECTS');
  const progress = progressBar();
  const totals: Record<string, number> = {};
  const needing: Array<{ project: string; name: string; zone: string; state: string; reason: string | null }> = [];
  let failed = 0;
  for (const project of projects) {
    try {
      const result = await auditProject(project, {
        dryRun: values['dry-run'],
        cause: 'osq-orch audit',
        onProgress: (p) => progress(project, p),
      });
      for (const [state, n] of Object.entries(result.counts)) totals[state] = (totals[state] ?? 0) + (n ?? 0);
      needing.push(...result.needingAction.map((h) => ({ project, ...h })));
      progress.done(
        `${project}: ${result.instances} VMs, ${result.changes.length} host changes` +
          `${values['dry-run'] ? ' (dry run: not written)' : ''}, ${result.apiCalls} API calls` +
          `${result.zonesHealed.length ? `, zones fixed: ${result.zonesHealed.join(' ')}` : ''}`,
      );
    } catch (error) {
      failed += 1;
      progress.done(`${project}: FAILED ${error instanceof Error ? error.message : error}`);
    }
  }
  console.log('\nstate          hosts');
  for (const state of [
    'reporting',
    'compliant',
    'pending',
    'silent',
    'noncompliant',
    'blocked',
    'stopped',
    'exempt',
    'deleted',
  ]) {
    if (totals[state]) console.log(`${state.padEnd(14)} ${String(totals[state]).padStart(5)}`);
  }
  const coverage = coverageOf(totals);
  console.log(
    `coverage       ${coverage === null ? 'n/a' : `${(coverage * 100).toFixed(1)}%`} (reporting / in scope and running)`,
  );
  if (needing.length > 0) {
    console.log(`\nneeding action (${needing.length}):`);
    for (const h of needing.slice(0, 50))
      console.log(`  ${h.state.padEnd(13)} ${`${h.project}/${h.zone}/${h.name}`.padEnd(50)} ${h.reason ?? ''}`);
    if (needing.length > 50) console.log(`  ... and ${needing.length - 50} more`);
  }
  return failed > 0 ? 1 : 0;
}

/** A one-line progress bar on stderr when it is a terminal; plain phase lines otherwise. */
function progressBar() {
  const tty = process.stderr.isTTY;
  let last = '';
  const update = (project: string, p: { phase: string; done: number; total: number }) => {
    const width = 30;
    const filled = p.total ? Math.round((p.done / p.total) * width) : width;
    const line = `${project} ${p.phase.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (p.phase !== last) process.stderr.write(`${project} ${p.phase}...\n`);
    last = p.phase;
  };
  update.done = (summary: string) => {
    if (tty) process.stderr.write('\r\x1b[2K');
    console.log(summary);
  };
  return update;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  lint,
  render,
  publish: publishCommand,
  audit,
  report,
};

quietKnownWarnings();
const [command, ...rest] = process.argv.slice(2);
const run = command ? COMMANDS[command] : undefined;
if (!run) {
  process.stdout.write(HELP);
  process.exit(command && command !== 'help' ? 2 : 0);
}
try {
  process.exit(await run(rest));
} catch (error) {
  console.error(`osq-orch ${command}: ${error instanceof Error ? error.message : error}`);
  process.exit(2);
}
