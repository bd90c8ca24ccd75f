import { z } from 'zod';
import { DEFAULT_PRICES, type Prices } from './domain/cost-model.js';
import { silenceThresholdMs } from './domain/heartbeat.js';
import type { LogBudget } from './domain/log-budget.js';
import type { PolicySettings } from './domain/policy.js';
import type { ReconcileSettings } from './domain/reconcile.js';
import type { EvidenceSettings } from './domain/rollout.js';
import type { ScopeSettings } from './domain/scope.js';
import { isTarget } from './domain/targets.js';
import type { PerformanceThresholds } from './domain/telemetry/osqueryd.js';
import type { QueryAlertThresholds } from './domain/telemetry/query-alerts.js';
import { PINNED_OSQUERY_VERSION } from './osquery/version.js';

/** COST_PRICES: any of the model's prices, each a number from 0. */
const pricesOverride = z.strictObject(
  Object.fromEntries(Object.keys(DEFAULT_PRICES).map((k) => [k, z.number().min(0).optional()])) as {
    [K in keyof Prices]: z.ZodOptional<z.ZodNumber>;
  },
);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const labelPair = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$/, 'expected key=value with Compute label characters')
  .transform((v) => {
    const [key, value] = v.split('=') as [string, string];
    return { key, value };
  });

/** The token audience's length at most: the OS policy's refresher script must stay within 1,024 characters. */
export const MAX_TOKEN_AUDIENCE = 180;

