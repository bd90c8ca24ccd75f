// The Prometheus alerting rules, written from the Terraform: `npm run prometheus-rules` rewrites
// infra/prometheus/*.rules.yml, and test/prometheus.test.ts fails when a checked-in file differs from what
// this writes. The Terraform is the one definition of every threshold and `for` duration the Cloud
// Monitoring policies have: the thresholds are the defaults of variables.tf (osqueryd_cpu_percent,
// osqueryd_memory_mb: the same settings the functions get), the durations those of the policies in
// monitoring.tf; the metric names come from the log-based metrics (dashboard.tf, metrics.tf). Alerts with
// no Cloud Monitoring policy (the orchestrator's own signals) are defined here, in ORCHESTRATOR_ALERTS.
//
// Two flavours, the same osqueryd alerts (names, thresholds, `for`, labels):
// - osquery.rules.yml: hosts scraped with process-exporter (groupname="osqueryd"), self-hosted Prometheus;
// - osquery.managed.rules.yml: Google Cloud Managed Service for Prometheus, which reads every Cloud
//   Monitoring metric through PromQL: the Ops Agent's process metrics, and the orchestrator's log-based
//   metrics (coverage, hosts per state, rollout decisions), which only that flavour can see.
//
// How the managed service names Cloud Monitoring metrics in PromQL
// (https://cloud.google.com/monitoring/promql/promql-mapping, "Mapping Cloud Monitoring metric names to
// PromQL"): the first `/` becomes `:`, every other special character (`.`, `/`, `-`) becomes `_`
// (agent.googleapis.com/disk/io_time -> agent_googleapis_com:disk_io_time); a distribution is read like a
// Prometheus histogram with `_sum`, `_count` and `_bucket`; a metric that more than one monitored
// resource type can carry (log-based metrics, the Ops Agent's gce_instance / aws_ec2_instance) is
// narrowed with the `monitored_resource` label; resource and metric labels are plain labels
// (`instance_id`, `command`). The managed service's PromQL evaluates rate() and increase() over Cloud
// Monitoring's cumulative and delta points alike
// (https://cloud.google.com/stackdriver/docs/managed-prometheus/promql-differences).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';

export const PROMETHEUS_DIR = import.meta.dirname;
export const TERRAFORM_DIR = path.resolve(import.meta.dirname, '../terraform');

export type Flavour = 'process-exporter' | 'managed';
export const RULE_FILES: Record<Flavour, string> = {
  'process-exporter': 'osquery.rules.yml',
  managed: 'osquery.managed.rules.yml',
};

// --- The Terraform, offline ------------------------------------------------------------------------

type Block = Record<string, unknown>;

export interface Terraform {
  /** `type.name` -> the resource's block. */
  resources: Map<string, Block>;
  locals: Record<string, unknown>;
  variables: Record<string, Block>;
}

/** Every .tf file of a directory, parsed with @cdktf/hcl2json (no provider, no network). */
export async function readTerraform(dir = TERRAFORM_DIR): Promise<Terraform> {
  const tf: Terraform = { resources: new Map(), locals: {}, variables: {} };
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort()) {
    const json = (await parse(file, readFileSync(path.join(dir, file), 'utf8'))) as Record<string, unknown>;
    for (const [type, byName] of Object.entries((json.resource ?? {}) as Record<string, Record<string, Block[]>>))
      for (const [name, blocks] of Object.entries(byName)) tf.resources.set(`${type}.${name}`, blocks[0]!);
    for (const block of (json.locals ?? []) as Block[]) Object.assign(tf.locals, block);
    for (const [name, blocks] of Object.entries((json.variable ?? {}) as Record<string, Block[]>))
      tf.variables[name] = blocks[0]!;
  }
  return tf;
}

function resource(tf: Terraform, key: string): Block {
  const r = tf.resources.get(key);
  if (!r) throw new Error(`infra/terraform declares no ${key}`);
  return r;
}

/** The default of a variable: a literal, or an error naming it. */
function defaultOf<T extends string | number>(tf: Terraform, name: string, type: 'string' | 'number'): T {
  const v = tf.variables[name]?.default;
  if (typeof v !== type) throw new Error(`var.${name} has no ${type} default`);
  return v as T;
}

/** The one condition_threshold of an alert policy. */
function conditionOf(tf: Terraform, key: string): Block {
  const conditions = resource(tf, key).conditions as Block[];
  return (conditions[0]!.condition_threshold as Block[])[0]!;
}

