// The stored documents' definitions (shared/documents), pure: what the writers store reads back as the same
// domain value (timestamps as dates), a document that does not match is refused with its path and field,
// the fields logHeartbeat rebuilds are read as absent, and the defaults the readers always applied hold.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Timestamp } from '@google-cloud/firestore';
import type { z } from 'zod';
import {
  DocumentInvalid,
  readDocument,
  tryReadDocument,
  type DocumentDefinition,
} from '../../shared/documents/document.js';
import * as hosts from '../../shared/documents/hosts.js';
import * as alerts from '../../shared/documents/alerts.js';
import { auditRun, projectEntry } from '../../shared/documents/audits.js';
import * as rollouts from '../../shared/documents/rollouts.js';
import { queryStatsDocument } from '../../shared/documents/query-stats.js';
import * as status from '../../shared/documents/status.js';
import { STORED_DOCUMENTS } from '../../shared/documents/index.js';
import { RECORD_FIELDS } from '../../shared/adapters/hosts.js';
import { planObservation, type Host } from '../../shared/domain/host.js';
import type { OsquerydState, ScheduleBaseline } from '../../shared/domain/telemetry.js';
import { osqueryCostStatus } from '../../shared/domain/telemetry.js';
import { mergeFleetStatus, summarizeProject } from '../../shared/domain/status.js';
import { evaluateRollout, newRollout, type StagedRollout } from '../../shared/domain/rollout.js';
import { parsePlan, resolveStages } from '../../shared/domain/rollout-plan.js';
import { planText } from '../helpers/rollout-plan.js';

const t = suite('stored documents (pure)');
const T0 = new Date('2026-12-01T10:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

/** What Firestore gives back for what a writer stored: dates as timestamps, undefined fields left out. */
function stored(value: unknown): unknown {
  if (value instanceof Date) return Timestamp.fromDate(value);
  if (Array.isArray(value)) return value.map(stored);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, stored(v)]),
    );
  return value;
}

/** The problems a document is refused with. */
function problems(schema: z.ZodType, data: unknown, path = 'hosts/123'): string {
  const read = tryReadDocument(schema, path, data);
  if (read.ok) throw new Error('the document was not refused');
  assert.instance(read.invalid, DocumentInvalid);
  assert.is(read.invalid.path, path);
  return read.invalid.message;
}

const change = planObservation(
  null,
  { instanceId: '123', name: 'web-1', project: 'p', zone: 'us-central1-a' },
  { state: 'compliant', reason: null, osqueryVersion: '5.23.1', configVersion: 'v1' },
  T0,
  'fleetAudit run-1',
)!;
const host: Host = { ...change.host, syslog: { scheduledAt: at(1), seenAt: null } };
const osqueryd: OsquerydState = {
  cpuPercent: 12.5,
  rssBytes: 80e6,
  at: at(2),
  pid: 42,
  startTime: 1_764_000_000,
  userMs: 1200,
  systemMs: 300,
  cpuOver: 1,
  episode: { since: at(1), cause: 'cpu' },
};
const querySchedule: ScheduleBaseline = {
  at: at(3),
  worker: { pid: 42, startTime: 1_764_000_000 },
  queries: { pack_users: { executions: 3, outputBytes: 900, userMs: 12, systemMs: 4, wallMs: 20 } },
};

t('a host, its transition and its telemetry read back as what was written, timestamps as dates', () => {
  assert.equal(readDocument(hosts.host, 'hosts/123', stored(hosts.hostData(host))), host);
  assert.equal(
    readDocument(hosts.transition, 'hosts/123/transitions/x', stored(hosts.transitionData(change.transition!))),
    change.transition,
  );
  const doc = { ...host, osqueryd, querySchedule, openIncidents: [], padding: 'another tool wrote this' };
  const read = readDocument(hosts.hostDocument, 'hosts/123', stored(doc));
  assert.equal(read, { ...host, osqueryd, querySchedule, openIncidents: [] }, 'unknown fields left out');
  assert.instance(read.stateSince, Date);
});