/** Every setting the code reads, with its default. docs/configuration.md mirrors this. */
const schema = z.object({
  /**
   * Points the Compute, OS Config and Storage clients at the
   * local simulator (http://127.0.0.1:PORT). Unset in production.
   */
  GOOGLE_API_ENDPOINT: z.url().optional(),
  /** VMs carrying this label are out of scope (and the OS policy excludes them). */
  OPT_OUT_LABEL: labelPair.prefault('osquery-exempt=true'),
  /**
   * Set instance metadata enable-osconfig=TRUE on in-scope VMs that lack it, instead of only reporting them blocked.
   */
  REMEDIATE_OSCONFIG_METADATA: bool.default(false),
  /** The id of the one OS policy assignment the orchestrator owns in each zone. */
  ASSIGNMENT_ID: z
    .string()
    .regex(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, 'expected an OS Config assignment id')
    .default('osquery'),
  /** OS Config rollout: at most this percentage of a zone's VMs are changed at once. */
  ROLLOUT_DISRUPTION_PERCENT: z.coerce.number().int().min(1).max(100).default(10),
  /** OS Config rollout: how long a VM must stay compliant before the rollout moves on. */
  ROLLOUT_MIN_WAIT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
  /** Firestore database id. */
  FIRESTORE_DATABASE: z.string().min(1).default('(default)'),
  /** The project the orchestrator runs in (set by Cloud Functions and the emulators). */
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  /**
   * What the orchestrator covers (comma-separated): project ids, and folders (`folders/N`) or organisations
   * (`organizations/N`), each meaning its active projects, subfolders included, resolved at every run.
   */
  TARGET_PROJECTS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    )
    .refine((targets) => targets.every(isTarget), {
      message: 'expected comma-separated project ids, folders/N or organizations/N',
    }),
  /**
   * Pub/Sub topic the log shipper on every VM writes osquery
   * results to, and its project (default: GOOGLE_CLOUD_PROJECT).
   */
  LOG_TOPIC: z.string().min(1).default('osquery-logs'),
  LOG_TOPIC_PROJECT: z.string().min(1).optional(),
  /**
   * Cloud Storage bucket holding published configuration files (those over OS Config's 1024-character inline limit).
   */
  CONFIG_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a bucket name')
    .optional(),
  /** The osquery version whose schema the linter uses by default. */
  OSQUERY_VERSION: z
    .string()
    .regex(/^\d+\.\d+\.\d+$/)
    .default(PINNED_OSQUERY_VERSION),
  /** Topic alert messages go to (docs/contracts.md). */
  ALERT_TOPIC: z.string().min(1).default('osquery-alerts'),
  /** Topic Cloud Monitoring's Pub/Sub notification channel publishes incidents to (monitoringAlert). */
  INCIDENT_TOPIC: z.string().min(1).default('osquery-incidents'),
  /**
   * logHeartbeat writes a host's lastLogAt at most once per this many seconds (ending a silent episode is immediate).
   */
  HEARTBEAT_WRITE_WINDOW_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  /**
   * The audience the OS policy's refresher asks the metadata server's instance identity token for, and
   * logHeartbeat requires of it (docs/heartbeat.md: Whose line is it). Default: the log topic's full name,
   * projects/{LOG_TOPIC_PROJECT}/topics/{LOG_TOPIC}. Changing it is a configuration version (the policy
   * renders it): tokens for the old audience stop verifying, so accept unsigned heartbeats meanwhile.
   */
  HEARTBEAT_TOKEN_AUDIENCE: z.string().min(1).max(MAX_TOKEN_AUDIENCE).optional(),
  /** Google's public OAuth2 certificates (PEM, kid -> certificate) that sign instance identity tokens. */
  HEARTBEAT_TOKEN_CERTS_URL: z.url().default('https://www.googleapis.com/oauth2/v1/certs'),
  /**
   * A heartbeat without an identity token: `accept` (a sign of life, counted on the host) while the token
   * refresher rolls out with a configuration version, `reject` (not a sign of life) once every host has it.
   * A token that is present and does not verify is never accepted.
   */
  HEARTBEAT_UNSIGNED: z.enum(['accept', 'reject']).default('accept'),
  /** host.performance (source osquery): osqueryd worker CPU, percent of one core, over a heartbeat interval... */
  OSQUERYD_CPU_PERCENT: z.coerce.number().gt(0).max(6400).default(10),
  /** ...on this many consecutive heartbeats. */
  OSQUERYD_CPU_CONSECUTIVE: z.coerce.number().int().min(1).max(288).default(2),
  /** host.performance (source osquery): osqueryd worker resident memory, MiB, on any heartbeat. */
  OSQUERYD_MEMORY_MB: z.coerce.number().int().min(1).max(65_536).default(300),
  /** query.expensive: a query's CPU (user + system) ms per execution at p95 across hosts above this. */
  QUERY_EXPENSIVE_P95_MS: z.coerce.number().gt(0).max(3_600_000).default(2000),
  /**
   * logs.overBudget: a configuration version's shipped log bytes per host and day above this (unset: no
   * budget, no alert; a fleet's volume varies too much for one default to mean anything).
   */
  LOG_BYTES_PER_HOST_DAY: z.coerce.number().gt(0).optional(),
  /** Optional: any one query's shipped bytes per host and day above this puts its version over budget too. */
  LOG_BYTES_PER_QUERY_HOST_DAY: z.coerce.number().gt(0).optional(),
  /**
   * The cost model's prices, USD (shared/domain/cost-model.ts; sources and dates in docs/log-cost.md): a JSON
   * object overriding some of DEFAULT_PRICES, e.g. {"siemUsdPerGiB": 2.5}. Read by `osq-orch` and the bench.
   */
  COST_PRICES: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (!text) return {};
      try {
        return pricesOverride.parse(JSON.parse(text));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `expected a JSON object of prices: ${String(error).slice(0, 200)}` });
        return z.NEVER;
      }
    }),
  /** logHeartbeat buffers queryStats increments and writes each query's document once per this many seconds. */
  QUERY_STATS_WRITE_WINDOW_SECONDS: z.coerce.number().int().min(0).max(3600).default(300),
  /**
   * Pull delivery of the log topic (Terraform's log_heartbeat_delivery = "pull"): the filtered pull
   * subscription logHeartbeatDrain drains, an id in GOOGLE_CLOUD_PROJECT or projects/P/subscriptions/S.
   */
  LOG_HEARTBEAT_SUBSCRIPTION: z
    .string()
    .regex(
      /^(projects\/[a-z0-9.:-]+\/subscriptions\/)?(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/,
      'expected a subscription id or projects/PROJECT/subscriptions/ID',
    )
    .optional(),
  /**
   * The SIEM's own subscription on the log topic (an id), watched by Cloud Monitoring like the heartbeat's:
   * its pipeline.backlog episodes say the SIEM is behind, and never hold silence (docs/heartbeat.md).
   */
  SIEM_SUBSCRIPTION: z
    .string()
    .regex(/^(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/, 'expected a subscription id')
    .optional(),
  /**
   * A storm: more than this share (0-1) of a project's in-scope hosts going silent in one audit raises one
   * fleet.silent alert, and their host.silent alerts are held back until it clears (shared/domain/storm.ts).
   */
  SILENT_STORM_SHARE: z.coerce.number().gt(0).max(1).default(0.2),
  /** logHeartbeatDrain pulls for at most this many seconds a tick; what it has not processed by then is released. */
  LOG_DRAIN_BUDGET_SECONDS: z.coerce.number().int().min(5).max(480).default(45),
  /** Topic Cloud Scheduler publishes the drain tick to, every minute (pull delivery). */
  LOG_DRAIN_TICK_TOPIC: z.string().min(1).default('osquery-log-drain-tick'),
  /** Malformed messages on any Pub/Sub entry point are republished here when set. */
  DEAD_LETTER_TOPIC: z.string().min(1).optional(),
  /** Topic Cloud Scheduler publishes the audit tick to (read by the local stack and Terraform). */
  AUDIT_TICK_TOPIC: z.string().min(1).default('osquery-audit-tick'),
  /** Topic fleetAudit fans out to, one message per target project. */
  AUDIT_SHARD_TOPIC: z.string().min(1).default('osquery-audit-shards'),
  /** Minutes a host may stay pending (policy applying, no report, agent not seen) before it is judged. */
  GRACE_PERIOD_MINUTES: z.coerce.number().min(0).max(10_080).default(30),
  /** osquery's heartbeat query interval (seconds) and splay (%), from which the silence threshold is derived. */
  HEARTBEAT_INTERVAL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(300),
  HEARTBEAT_SPLAY_PERCENT: z.coerce.number().min(0).max(100).default(10),
  /** Minutes without logs before a compliant host is silent; default 3 heartbeat intervals plus splay. */
  SILENCE_THRESHOLD_MINUTES: z.coerce.number().min(1).max(10_080).optional(),
  /**
   * host.drifted: how long osqueryd may run another configuration or release than OS Config applied (or an
   * invalid one), by its own heartbeats' times, before the host is drifted (docs/osquery-upgrade.md).
   * Default: three 5-minute heartbeat intervals.
   */
  DRIFT_GRACE_MINUTES: z.coerce.number().min(0).max(10_080).default(15),
  /**
   * The rollout controller decides only on evidence this fresh: every project of the stages reached audited
   * successfully within this many minutes (and since the stage started); a project failing longer holds the
   * rollout and raises rollout.stalled. Default: two missed 15-minute audit runs.
   */
  ROLLOUT_EVIDENCE_MAX_AGE_MINUTES: z.coerce.number().int().min(1).max(10_080).default(30),
  /** OS Config reads allowed per minute (the API allows about 60-100 per minute per region). */
  OSCONFIG_READS_PER_MINUTE: z.coerce.number().int().min(1).max(6000).default(60),
  /** OS Config writes allowed per minute (the API's default quota is 60 per minute per region). */
  OSCONFIG_WRITES_PER_MINUTE: z.coerce.number().int().min(1).max(6000).default(50),
  /**
   * The global API budget (docs/quotas.md): calls per minute every instance together may make, per quota
   * family. Defaults are Google's default quotas less a fifth of headroom (OS Config 60 reads and 60 writes
   * a minute per user, Service Usage 240, Resource Manager 600). 0 turns a family's budget off.
   */
  API_BUDGET_OSCONFIG_READS: z.coerce.number().int().min(0).max(1_000_000).default(48),
  API_BUDGET_OSCONFIG_WRITES: z.coerce.number().int().min(0).max(1_000_000).default(48),
  API_BUDGET_SERVICE_USAGE: z.coerce.number().int().min(0).max(1_000_000).default(192),
  API_BUDGET_RESOURCE_MANAGER: z.coerce.number().int().min(0).max(1_000_000).default(480),
  /** The budget's window in seconds: Google counts per minute; tests and benches shorten it to scale time. */
  API_BUDGET_WINDOW_SECONDS: z.coerce.number().min(0.1).max(60).default(60),
  /** A call waits at most this long for the budget; beyond, it fails as transient and its event is redelivered. */
  API_BUDGET_MAX_WAIT_SECONDS: z.coerce.number().min(0).max(3_600).default(300),
  /** How long a project's API enablement (Service Usage) is trusted before it is read again. */
  SERVICE_USAGE_CACHE_HOURS: z.coerce.number().min(0).max(168).default(24),
  /** Minutes between audit ticks (Terraform's audit_schedule): the rolling audit plans each tick's reads with it. */
  AUDIT_TICK_MINUTES: z.coerce.number().int().min(1).max(1_440).default(15),
  /** Projects one audit run covers at most (status/fleet, written whole at its close, holds one entry each). */
  AUDIT_MAX_PROJECTS_PER_RUN: z.coerce.number().int().min(1).max(2_000).default(500),
  /** Log level (shared/log.ts reads it as pino starts; it is validated here with the rest). */
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses settings from an environment; throws one error, on one line, naming every bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

let cached: Config | undefined;

/**
 * The process's configuration, read once. functions/index.ts calls it as the module loads, so a bad
 * setting stops the instance from starting instead of failing (and being acknowledged) per event.
 */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}

/** Forget the cached configuration (tests and the local stack change the environment). */
export function resetConfig(): void {
  cached = undefined;
}

/** A setting a particular command cannot do without. */
export function required<K extends keyof Config>(key: K): NonNullable<Config[K]> {
  const value = config()[key];
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0))
    throw new ConfigError(`${key} must be set`);
  return value as NonNullable<Config[K]>;
}

