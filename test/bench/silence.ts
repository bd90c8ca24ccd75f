// `silence.storm` and `backlog.replay` (issue 23): 5,000 hosts in one project, reporting. A third of an hour
// later 30% of them have sent nothing (an outage of their zone, say): one audit makes them silent, and the
// storm rule turns 1,500 host alerts into one fleet.silent (the naive baseline, the code before storms, sends
// one host.silent per host: silentHosts). Then the heartbeat subscription falls behind (a pipeline.backlog
// incident through monitoringAlert's use case) for an hour, during which no line arrives and an audit decides
// no silence; then the hour of lines (12 heartbeats per host) is delivered at once through logHeartbeat, 64
// in flight as one busy instance sees them: the hosts' records catch up in at most one write per host per
// write window (the naive baseline: one write per line), and no silent episode is opened or resolved.
import { heartbeatEvent } from './heartbeat-event.js';
import type { Firestore } from '@google-cloud/firestore';

export const SILENCE_RECORDS = ['silence.storm', 'backlog.replay'] as const;

export interface SilenceStormRecord {
  name: 'silence.storm';
  hosts: number;
  silentHosts: number;
  /** host.silent firing messages sent while the storm lasts (0), and the naive baseline's (one per host). */
  hostAlerts: number;
  naiveHostAlerts: number;
  fleetAlerts: number;
  /** The audit that made them silent. */
  wallMs: number;
}

export interface BacklogReplayRecord {
  name: 'backlog.replay';
  hosts: number;
  backlogLines: number;
  drainMs: number;
  hostWrites: number;
  /** hosts x write windows the drain spanned: the bound on hostWrites. */
  writeBound: number;
  /** The naive baseline: one write per line. */
  naiveHostWrites: number;
  /** host.silent episodes opened or resolved by the replay (should be none). */
  wrongEpisodes: number;
  /** Audits while the subscription was behind: hosts judged silent for missing lines (should be none). */
  silencedWhileBehind: number;
}

const P = 'bench-silence';
const ZONES = 5;
const MIN = 60_000;

type Control = <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;

/** Episodes of a kind: opened, firing (sent, or owed and not held back by a storm), resolved. */
async function sentAlerts(db: Firestore, kind: string): Promise<{ opened: number; fired: number; resolved: number }> {
  const docs = (await db.collection('alerts').where('kind', '==', kind).get()).docs;
  return {
    opened: docs.length,
    fired: docs.filter((d) => d.get('firing.sentAt') || (d.get('owed') && !d.get('held'))).length,
    resolved: docs.filter((d) => d.get('resolved')).length,
  };
}

/** lastLogAt of the given hosts set as logHeartbeat would have (the setup, not what is measured). */
async function linesAt(db: Firestore, ids: string[], at: Date): Promise<void> {
  for (let i = 0; i < ids.length; i += 450) {
    const batch = db.batch();
    for (const id of ids.slice(i, i + 450)) batch.update(db.collection('hosts').doc(id), { lastLogAt: at });
    await batch.commit();
  }
}

