// heartbeat.telemetry: one hour of a fleet's realistic osquery lines (the simulator's osqueryd: every
// scheduled query of the bundle, the 5-minute heartbeat with the worker's counters, the hourly
// osquery_schedule snapshot), through the log subscription's filter into logHeartbeat (coalesced host
// writes, buffered queryStats), against the same lines unfiltered and unaggregated (naive: every line an
// invocation and a host write, every snapshot row a queryStats write), in the same run. The next hour of
// the same fleet goes the pull delivery's way: its filtered lines published to a pull subscription of the
// Pub/Sub emulator, drained by logHeartbeatDrain's use case (a drain tick a minute).
import { FieldValue } from '@google-cloud/firestore';
import { compileFilter } from '../../infra/local/pubsub-filter.js';
import {
  newOsqueryd,
  resolveCosts,
  runRound,
  ROUND_SECONDS,
  scheduleFromFiles,
  startWorker,
} from '../../infra/local/simulator/osqueryd.js';
import { clients } from '../../shared/clients.js';
import { parseLogLines } from '../../shared/domain/heartbeat.js';
import { queryStatsId, windowOf } from '../../shared/domain/telemetry/query-stats.js';
import { usageSince, usageSnapshot } from '../../shared/metrics.js';
import { loadBundle } from '../../shared/osquery/bundle.js';
import { LOG_HEARTBEAT_FILTER } from '../../shared/osquery/log-routing.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { mapLimit } from '../../shared/rate.js';
import type { PubSubMessage } from '../../shared/adapters/pubsub.js';

export interface TelemetryRecord {
  name: 'heartbeat.telemetry';
  hosts: number;
  lines: number;
  heartbeats: number;
  snapshots: number;
  /** logHeartbeat invocations: the lines the subscription filter lets through (one line per message). */
  invocations: number;
  /**
   * Pull delivery, the fleet's next hour: logHeartbeatDrain invocations (Cloud Scheduler's ticks, one a
   * minute, whether or not lines wait), the filtered lines it pulled, its Firestore writes and the
   * drains' wall time (publishing excluded: that is the shippers' work).
   */
  pullInvocations: number;
  pullLines: number;
  pullFirestoreWrites: number;
  pullHostWrites: number;
  pullWallMs: number;
  naiveInvocations: number;
  firestoreWrites: number;
  hostWrites: number;
  queryStatsWrites: number;
  naiveFirestoreWrites: number;
  /** Heartbeat rounds (5 minutes each): the write windows the hour spans. */
  windows: number;
  /** Scheduled queries of the configuration version (queryStats documents). */
  queries: number;
  wallMs: number;
  /** Scaled from the naive run over the first naiveSampleHosts hosts' lines (naiveWallMsMeasured), by lines. */
  naiveWallMs: number;
  naiveWallMsMeasured: number;
  naiveSampleHosts: number;
  linesPerHostHour: number;
  apiCalls: number;
}