/** "300s" -> 300. */
function seconds(v: unknown, what: string): number {
  const m = /^(\d+)s$/.exec(String(v));
  if (!m) throw new Error(`${what}: expected a duration in seconds, got ${JSON.stringify(v)}`);
  return Number(m[1]);
}

/** 300 -> "5m", 90 -> "90s": Prometheus's duration syntax. */
export function promDuration(s: number): string {
  if (s % 3600 === 0 && s > 0) return `${s / 3600}h`;
  if (s % 60 === 0 && s > 0) return `${s / 60}m`;
  return `${s}s`;
}

/**
 * The PromQL name of a Cloud Monitoring metric type on the managed service: the first `/` becomes `:`,
 * every other character that is not a letter, digit or `_` becomes `_`.
 */
export function promqlName(metricType: string): string {
  const slash = metricType.indexOf('/');
  const [domain, rest] = slash < 0 ? [metricType, ''] : [metricType.slice(0, slash), metricType.slice(slash + 1)];
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');
  return slash < 0 ? clean(domain) : `${clean(domain)}:${clean(rest)}`;
}

/** A log-based metric's type, with `${var.name_prefix}` and `${each.key}` resolved to `name_prefix`'s default. */
function logMetricType(tf: Terraform, key: string, eachKey?: string): string {
  const name = String(resource(tf, key).name)
    .replaceAll('${var.name_prefix}', defaultOf<string>(tf, 'name_prefix', 'string'))
    .replaceAll('${each.key}', eachKey ?? '${each.key}');
  if (name.includes('${')) throw new Error(`${key}: cannot resolve the name ${name}`);
  return `logging.googleapis.com/user/${name}`;
}

// --- What the rules say ------------------------------------------------------------------------------

/** Alerts with no Cloud Monitoring policy: the orchestrator's own signals (managed flavour only). */
export const ORCHESTRATOR_ALERTS = {
  /** Coverage (reporting / in scope and not stopped) of the runs in the window below this percentage... */
  coverageTargetPercent: 95,
  /** ...on two audit runs in a row (one run every audit_schedule period). */
  coverageForRuns: 2,
  /**
   * A halted rollout is announced for this long after the halt (the
   * product's rollout.halted alert stays open until it is resumed).
   */
  rolloutHaltedWindowSeconds: 3600,
} as const;

export interface RuleSettings {
  cpu: { percent: number; forSeconds: number; rateWindowSeconds: number };
  memory: { mib: number; forSeconds: number };
  /** Minutes between audit runs (var.audit_schedule, `*\/N * * * *`). */
  auditPeriodMinutes: number;
  /** PromQL names of the log-based metrics. */
  metrics: { coverage: string; silentHosts: string; rolloutDecisions: string };
}