export async function measureSilence(options: {
  control: Control;
  hosts: number;
  log: (line: string) => void;
}): Promise<[SilenceStormRecord, BacklogReplayRecord]> {
  const { control, log } = options;
  const { publish } = await import('../../shared/usecases/publish.js');
  const { auditProject } = await import('../../shared/usecases/audit.js');
  const { handleIncident } = await import('../../shared/usecases/incidents.js');
  const { clients } = await import('../../shared/clients.js');
  const { config } = await import('../../shared/config.js');
  const { usageSince, usageSnapshot } = await import('../../shared/metrics.js');
  const { logHeartbeat, logHeartbeatEngine } = await import('../../functions/log-heartbeat.js');
  const { mapLimit } = await import('../../shared/rate.js');
  const db = clients.firestore();
  const alertTopic = (await clients.pubsub()).topic(config().ALERT_TOPIC);
  if (!(await alertTopic.exists())[0]) await alertTopic.create();

  await control('POST', '/projects', { id: P, metadata: { 'enable-osconfig': 'TRUE' } });
  const perZone = Math.floor(options.hosts / ZONES);
  for (let z = 0; z < ZONES; z++)
    await control('POST', '/vms:bulk', {
      project: P,
      zone: `silence-zone-${z}`,
      namePrefix: `q-${z}`,
      count: perZone,
      os: 'debian-12',
      as: 'none',
    });
  await publish({ projects: [P] });
  await control('POST', '/agents/run');
  // Simulated minutes three hours back, so the replayed hour ends about an hour before the real now.
  const base = Math.floor(Date.now() / MIN) * MIN - 180 * MIN;
  const at = (m: number) => new Date(base + m * MIN);
  await auditProject(P, { now: at(0) });
  const ids = (await db.collection('hosts').where('project', '==', P).select().get()).docs.map((d) => d.id).sort();
  await linesAt(db, ids, at(1));
  await auditProject(P, { now: at(2) });
  log(`${ids.length} hosts reporting`);

  // 30% stop at once.
  const quiet = ids.slice(0, Math.round(ids.length * 0.3));
  await linesAt(db, ids.slice(quiet.length), at(20));
  let t = performance.now();
  const storm = await auditProject(P, { now: at(25) });
  const stormMs = Math.round(performance.now() - t);
  const hostSilent = await sentAlerts(db, 'host.silent');
  const fleetSilent = await sentAlerts(db, 'fleet.silent');
  const stormRecord: SilenceStormRecord = {
    name: 'silence.storm',
    hosts: ids.length,
    silentHosts: storm.counts.silent ?? 0,
    hostAlerts: hostSilent.fired,
    naiveHostAlerts: storm.counts.silent ?? 0,
    fleetAlerts: fleetSilent.fired,
    wallMs: stormMs,
  };
  log(`storm: ${JSON.stringify(stormRecord)}`);

  // The heartbeat subscription falls behind; an hour passes without a line; an audit decides no silence.
  await handleIncident({
    version: '1.2',
    incident: {
      incident_id: 'bench-backlog',
      state: 'open',
      started_at: Math.floor(at(30).getTime() / 1000),
      resource: { type: 'pubsub_subscription', labels: { subscription_id: `${config().LOG_TOPIC}-push` } },
      condition_name: 'oldest unacked message older than 600 s',
    },
  });
  const behind = await auditProject(P, { now: at(95) });
  const silencedWhileBehind = (behind.counts.silent ?? 0) - (storm.counts.silent ?? 0);

  // The hour of lines, 12 heartbeats per host, delivered at once.
  const lines: Array<{ id: string; unixTime: number }> = [];
  for (let j = 0; j < 12; j++)
    for (const id of ids) lines.push({ id, unixTime: Math.floor(at(35 + j * 5).getTime() / 1000) });
  const event = (m: { id: string; unixTime: number }, k: number) => heartbeatEvent(`r${k}`, m.id, P, m.unixTime);
  const episodesBefore = await sentAlerts(db, 'host.silent');
  logHeartbeatEngine.renew();
  const before = usageSnapshot();
  t = performance.now();
  await mapLimit(lines, 64, (m, k) => logHeartbeat(event(m, k) as never));
  const drainMs = Math.round(performance.now() - t);
  const hostWrites = usageSince(before).firestoreWrites;
  const episodesAfter = await sentAlerts(db, 'host.silent');
  const windowMs = config().HEARTBEAT_WRITE_WINDOW_SECONDS * 1000;
  const replay: BacklogReplayRecord = {
    name: 'backlog.replay',
    hosts: ids.length,
    backlogLines: lines.length,
    drainMs,
    hostWrites,
    writeBound: ids.length * Math.max(1, Math.ceil(drainMs / windowMs)),
    naiveHostWrites: lines.length,
    wrongEpisodes: episodesAfter.opened - episodesBefore.opened + (episodesAfter.resolved - episodesBefore.resolved),
    silencedWhileBehind,
  };
  log(`replay: ${JSON.stringify(replay)}`);
  return [stormRecord, replay];
}