/** A seeded generator, so every run ships the same lines. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const IN_FLIGHT = 64;
const NAIVE_SAMPLE_HOSTS = 500;

export async function telemetryBenchmark(project: string, hostCount: number): Promise<TelemetryRecord> {
  const { HeartbeatEngine, recordLogMessage } = await import('../../shared/usecases/heartbeat.js');
  const { drainLogSubscription } = await import('../../shared/usecases/log-drain.js');
  const db = clients.firestore();
  const hosts = (
    await db
      .collection('hosts')
      .where('project', '==', project)
      .where('state', 'in', ['compliant', 'reporting'])
      .select('name', 'zone', 'configVersion')
      .limit(hostCount)
      .get()
  ).docs.map((d) => ({
    id: d.id,
    name: String(d.get('name')),
    zone: String(d.get('zone')),
    version: (d.get('configVersion') as string | null) ?? null,
  }));
  const rendered = renderBundle(await loadBundle(), { logTopic: 'osquery-logs', logTopicProject: project });
  const files = Object.fromEntries(
    rendered.files.filter((f) => f.vmPath.startsWith('/etc/osquery/')).map((f) => [f.vmPath, f.content]),
  );
  const schedule = scheduleFromFiles(files);

  // Two hours of 12 rounds of 5 minutes, ending a minute ago (the first through push delivery, the second
  // through pull); each worker started two hours before.
  const rounds = 3600 / ROUND_SECONDS;
  const t0 = Date.now() - 2 * 3600_000 - 60_000;
  const random = seeded(11);
  // A fleet in its steady state: every host has run the schedule before (its differential queries log changes only).
  const workers = hosts.map((h) =>
    startWorker(schedule, h.version, new Date(t0 - 2 * 3600_000), { storedResults: 'all' }),
  );
  const costs = hosts.map((h) => resolveCosts(new Map(), h.version, newOsqueryd()));
  const passes = compileFilter(LOG_HEARTBEAT_FILTER);
  const byRound: PubSubMessage[][] = [];
  let heartbeats = 0;
  let snapshots = 0;
  let k = 0;
  for (let r = 0; r < 2 * rounds; r++) {
    const now = new Date(t0 + (r + 1) * ROUND_SECONDS * 1000);
    const messages: PubSubMessage[] = [];
    hosts.forEach((h, i) => {
      for (const shipped of runRound(h, workers[i]!, costs[i]!, now, random)) {
        if (r >= rounds) {
          // The pull delivery's hour: counted there.
        } else if (shipped.attributes.osquery_name === 'heartbeat') heartbeats += 1;
        else if (shipped.attributes.osquery_name === 'pack_osquery-health_osquery_schedule') snapshots += 1;
        messages.push({
          data: Buffer.from(JSON.stringify(shipped.line)),
          attributes: { gce_instance_id: h.id, gce_project_id: project, gce_zone: h.zone, ...shipped.attributes },
          messageId: `t${k++}`,
          publishTime: now,
        });
      }
    });
    byRound.push(messages);
  }
  const pullRounds = byRound.splice(rounds);
  const lines = byRound.reduce((n, messages) => n + messages.length, 0);
  const deliveredAt = (r: number) => new Date(t0 + (r + 1) * ROUND_SECONDS * 1000 + 5_000);

  process.stdout.write(`heartbeat.telemetry: ${hosts.length} hosts, ${lines} lines; filtered and aggregated... `);
  // The filtered, aggregated path: what the subscription lets through, each round as it arrives.
  const pushed = new HeartbeatEngine();
  let invocations = 0;
  let hostWrites = 0;
  const before = usageSnapshot();
  let start = performance.now();
  for (const [r, messages] of byRound.entries()) {
    const through = messages.filter((m) => passes(m.attributes));
    invocations += through.length;
    const outcomes = await mapLimit(through, IN_FLIGHT, (m) => recordLogMessage(pushed, m, deliveredAt(r)));
    hostWrites += outcomes.filter((o) => o.outcome === 'recorded').length;
  }
  // The last window's statistics: the next message would write them; the hour is over, so now.
  await pushed.stats.flush();
  const wallMs = Math.round(performance.now() - start);
  const spent = usageSince(before);
  const queries = (await db.collection('queryStats').where('configVersion', '==', hosts[0]!.version).get()).size;

  // Naive: no filter (every line invokes), no aggregation (every line writes its host, every row of a
  // schedule snapshot writes its query's statistics). Its counts are exact for the whole fleet; its wall
  // time is measured on the first NAIVE_SAMPLE_HOSTS hosts' lines and scaled by lines (one write per line
  // to the emulator would take most of an hour at 5,000 hosts).
  const naiveWritesOf = (m: PubSubMessage, r: number) => {
    const parsed = parseLogLines(m.data.toString('utf8'), deliveredAt(r).getTime());
    let n = 1;
    for (const t of parsed.telemetry) if (t.kind === 'schedule') n += Object.keys(t.snapshot.queries).length;
    return n;
  };
  const naiveFirestoreWrites = byRound.reduce((sum, ms, r) => sum + ms.reduce((n, m) => n + naiveWritesOf(m, r), 0), 0);
  const sample = new Set(hosts.slice(0, NAIVE_SAMPLE_HOSTS).map((h) => h.id));
  const sampled = byRound.map((ms) => ms.filter((m) => sample.has(m.attributes.gce_instance_id!)));
  const sampledLines = sampled.reduce((n, ms) => n + ms.length, 0);
  process.stdout.write(`${wallMs} ms; naive on ${sample.size} hosts (${sampledLines} lines)... `);
  let naiveWrites = 0;
  start = performance.now();
  for (const [r, messages] of sampled.entries()) {
    await mapLimit(messages, IN_FLIGHT, async (m) => {
      const parsed = parseLogLines(m.data.toString('utf8'), deliveredAt(r).getTime());
      const id = m.attributes.gce_instance_id!;
      const update: Record<string, unknown> = { lastLogAt: new Date(parsed.newest!) };
      const writes: Array<Promise<unknown>> = [];
      for (const t of parsed.telemetry)
        if (t.kind === 'heartbeat') update.naiveOsqueryd = { ...t.sample };
        else
          for (const [query, c] of Object.entries(t.snapshot.queries))
            writes.push(
              db
                .collection('naive_queryStats')
                .doc(queryStatsId(`${m.attributes.gce_instance_id}`, query))
                .set(
                  {
                    [windowOf(t.snapshot.at)]: {
                      executions: FieldValue.increment(c.executions),
                      userMs: FieldValue.increment(c.userMs),
                      systemMs: FieldValue.increment(c.systemMs),
                    },
                  },
                  { merge: true },
                ),
            );
      writes.push(db.collection('hosts').doc(id).update(update));
      await Promise.all(writes);
      naiveWrites += writes.length;
    });
  }
  const naiveWallMsMeasured = Math.round(performance.now() - start);
  const naiveWallMs = Math.round((naiveWallMsMeasured * lines) / Math.max(1, sampledLines));
  process.stdout.write(
    `${naiveWallMsMeasured} ms (${naiveWrites} writes), ${naiveWallMs} ms scaled to ${lines} lines; ` +
      'pull delivery (the next hour)... ',
  );

  // Pull delivery: each round's filtered lines wait on the subscription (the emulator stores a filter
  // without applying it, so only the lines that pass are published); the round's first tick drains
  // them, its other four find the subscription empty. Each drain records at the round's delivery time.
  const pubsub = await clients.pubsub();
  const [topic] = await pubsub.createTopic(`bench-telemetry-${Date.now()}`);
  const [subscription] = await topic.createSubscription(`${topic.name.split('/').pop()}-pull`, {
    filter: LOG_HEARTBEAT_FILTER,
    ackDeadlineSeconds: 120,
  });
  const pulled = new HeartbeatEngine();
  const ticksPerRound = ROUND_SECONDS / 60;
  let pullLines = 0;
  let pullHostWrites = 0;
  let pullWallMs = 0;
  const beforePull = usageSnapshot();
  for (const [r, messages] of pullRounds.entries()) {
    const through = messages.filter((m) => passes(m.attributes));
    pullLines += through.length;
    await mapLimit(through, IN_FLIGHT, (m) => topic.publishMessage({ data: m.data, attributes: m.attributes }));
    const at = new Date(deliveredAt(rounds + r).getTime() + 55_000); // the tick after the round's lines
    start = performance.now();
    const drained = await drainLogSubscription(pulled, {
      subscription: subscription.name,
      budgetMs: 45_000,
      pullWaitMs: 500,
      recordedAt: () => at,
    });
    pullWallMs += performance.now() - start;
    pullHostWrites += drained.outcomes.recorded ?? 0;
    if (drained.pulled !== through.length || drained.acked !== through.length)
      throw new Error(
        `heartbeat.telemetry: a drain pulled ${drained.pulled} and acked ${drained.acked} of ${through.length}`,
      );
  }
  // The last window's statistics, as for push delivery above: the hour is over, so now.
  await pulled.stats.flush();
  const pullSpent = usageSince(beforePull);
  await subscription.delete();
  await topic.delete();
  console.log(`${Math.round(pullWallMs)} ms`);

  return {
    name: 'heartbeat.telemetry',
    hosts: hosts.length,
    lines,
    heartbeats,
    snapshots,
    invocations,
    pullInvocations: pullRounds.length * ticksPerRound,
    pullLines,
    pullFirestoreWrites: pullSpent.firestoreWrites,
    pullHostWrites,
    pullWallMs: Math.round(pullWallMs),
    naiveInvocations: lines,
    firestoreWrites: spent.firestoreWrites,
    hostWrites,
    queryStatsWrites: spent.firestoreWrites - hostWrites,
    naiveFirestoreWrites,
    windows: rounds,
    queries,
    wallMs,
    naiveWallMs,
    naiveWallMsMeasured,
    naiveSampleHosts: sample.size,
    linesPerHostHour: Math.round((lines / hosts.length) * 10) / 10,
    apiCalls: 0,
  };
}