/** What the rules take from the Terraform: thresholds, durations, metric names. */
export function ruleSettings(tf: Terraform): RuleSettings {
  const cpu = conditionOf(tf, 'google_monitoring_alert_policy.osqueryd_cpu');
  const memory = conditionOf(tf, 'google_monitoring_alert_policy.osqueryd_memory');
  for (const [key, c, variable] of [
    ['osqueryd_cpu', cpu, 'osqueryd_cpu_percent'],
    ['osqueryd_memory', memory, 'osqueryd_memory_mb'],
  ] as const) {
    if (!String(c.threshold_value).includes(`var.${variable}`))
      throw new Error(`google_monitoring_alert_policy.${key}: its threshold is no longer var.${variable}`);
  }
  const alignment = seconds((cpu.aggregations as Block[])[0]!.alignment_period, 'osqueryd_cpu alignment_period');
  const schedule = defaultOf<string>(tf, 'audit_schedule', 'string');
  const period = /^\*\/(\d+) \* \* \* \*$/.exec(schedule);
  if (!period) throw new Error(`var.audit_schedule ${schedule}: the rules expect */N * * * *`);
  return {
    // Two of the Ops Agent's samples (one a minute, as the policy aligns): rate() needs two.
    cpu: {
      percent: defaultOf<number>(tf, 'osqueryd_cpu_percent', 'number'),
      forSeconds: seconds(cpu.duration, 'osqueryd_cpu duration'),
      rateWindowSeconds: 2 * alignment,
    },
    memory: {
      mib: defaultOf<number>(tf, 'osqueryd_memory_mb', 'number'),
      forSeconds: seconds(memory.duration, 'osqueryd_memory duration'),
    },
    auditPeriodMinutes: Number(period[1]),
    metrics: {
      coverage: promqlName(logMetricType(tf, 'google_logging_metric.fleet_coverage')),
      silentHosts: promqlName(logMetricType(tf, 'google_logging_metric.fleet_hosts', 'silent')),
      rolloutDecisions: promqlName(logMetricType(tf, 'google_logging_metric.rollout_decisions')),
    },
  };
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A managed-service selector: a Cloud Monitoring metric on one monitored resource type. */
const gcm = (metricType: string, resourceType: string, labels = '') =>
  `${promqlName(metricType)}{monitored_resource="${resourceType}"${labels ? `, ${labels}` : ''}}`;

/** The per-VM series of each flavour and how an alert names the VM. */
const HOSTS: Record<Flavour, { name: string; cpuPercent: (window: string) => string; rssBytes: string }> = {
  'process-exporter': {
    name: '{{ $labels.instance }}',
    // CPU seconds per second (user + system) x 100: percent of one core.
    cpuPercent: (w) =>
      `sum by (instance) (rate(namedprocess_namegroup_cpu_seconds_total{groupname="osqueryd"}[${w}])) * 100`,
    rssBytes: 'sum by (instance) (namedprocess_namegroup_memory_bytes{groupname="osqueryd", memtype="resident"})',
  },
  managed: {
    name: '{{ $labels.project_id }}/{{ $labels.zone }}/{{ $labels.instance_id }}',
    // cpu_time is cumulative microseconds (every osqueryd process: watchdog and worker, user and system):
    // its rate is microseconds of CPU per second, so 10,000 is 1% of one core.
    cpuPercent: (w) =>
      `sum by (project_id, zone, instance_id) ` +
      `(rate(${gcm('agent.googleapis.com/processes/cpu_time', 'gce_instance', 'command="osqueryd"')}[${w}])) / 10000`,
    rssBytes:
      `sum by (project_id, zone, instance_id) ` +
      `(${gcm('agent.googleapis.com/processes/rss_usage', 'gce_instance', 'command="osqueryd"')})`,
  },
};

function osquerydRules(flavour: Flavour, s: RuleSettings): Rule[] {
  const h = HOSTS[flavour];
  const cpuFor = promDuration(s.cpu.forSeconds);
  const memoryFor = promDuration(s.memory.forSeconds);
  return [
    {
      alert: 'OsquerydHighCpu',
      expr: `${h.cpuPercent(promDuration(s.cpu.rateWindowSeconds))} > ${s.cpu.percent}`,
      for: cpuFor,
      labels: { severity: 'warning', alert_kind: 'host-performance' },
      annotations: {
        summary: `osqueryd CPU above ${s.cpu.percent}% of one core on ${h.name}`,
        description:
          `osqueryd used {{ $value | printf "%.1f" }}% of one CPU for ${cpuFor} (the watchdog limit is 10%). ` +
          'Look for an expensive scheduled query (osquery-health pack, osq-orch queries) before the watchdog ' +
          'starts killing workers.',
      },
    },
    {
      alert: 'OsquerydHighMemory',
      expr: `${h.rssBytes} / 1048576 > ${s.memory.mib}`,
      for: memoryFor,
      labels: { severity: 'warning', alert_kind: 'host-performance' },
      annotations: {
        summary: `osqueryd resident memory above ${s.memory.mib} MiB on ${h.name}`,
        description:
          `osqueryd held {{ $value | printf "%.0f" }} MiB resident for ${memoryFor} ` +
          '(the watchdog kills it above 350 MB).',
      },
    },
  ];
}

function orchestratorRules(s: RuleSettings): Rule[] {
  const m = s.metrics;
  const o = ORCHESTRATOR_ALERTS;
  const run = `${s.auditPeriodMinutes + 5}m`; // one audit run's point, whatever the minute it lands in
  const onRuns = (metric: string) => `${metric}{monitored_resource="cloud_run_revision"}`;
  // The mean of a distribution over the runs in the window: the value of one run.
  const perRun = (metric: string) =>
    `sum(increase(${onRuns(`${metric}_sum`)}[${run}])) / sum(increase(${onRuns(`${metric}_count`)}[${run}]))`;
  const halted = `${m.rolloutDecisions}{monitored_resource="cloud_run_revision", decision="halted"}`;
  return [
    {
      alert: 'OsqueryFleetCoverageLow',
      expr: `${perRun(m.coverage)} < ${o.coverageTargetPercent}`,
      for: promDuration((o.coverageForRuns - 1) * s.auditPeriodMinutes * 60),
      labels: { severity: 'warning', alert_kind: 'orchestrator' },
      annotations: {
        summary: `osquery coverage below ${o.coverageTargetPercent}%`,
        description:
          'Coverage (reporting / in scope and not stopped) was {{ $value | printf "%.1f" }}% at the last audit runs. ' +
          'The status page lists the hosts needing action.',
      },
    },
    {
      alert: 'OsqueryHostsSilent',
      expr: `${perRun(m.silentHosts)} > 0`,
      labels: { severity: 'critical', alert_kind: 'orchestrator' },
      annotations: {
        summary: 'osquery hosts silent',
        description:
          '{{ $value | printf "%.0f" }} in-scope hosts sent no osquery logs within the silence threshold at the last ' +
          'audit run (host.silent alerts name them).',
      },
    },
    {
      alert: 'OsqueryRolloutHalted',
      expr: `sum by (version, stage) (increase(${halted}[${promDuration(o.rolloutHaltedWindowSeconds)}])) > 0`,
      labels: { severity: 'critical', alert_kind: 'orchestrator' },
      annotations: {
        summary: 'osquery configuration rollout of {{ $labels.version }} halted in stage {{ $labels.stage }}',
        description:
          'A rollout gate failed and the stages reached went back to the baseline (rollout.halted on the alert ' +
          'topic). `osq-orch rollout status` shows the gate; resume or roll back by hand.',
      },
    },
  ];
}

// --- YAML ------------------------------------------------------------------------------------------

/** A YAML scalar: plain when it is one word, else double-quoted (JSON's escapes are YAML's). */
const q = (s: string) => (/^[a-z][a-z0-9-]*$/.test(s) ? s : JSON.stringify(s));

function ruleYaml(r: Rule): string {
  const lines = [`      - alert: ${r.alert}`, `        expr: |-`, `          ${r.expr}`];
  if (r.for) lines.push(`        for: ${r.for}`);
  lines.push('        labels:', ...Object.entries(r.labels).map(([k, v]) => `          ${k}: ${q(v)}`));
  lines.push('        annotations:', ...Object.entries(r.annotations).map(([k, v]) => `          ${k}: ${q(v)}`));
  return lines.join('\n');
}

const HEADERS: Record<Flavour, string> = {
  'process-exporter':
    '# osqueryd alerts for hosts scraped with process-exporter (groupname="osqueryd"): load into Prometheus\n' +
    '# (rule_files). The same alerts as osquery.managed.rules.yml and the Cloud Monitoring policies.',
  managed: `# osqueryd and orchestrator alerts on Google Cloud Managed Service for Prometheus (the Ops Agent's
# process metrics and the orchestrator's log-based metrics, read through PromQL): load into the managed
# service's rule evaluator (a Rules resource, or the standalone rule-evaluator sending to your Alertmanager).`,
};

/** The rules file of a flavour, as checked in. */
export function renderRules(flavour: Flavour, s: RuleSettings): string {
  const groups: Array<[string, Rule[]]> = [['osqueryd', osquerydRules(flavour, s)]];
  if (flavour === 'managed') groups.push(['osquery-orchestrator', orchestratorRules(s)]);
  return [
    HEADERS[flavour],
    '# Written by `npm run prometheus-rules` (infra/prometheus/rules.ts) from infra/terraform: edit the Terraform',
    '# or rules.ts, not this file. Rule tests: promtool test rules ' + RULE_FILES[flavour].replace('.yml', '.test.yml'),
    'groups:',
    ...groups.map(([name, rules]) => [`  - name: ${name}`, '    rules:', ...rules.map(ruleYaml)].join('\n')),
    '',
  ].join('\n');
}

/** Every rules file: name -> content. */
export async function allRules(tfDir = TERRAFORM_DIR): Promise<Map<string, string>> {
  const settings = ruleSettings(await readTerraform(tfDir));
  return new Map((Object.keys(RULE_FILES) as Flavour[]).map((f) => [RULE_FILES[f], renderRules(f, settings)]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  for (const [file, text] of await allRules()) {
    writeFileSync(path.join(PROMETHEUS_DIR, file), text);
    console.log(`wrote infra/prometheus/${file}`);
  }
}