t('a document that does not match is refused with its path and each field, never cast', () => {
  assert.is(
    problems(hosts.host, stored({ ...host, stateSince: 'yesterday' })),
    'hosts/123: stateSince: expected a timestamp',
  );
  const message = problems(hosts.host, stored({ ...host, state: 'happy', inScope: 'yes', name: undefined }));
  assert.match(message, /^hosts\/123: name: .*expected string/);
  assert.match(message, /; state: .*"exempt"\|"pending"/);
  assert.match(message, /; inScope: .*expected boolean/);
  assert.is(problems(hosts.host, undefined), 'hosts/123: Invalid input: expected object, received undefined');
  // Nested fields by their path, array elements by their index.
  const staged = rollout();
  const broken = stored({ ...staged, stages: [staged.stages[0], { ...staged.stages[1], startedAt: 7 }] });
  assert.is(
    problems(rollouts.stagedRollout, broken, 'rollouts/v2'),
    'rollouts/v2: stages[1].startedAt: expected a timestamp',
  );
  try {
    readDocument(hosts.host, 'hosts/9', {});
    assert.unreachable('thrown');
  } catch (error) {
    assert.instance(error, DocumentInvalid);
    assert.match(String(error), /^DocumentInvalid: hosts\/9: instanceId: /);
  }
});

t("logHeartbeat's own fields that do not match are read as absent; the host's own fields are not", () => {
  const doc = { ...host, osqueryd: { cpuPercent: 3, rssBytes: 1, at: at(1) }, querySchedule, syslog: 'on' };
  const read = readDocument(hosts.heartbeatHost, 'hosts/123', stored(doc));
  assert.is(read.osqueryd, null, 'a partial osqueryd: its baseline is rebuilt from the next heartbeat');
  assert.is(read.syslog, null);
  assert.equal(read.querySchedule, querySchedule, 'the fields that match are read');
  assert.is(read.state, 'compliant');
  const absent = readDocument(hosts.heartbeatHost, 'hosts/123', stored(hosts.hostData(change.host)));
  assert.equal([absent.osqueryd, absent.querySchedule, absent.syslog], [undefined, undefined, undefined]);
});

t("the audit's projection reads the record, its update time and a silence's evidence, and nothing else", () => {
  const selected = [...RECORD_FIELDS, 'updatedAt', 'osqueryd', 'running', 'querySchedule'].sort();
  assert.equal(Object.keys(hosts.auditedHost.shape).sort(), selected, 'what it selects');
  const { instanceId: _id, inScope: _scope, ...record } = host;
  const read = readDocument(
    hosts.auditedHost,
    'hosts/123',
    stored({ ...host, osqueryd: { ...osqueryd, restarts: 3 } }),
  );
  assert.equal(read, { ...record, osqueryd: { restarts: 3 } });
  const { osqueryd: unreadable, ...rest } = readDocument(
    hosts.auditedHost,
    'hosts/123',
    stored({ ...host, osqueryd: 'x' }),
  );
  assert.equal([rest, unreadable], [record, undefined], 'an unreadable osqueryd costs the audit nothing');
  const evidence = readDocument(
    hosts.auditedHost,
    'hosts/123',
    stored({ ...host, running: { watcher: false }, querySchedule: { at: at(5), denylisted: ['heartbeat'] } }),
  );
  assert.equal(
    [evidence.running, evidence.querySchedule],
    [{ watcher: false }, { at: at(5), denylisted: ['heartbeat'] }],
  );
  const tooMany = Array.from({ length: 21 }, (_, i) => `q${i}`);
  const bad = readDocument(
    hosts.auditedHost,
    'hosts/123',
    stored({ ...host, running: { watcher: 'x' }, querySchedule: { at: at(5), denylisted: tooMany } }),
  );
  assert.equal([bad.running, bad.querySchedule], [undefined, undefined], 'evidence that does not match: none');
  assert.match(problems(hosts.auditedHost, stored({ ...record, lastLogAt: 'not a time' })), /lastLogAt: expected a/);
});