/** The subscription logHeartbeatDrain drains, as a full resource name (ConfigError when unset). */
export function logHeartbeatSubscription(): string {
  const name = required('LOG_HEARTBEAT_SUBSCRIPTION');
  return name.startsWith('projects/') ? name : `projects/${required('GOOGLE_CLOUD_PROJECT')}/subscriptions/${name}`;
}

/** The settings the pure scope and policy decisions take. */
export function policySettings(): ScopeSettings & PolicySettings {
  const c = config();
  return {
    optOutLabel: c.OPT_OUT_LABEL,
    disruptionPercent: c.ROLLOUT_DISRUPTION_PERCENT,
    minWaitSeconds: c.ROLLOUT_MIN_WAIT_SECONDS,
    ...(c.HEARTBEAT_TOKEN_AUDIENCE || c.LOG_TOPIC_PROJECT || c.GOOGLE_CLOUD_PROJECT
      ? { tokenAudience: heartbeatTokenAudience() }
      : {}),
  };
}

/** The settings the audit's pure decision takes. */
export function reconcileSettings(): ReconcileSettings {
  const c = config();
  return {
    ...policySettings(),
    gracePeriodMs: c.GRACE_PERIOD_MINUTES * 60_000,
    silenceThresholdMs: silenceThresholdMs({
      minutes: c.SILENCE_THRESHOLD_MINUTES,
      heartbeatIntervalSeconds: c.HEARTBEAT_INTERVAL_SECONDS,
      splayPercent: c.HEARTBEAT_SPLAY_PERCENT,
    }),
    remediateOsConfig: c.REMEDIATE_OSCONFIG_METADATA,
  };
}

