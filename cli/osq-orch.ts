#!/usr/bin/env node
// osq-orch: the orchestrator from a terminal. `osq-orch help` lists the commands.
import { parseArgs } from 'node:util';
import { DEFAULT_BUNDLE_DIR, loadBundle } from '../shared/osquery/bundle.js';
import { formatFinding, lintBundle } from '../shared/osquery/lint.js';
import { LINT_POLICY_FILE, POLICY_MODES, lintOptionsFor, type PolicyMode } from '../shared/osquery/lint-policy.js';
import { loadSchema, schemaForBundle, schemaSource as resolveSchema } from '../shared/osquery/schema.js';
import { osqueryVersionOfBundle } from '../shared/osquery/version.js';
import { PINNED_OSQUERY_VERSION } from '../shared/osquery/version.js';
import { quietKnownWarnings } from '../shared/warnings.js';
import { REPORT_HELP, report } from './report.js';
import { AccessError, checkGoogleAccess } from './google-access.js';
import { ROLLOUT_HELP, rollout } from './rollout.js';

const HELP = `osq-orch <command> [options]

  lint [bundle-dir] [--schema PATH|URL] [--policy on|warn|off] [--budget N] [--min-interval S]
      Check an osquery bundle as the osqueryd it pins (osquery.version) would run it on Linux (findings of kind
      "broken") and against this project's performance policy (kind "policy"). Exit 1 when there are
      errors. --policy off checks for breakage alone, warn reports policy findings as warnings; a
      ${LINT_POLICY_FILE} in the bundle folder may set policy, budgetPerHour and minIntervalSeconds
      (options given here win). Default schema: that of the osquery version the bundle pins, when the
      repository keeps it (else osquery ${PINNED_OSQUERY_VERSION}'s, and a note on stderr says so);
      OSQUERY_SCHEMA (a path or URL) or OSQUERY_VERSION (the published schema of that version) change it.

  render --zone ZONE [--project P] [--bundle DIR]
      Print the OS policy assignment the zone gets for the bundle, in Google's REST JSON form (for
      \`gcloud compute os-config os-policy-assignments create --file\` or the API). Cloud Storage generations
      come from the published version (Firestore rollouts/{version}); unpublished ones print blank.

  publish [--bundle DIR] [--project P ...] [--schema PATH|URL] [--plan FILE] [--all-at-once] [--reason WHY]
      Lint, upload the files over 1024 characters to CONFIG_BUCKET, record rollouts/{version}, and start
      a progressive rollout by the plan (default shared/osquery/rollout.json, validated first): the first
      stage's zones get the new version, every other zone keeps the current one (the baseline); the
      controller at each audit run promotes it stage by stage, or halts it and rolls back. --all-at-once
      brings every zone of every target project to it now (for emergencies: no canary, no gates, no
      automatic rollback). Within OSCONFIG_WRITES_PER_MINUTE. Publishing the same bundle again changes nothing.

${ROLLOUT_HELP}
  audit [--project P ...] [--dry-run]
      Reconcile the target projects now (the same reconcile as fleetAuditShard), with progress on stderr
      and a summary: hosts per state, coverage, hosts needing action. --dry-run writes and fixes nothing,
      and lists the zones whose assignment it would check and the VM fixes it would make. Both say how the
      scheduled audit covers the projects (every tick, or rolling: the cycle time) and each one's audit age.

  queries [--version V] [--hours H]
      osquery's measured cost of every scheduled query of a configuration version (default: the current
      one; --version all for every version), from queryStats over the current hour and the H before it
      (default 1): schedule, CPU ms per execution at p50/p95 across hosts, executions and output per hour,
      hosts with it denylisted, and its class (minimal < 2000 ms <= considerable < 4000 ms <= excessive,
      on p50). Most expensive first.

  hosts --top cpu|memory [--n 20]
      The in-scope hosts where osqueryd costs most: CPU over its last heartbeat interval (percent of one
      core) or resident memory, from hosts/{id}.osqueryd.

${REPORT_HELP}
Settings come from the environment (see docs/configuration.md). A command that cannot run
(bad arguments, a bad or missing setting, Google Cloud unreachable or no credentials) prints one line
on stderr and exits 2.
`;