t('an episode record, an unrecorded resolution, and what the page and the gates read of them', () => {
  const record = {
    dedupKey: 'host.silent:123:1',
    kind: 'host.silent',
    severity: 'critical' as const,
    host: { instanceId: '123', name: 'web-1', project: 'p', zone: 'us-central1-a' },
    reason: 'no-logs',
    since: at(0),
    firing: { at: at(0), sentAt: at(1) },
    resolved: { at: at(5) },
    owed: true,
  };
  assert.equal(readDocument(alerts.episodeDocument, 'alerts/k', stored(alerts.episodeData(record))), {
    ...record,
    resolved: { at: at(5), sentAt: null },
  });
  assert.equal(readDocument(alerts.unrecordedEpisode, 'alerts/k', stored({ resolved: { at: at(5) }, owed: true })), {
    resolved: { at: at(5), sentAt: null },
    owed: true,
  });
  assert.match(problems(alerts.episodeDocument, stored({ ...record, severity: 'bad' }), 'alerts/k'), /severity/);
  assert.equal(readDocument(alerts.incidentRow, 'alerts/k', stored({ host: null, since: at(0), resolved: null })), {
    host: null,
    since: at(0),
    resolved: null,
  });
});

const PLAN = parsePlan(
  planText([
    { name: 'canary', select: { percent: 10 }, bakeMinutes: 30 },
    { name: 'all', select: { percent: 100 }, bakeMinutes: 30 },
  ]),
  'plan',
);

function rollout(): StagedRollout {
  const fleet = ['b', 'c', 'd'].map((z) => ({
    project: 'p',
    zone: `us-east1-${z}`,
    hosts: 10,
    labels: new Set<string>(),
  }));
  const { stages, skipped } = resolveStages(PLAN, 'v2', fleet);
  const r = newRollout({
    version: 'v2',
    baseline: 'v1',
    stages,
    skipped,
    observe: PLAN.observe,
    actor: { by: 'alice', reason: 'new queries' },
    now: T0,
  });
  const zone = r.stages[0]!.zones[0]!;
  const evaluation = evaluateRollout(
    r,
    {
      snapshots: { p: { at: at(31).toISOString(), zones: {}, zoneVersions: {} } },
      noncompliant: [{ instanceId: '1', name: 'a', project: 'p', zone: zone.split('/')[1]!, at: at(10) }],
      silent: [],
      incidents: [],
      cpu: [],
      memory: [],
      denylisted: [],
      capped: [],
    },
    at(31),
  );
  return { ...r, evaluation, stall: { since: at(40), dedupKey: 'rollout.stalled:v2:1', projects: ['p'] } };
}

t('a staged rollout and its record read back as written; older records get the defaults they always got', () => {
  const r = rollout();
  const fields = stored(rollouts.stagedData(r)) as Record<string, unknown>;
  assert.equal(readDocument(rollouts.stagedRollout, 'rollouts/v2', { ...fields, configVersion: 'v2' }), r);
  const { stall: _s, skipped: _k, history: _h, resumedAt: _r, ...older } = fields;
  const read = readDocument(rollouts.stagedRollout, 'rollouts/v2', { ...older, configVersion: 'v2' });
  assert.equal([read.stall, read.skipped, read.history, read.resumedAt], [null, [], [], null]);
  const published = {
    configVersion: 'v2',
    publishedAt: T0,
    bucket: null,
    files: [{ source: 'osquery.conf', vmPath: '/etc/osquery/osquery.conf', sha256: 'ab', size: 2 }],
    policyConfig: { configVersion: 'v2', files: [] },
    zones: {
      'p/us-east1-b': {
        project: 'p',
        zone: 'us-east1-b',
        assignment: 'osquery',
        revisionId: 'r1',
        rolloutState: 'DONE',
      },
    },
  };
  const record = readDocument(rollouts.publishedRecord, 'rollouts/v2', {
    ...(stored(published) as object),
    ...fields,
    zones: { 'p/us-east1-b': { ...published.zones['p/us-east1-b'], updatedAt: Timestamp.now() } },
  });
  assert.equal(record, published, "the staged fields are the staged rollout's, a zone's updatedAt is not read back");
  assert.equal(readDocument(rollouts.currentConfig, 'config/current', {}), {
    configVersion: null,
    rollout: null,
    since: null,
  });
});