/** host.performance (source osquery) thresholds (shared/domain/telemetry/osqueryd.ts). */
/** How long a difference between what osqueryd runs and what was applied lasts before host.drifted. */
export const driftGraceMs = (): number => config().DRIFT_GRACE_MINUTES * 60_000;

export function performanceThresholds(): PerformanceThresholds {
  const c = config();
  return {
    cpuPercent: c.OSQUERYD_CPU_PERCENT,
    consecutive: c.OSQUERYD_CPU_CONSECUTIVE,
    rssBytes: c.OSQUERYD_MEMORY_MB * 1024 * 1024,
  };
}

/** How fresh the rollout controller's evidence must be (shared/domain/rollout.ts EvidenceSettings). */
export function evidenceSettings(): EvidenceSettings {
  return { maxAgeMs: config().ROLLOUT_EVIDENCE_MAX_AGE_MINUTES * 60_000 };
}

/** The cost model's prices (shared/domain/cost-model.ts): the defaults with COST_PRICES over them. */
export function prices(): Prices {
  return { ...DEFAULT_PRICES, ...config().COST_PRICES };
}

/** The log budget (logs.overBudget), bytes per host and day; null when unset. */
export function logBudget(): LogBudget {
  const c = config();
  return {
    bytesPerHostDay: c.LOG_BYTES_PER_HOST_DAY ?? null,
    queryBytesPerHostDay: c.LOG_BYTES_PER_QUERY_HOST_DAY ?? null,
  };
}

/** query.expensive's threshold. */
export function queryAlertThresholds(): QueryAlertThresholds {
  return { expensiveP95Ms: config().QUERY_EXPENSIVE_P95_MS };
}

/** Where the rendered configuration sends osquery's logs: the log topic and its project. */
export function renderSettings() {
  const c = config();
  return { logTopic: c.LOG_TOPIC, logTopicProject: c.LOG_TOPIC_PROJECT ?? required('GOOGLE_CLOUD_PROJECT') };
}

/** The identity token's audience: the setting, or the log topic's full name (within MAX_TOKEN_AUDIENCE). */
export function heartbeatTokenAudience(): string {
  const c = config();
  if (c.HEARTBEAT_TOKEN_AUDIENCE) return c.HEARTBEAT_TOKEN_AUDIENCE;
  const { logTopic, logTopicProject } = renderSettings();
  const audience = `projects/${logTopicProject}/topics/${logTopic}`;
  if (audience.length > MAX_TOKEN_AUDIENCE)
    throw new ConfigError(
      `HEARTBEAT_TOKEN_AUDIENCE must be set: the log topic's name (${audience.length} characters) is longer than ` +
        `${MAX_TOKEN_AUDIENCE}, too long for the OS policy's script`,
    );
  return audience;
}