/** How long render waits for Firestore before rendering without the published generations. */
const LOOKUP_TIMEOUT_MS = 10_000;

/**
 * The schema to lint a bundle with: --schema or OSQUERY_SCHEMA, else OSQUERY_VERSION's published one, else the
 * schema of the osquery version the bundle pins when the repository has it (else the pinned one's, said on stderr).
 */
async function bundleSchema(flag: string | undefined, bundleDir: string | undefined) {
  const explicit = flag || process.env.OSQUERY_SCHEMA;
  if (!explicit && process.env.OSQUERY_VERSION)
    return loadSchema(resolveSchema(undefined, process.env.OSQUERY_VERSION));
  const chosen = schemaForBundle(
    explicit,
    osqueryVersionOfBundle((await loadBundle(bundleDir ?? DEFAULT_BUNDLE_DIR)).files),
  );
  if (chosen.note) console.error(chosen.note);
  return loadSchema(chosen.source);
}

async function render(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { zone: { type: 'string' }, project: { type: 'string' }, bundle: { type: 'string' } },
  });
  if (!values.zone) throw new Error('--zone is required');
  const { config, renderSettings } = await import('../shared/config.js');
  const { renderBundle } = await import('../shared/osquery/render.js');
  const { policyConfigOf } = await import('../shared/domain/policy.js');
  const { zoneAssignment } = await import('../shared/usecases/assignments.js');
  const c = config();
  const project =
    values.project ?? c.TARGET_PROJECTS.find((t) => !t.includes('/')) ?? c.GOOGLE_CLOUD_PROJECT ?? 'PROJECT';
  // The log topic lives in the orchestrator's project; offline and unset, render assumes this one.
  let settings = { logTopic: c.LOG_TOPIC, logTopicProject: c.LOG_TOPIC_PROJECT ?? c.GOOGLE_CLOUD_PROJECT ?? '' };
  if (settings.logTopicProject) settings = renderSettings();
  else {
    settings.logTopicProject = project;
    console.error(`LOG_TOPIC_PROJECT and GOOGLE_CLOUD_PROJECT are unset: the log topic is taken to be in ${project}`);
  }
  const rendered = renderBundle(await loadBundle(values.bundle ?? DEFAULT_BUNDLE_DIR), settings);
  const needsGenerations = rendered.files.some((f) => f.viaStorage);
  const lookup = needsGenerations ? await publishedRollout(rendered.configVersion) : { rollout: null };
  const published = lookup.rollout;
  const generations = Object.fromEntries(
    (published?.files ?? []).filter((f) => f.generation).map((f) => [f.source, f.generation!]),
  );
  if ('unavailable' in lookup)
    console.error(`no published generations: ${lookup.unavailable}; Cloud Storage generations are blank`);
  else if (!published && needsGenerations)
    console.error(
      `version ${rendered.configVersion} is not published: ` +
        'Cloud Storage generations are blank until `osq-orch publish`',
    );
  const policy = policyConfigOf(rendered, published?.bucket ?? c.CONFIG_BUCKET ?? '', generations, 'blank');
  const { assignmentRestJson } = await import('../shared/domain/assignment-json.js');
  // Google's REST JSON form: gcloud's --file and the REST API take it as it is (durations "60s", int64 strings).
  console.log(JSON.stringify(assignmentRestJson(zoneAssignment(project, values.zone, policy)), null, 2));
  return 0;
}