t('an audit run, a queryStats document and the status snapshots read back as written', () => {
  const run = {
    startedAt: T0,
    finishedAt: null,
    status: 'running',
    projectCount: 1,
    skipped: { q: 'api-off' },
    counts: {},
    coverage: null,
    apiCalls: 0,
    hostWrites: 0,
    shardsPublished: false,
  };
  assert.equal(readDocument(auditRun, 'audits/run-1', stored(run)), run);
  const result = { status: 'succeeded', instances: 2, counts: { pending: 2 }, apiCalls: 4, hostWrites: 2 };
  assert.equal(readDocument(projectEntry, 'audits/run-1/projects/example.com:acme', stored(result)), result);
  // A run written before the results moved to audits/{runId}/projects reads with them, as it was.
  const { projectCount: _count, skipped: _skipped, ...before } = run;
  const legacy = { ...before, projects: { p: result } };
  assert.equal(readDocument(auditRun, 'audits/run-0', stored(legacy)), legacy);
  const stats = {
    configVersion: 'v1',
    query: 'pack_users',
    interval: null,
    windows: { h2026120110: { snapshots: 2, user: { b3: 2 } } },
    alerts: { 'query.expensive': at(0) },
  };
  const { interval: _i, ...withoutInterval } = stats;
  assert.equal(readDocument(queryStatsDocument, 'queryStats/v1~pack_users', stored(withoutInterval)), stats);
  const project = summarizeProject('p', 'run-1', T0, [host, { ...host, instanceId: '124', state: 'silent' }]);
  assert.equal(readDocument(status.projectStatus, 'status/fleet/projects/p', stored(project)), project);
  const fleet = mergeFleetStatus(
    {
      runId: 'run-1',
      startedAt: T0.toISOString(),
      finishedAt: at(5).toISOString(),
      status: 'succeeded',
      coverage: null,
      counts: project.counts,
      projects: { p: { status: 'succeeded' } },
    },
    [project],
    [],
    at(6),
  );
  assert.equal(readDocument(status.fleetStatus, 'status/fleet', stored(fleet)), fleet);
  const cost = osqueryCostStatus(
    'run-1',
    T0,
    {
      cpu: [
        {
          ...{ instanceId: host.instanceId, name: host.name, project: host.project, zone: host.zone },
          configVersion: 'v1',
          cpuPercent: 12,
          rssBytes: 8e7,
          at: T0,
          alerting: false,
        },
      ],
      memory: [],
    },
    [],
  );
  assert.equal(readDocument(status.osqueryStatus, 'status/osquery', stored(cost)), cost);
});

t('every stored document is defined, with a description', () => {
  const paths = STORED_DOCUMENTS.map((d: DocumentDefinition) => d.path);
  assert.equal(paths, [
    'hosts/{instanceId}',
    'hosts/{instanceId}/transitions/{at}-{to}',
    'alerts/{dedupKey}',
    'audits/{runId}',
    'audits/{runId}/projects/{project}',
    'audits/{runId}/plan/{bucket}',
    'rollouts/{configVersion}',
    'config/current',
    'queryStats/{configVersion}~{query}',
    'logBudgets/{configVersion}',
    'status/fleet',
    'status/fleet/projects/{project}',
    'status/osquery',
    'pipeline/{subscriptionId}',
    'apiBudget/{family}',
    'serviceStates/{project}',
  ]);
  for (const d of STORED_DOCUMENTS) assert.ok(d.description.length > 20, d.path);
});

t.run();