/** The version's rollout record from Firestore, or why it cannot be read (offline, no credentials). */
async function publishedRollout(version: string) {
  try {
    await checkGoogleAccess(['firestore']);
  } catch (error) {
    if (error instanceof AccessError) return { rollout: null, unavailable: error.message };
    throw error;
  }
  const { getRollout } = await import('../shared/adapters/rollouts.js');
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Firestore did not answer within ${LOOKUP_TIMEOUT_MS / 1000} s`)),
        LOOKUP_TIMEOUT_MS,
      );
    });
    return { rollout: await Promise.race([getRollout(version), timeout]) };
  } catch (error) {
    return { rollout: null, unavailable: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

async function publishCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      bundle: { type: 'string' },
      project: { type: 'string', multiple: true },
      schema: { type: 'string' },
      plan: { type: 'string' },
      'all-at-once': { type: 'boolean', default: false },
      reason: { type: 'string' },
      by: { type: 'string' },
    },
  });
  const { publish, loadPlan, BundleRejected } = await import('../shared/usecases/publish.js');
  const { PlanInvalid } = await import('../shared/domain/rollout-plan.js');
  // The plan is checked before anything else: a bad plan publishes nothing, and every problem is named.
  let plan;
  try {
    plan = values['all-at-once'] ? undefined : await loadPlan(values.plan);
  } catch (error) {
    if (!(error instanceof PlanInvalid)) throw error;
    console.error(error.message);
    console.error('publish refused: fix the rollout plan first (nothing was published)');
    return 1;
  }
  const { config } = await import('../shared/config.js');
  // Without --project, publish resolves TARGET_PROJECTS itself (folders and organisations to their projects).
  const projects = values.project;
  if (!projects && config().TARGET_PROJECTS.length === 0)
    throw new Error('no project: pass --project or set TARGET_PROJECTS');
  const schema = await bundleSchema(values.schema, values.bundle);
  await checkGoogleAccess(['firestore', 'apis']);
  try {
    const report = await publish({
      bundleDir: values.bundle,
      projects,
      schema,
      plan,
      allAtOnce: values['all-at-once'],
      actor: { by: values.by ?? process.env.USER ?? 'unknown', reason: values.reason ?? '' },
    });
    console.log(
      `version ${report.configVersion}: ${report.uploaded} file(s) uploaded, ${report.reused} already there; ` +
        `record ${report.recorded ? 'written' : 'unchanged'}`,
    );
    const r = report.rollout;
    if (r.note) console.log(`${r.mode}: ${r.note}`);
    else {
      console.log(`staged rollout (baseline ${r.baseline ?? 'none'}); the controller promotes it at each audit run:`);
      for (const [i, s] of r.stages.entries())
        console.log(
          `  ${i === 0 ? '->' : '  '} ${s.name.padEnd(8)} ${String(s.zones.length).padStart(3)} zones, ` +
            `${s.hosts} hosts, bake ${s.bakeMinutes} min`,
        );
      for (const s of r.skipped) console.log(`     ${s.name.padEnd(8)} skipped: ${s.reason}`);
    }
    for (const [zone, reason] of Object.entries(report.failedZones))
      console.error(`zone ${zone} failed (the next audit retries it): ${oneLine(reason)}`);
    console.log(
      `zones: ${report.zones.created.length} created, ${report.zones.updated.length} updated, ` +
        `${report.zones.unchanged.length} unchanged (${report.osConfigWrites} OS Config writes)`,
    );
    for (const [project, reason] of Object.entries(report.failedProjects))
      console.error(`project ${project} failed: ${oneLine(reason)}`);
    return Object.keys(report.failedProjects).length > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof BundleRejected) {
      for (const line of error.findings) console.log(line);
      console.error('publish refused: fix the lint errors first');
      return 1;
    }
    throw error;
  }
}

/** A positive number from a command-line option, or undefined when it is not given. */
function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new Error(`--${name} must be a positive number, not '${value}'`);
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
  if (positionals.length > 1) throw new Error(`one bundle directory, not ${positionals.length}`);
  const dir = positionals[0] ?? DEFAULT_BUNDLE_DIR;
  const [bundle, schema] = await Promise.all([loadBundle(dir), bundleSchema(values.schema, dir)]);
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
  const { config } = await import('../shared/config.js');
  const targets = values.project ?? config().TARGET_PROJECTS;
  if (targets.length === 0) throw new Error('no project: pass --project or set TARGET_PROJECTS');
  await checkGoogleAccess(values['dry-run'] ? ['firestore', 'apis'] : ['firestore', 'apis', 'pubsub']);
  const { auditProject } = await import('../shared/usecases/audit.js');
  // Folders and organisations become their projects; projects without the Compute or OS Config API are skipped.
  const { projects, skipped } = await (await import('../shared/usecases/targets.js')).resolveTargets(targets);
  for (const [project, reason] of Object.entries(skipped)) console.error(`${project}: skipped, ${reason}`);
  // How the scheduled audit covers them (the rolling audit, docs/quotas.md) and each one's audit age.
  const { auditCoverage } = await import('../shared/usecases/rolling-audit.js');
  const { plan, ageMinutes } = await auditCoverage(projects, new Date());
  const r = plan.rolling;
  console.log(
    r
      ? `scheduled audit: rolling, ${r.selected} of ${r.targets} projects a tick; every project within ` +
          `${r.cycleTicks} ticks (${r.cycleMinutes} min); ${r.neverAudited} never audited`
      : `scheduled audit: every project each tick (${projects.length} projects fit the API budget)`,
  );
  const { coverageOf } = await import('../shared/domain/status.js');
  const { STATES_FOR_DISPLAY } = await import('../shared/domain/host.js');
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
      const dry = result.dryRun;
      const fixes = dry?.fixes.map((f) => `${f.name}:${f.action}`).join(' ');
      progress.done(
        `${project}: ${result.instances} VMs, ${result.changes.length} host changes` +
          `${dry ? ' (dry run: not written)' : ''}, ${result.apiCalls} API calls` +
          `${result.zonesHealed.length ? `, zones fixed: ${result.zonesHealed.join(' ')}` : ''}` +
          `${dry?.zonesToCheck.length ? `, zones to check: ${dry.zonesToCheck.join(' ')}` : ''}` +
          `${fixes ? `, VM fixes not made: ${fixes}` : ''}` +
          `; audit age ${ageMinutes.get(project) === null ? 'never audited' : `${ageMinutes.get(project)} min`}`,
      );
    } catch (error) {
      failed += 1;
      progress.failed(`${project}: FAILED ${oneLine(error instanceof Error ? error.message : String(error))}`);
    }
  }
  console.log('\nstate          hosts');
  for (const state of STATES_FOR_DISPLAY) {
    if (totals[state]) console.log(`${state.padEnd(14)} ${String(totals[state]).padStart(5)}`);
  }
  const coverage = coverageOf(totals);
  console.log(
    `coverage       ${coverage === null ? 'n/a' : `${(coverage * 100).toFixed(1)}%`} ` +
      '(reporting / in scope and running)',
  );
  if (needing.length > 0) {
    console.log(`\nneeding action (${needing.length}):`);
    for (const h of needing.slice(0, 50))
      console.log(`  ${h.state.padEnd(13)} ${`${h.project}/${h.zone}/${h.name}`.padEnd(50)} ${h.reason ?? ''}`);
    if (needing.length > 50) console.log(`  ... and ${needing.length - 50} more`);
  }
  return failed > 0 ? 1 : 0;
}

async function queries(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { version: { type: 'string' }, hours: { type: 'string' } } });
  const hours = positiveNumber('hours', values.hours) ?? 1;
  if (!Number.isInteger(hours) || hours > 48) throw new Error('--hours must be a whole number of hours up to 48');
  await checkGoogleAccess(['firestore']);
  const { queryCosts, queryVolumes } = await import('../shared/usecases/telemetry.js');
  const { monthlyLogCost } = await import('../shared/domain/cost-model.js');
  const { prices } = await import('../shared/config.js');
  const { currentVersion } = await import('../shared/adapters/rollouts.js');
  const { formatQueriesTable } = await import('./telemetry-tables.js');
  const version = values.version === 'all' ? undefined : (values.version ?? (await currentVersion()) ?? undefined);
  const rows = await queryCosts(version, new Date(), hours);
  const scope = version ? `version ${version}` : 'every version';
  if (rows.length === 0) {
    console.log(`no query statistics for ${scope} yet (they come from the hourly osquery_schedule snapshot)`);
    return 0;
  }
  // Log volume and money beside the CPU: the shipper's bytes per host and day, priced for the fleet.
  const price = prices();
  const volumes = await queryVolumes(version, new Date(), hours);
  const columns = new Map(
    volumes.map((v) => [
      `${v.configVersion}~${v.query}`,
      {
        shippedBytesPerHostDay: v.shippedBytesPerHostDay,
        usdPerMonth: v.shippedBytesPerDay === null ? null : monthlyLogCost(v.shippedBytesPerDay, price).usd,
      },
    ]),
  );
  console.log(`${scope}, the current hour and the ${hours} before it:\n`);
  console.log(formatQueriesTable(rows, columns));
  const fleet = monthlyLogCost(
    volumes.reduce((n, v) => n + (v.shippedBytesPerDay ?? 0), 0),
    price,
    true,
  );
  console.log(
    `\nprojected monthly log cost of these queries: $${fleet.usd.toFixed(2)} ` +
      `(Pub/Sub $${fleet.pubsubUsd.toFixed(2)} at $${price.pubsubUsdPerTiB}/TiB x ${1 + price.logSubscriptions}, ` +
      `SIEM $${fleet.siemUsd.toFixed(2)} at $${price.siemUsdPerGiB}/GiB; docs/log-cost.md)`,
  );
  return 0;
}

async function hostsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { top: { type: 'string' }, n: { type: 'string' } } });
  if (values.top !== 'cpu' && values.top !== 'memory') throw new Error('--top must be cpu or memory');
  const n = positiveNumber('n', values.n) ?? 20;
  if (!Number.isInteger(n) || n > 1000) throw new Error('--n must be a whole number up to 1000');
  await checkGoogleAccess(['firestore']);
  const { topHosts } = await import('../shared/usecases/telemetry.js');
  const { formatHostsTable } = await import('./telemetry-tables.js');
  const hosts = await topHosts(values.top, n);
  if (hosts.length === 0) {
    console.log('no host has reported osqueryd usage yet (it comes with the 5-minute heartbeat)');
    return 0;
  }
  console.log(formatHostsTable(hosts, values.top, n));
  return 0;
}

/** A one-line progress bar on stderr when it is a terminal; plain phase lines otherwise. */
function progressBar() {
  const tty = process.stderr.isTTY;
  let last = '';
  const update = (project: string, p: { phase: string; done: number; total: number }) => {
    const width = 30;
    const filled = p.total ? Math.round((p.done / p.total) * width) : width;
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const line = `${project} ${p.phase.padEnd(9)} [${bar}] ${p.done}/${p.total}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (p.phase !== last) process.stderr.write(`${project} ${p.phase}...\n`);
    last = p.phase;
  };
  update.done = (summary: string) => {
    if (tty) process.stderr.write('\r\x1b[2K');
    console.log(summary);
  };
  update.failed = (line: string) => {
    if (tty) process.stderr.write('\r\x1b[2K');
    console.error(line);
  };
  return update;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  lint,
  render,
  publish: publishCommand,
  rollout: async (args) => {
    await checkGoogleAccess(['firestore', 'apis']);
    return rollout(args);
  },
  audit,
  report,
  queries,
  hosts: hostsCommand,
};

/** The first line of a message, without the client libraries' appended details. */
function oneLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** Every failure ends here: one line on stderr, exit 2. Never a stack trace. */
function fail(command: string | undefined, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`osq-orch${command ? ` ${command}` : ''}: ${oneLine(message) || (error as Error)?.name || 'failed'}`);
  process.exit(2);
}

quietKnownWarnings();
const [command, ...rest] = process.argv.slice(2);
// Client libraries can reject promises nobody awaits (a channel that failed to start): still one line.
process.on('unhandledRejection', (error) => fail(command, error));
process.on('uncaughtException', (error) => fail(command, error));
if (!command || command === 'help' || command === '--help' || command === '-h') {
  process.stdout.write(HELP);
  process.exit(0);
}
const run = COMMANDS[command];
if (!run) fail(undefined, `unknown command '${command}' (osq-orch help lists the commands)`);
try {
  process.exit(await run(rest));
} catch (error) {
  fail(command, error);
}
