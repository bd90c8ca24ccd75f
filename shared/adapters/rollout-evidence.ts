// Firestore: what a rollout's gates read, each a bounded query (hosts in trouble on the target version,
// performance incidents since the rollout started, the target's query statistics), never the fleet.
// The osqueryd field (hosts/{id}.osqueryd {cpuPercent, rssBytes, at}) and queryStats/{version}~{query}
// are written by logHeartbeat (contracts.md); these functions only read them.
import { Timestamp, type DocumentData, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { Sighting } from '../domain/rollout.js';
import { HOSTS, readHosts } from './hosts.js';
import { ALERTS } from './alerts.js';

/** At most this many hosts per list: beyond it a gate's count is a lower bound (and it holds or halts anyway). */
export const SIGHTINGS_LIMIT = 1000;
const QUERY_STATS = 'queryStats';

const date = (v: unknown): Date | null =>
  v instanceof Timestamp ? v.toDate() : v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;

function sighting(id: string, d: DocumentData, at: unknown, value?: unknown): Sighting | null {
  const when = date(at);
  if (!when) return null;
  return {
    instanceId: id,
    name: String(d.name ?? id),
    project: String(d.project ?? ''),
    zone: String(d.zone ?? ''),
    at: when,
    ...(typeof value === 'number' ? { value } : {}),
  };
}

export interface Listed {
  sightings: Sighting[];
  /** The listing hit SIGHTINGS_LIMIT. */
  capped: boolean;
}

const listed = (
  docs: Array<{ id: string; data: () => DocumentData }>,
  pick: (id: string, d: DocumentData) => Sighting | null,
) => ({
  sightings: docs.map((doc) => pick(doc.id, doc.data())).filter((s): s is Sighting => s !== null),
  capped: docs.length >= SIGHTINGS_LIMIT,
});

/** Hosts on `version` in `state` (noncompliant, silent), dated by when they entered it. */
export async function hostsInState(
  version: string,
  state: 'noncompliant' | 'silent',
  db: Firestore = clients.firestore(),
): Promise<Listed> {
  const page = await db
    .collection(HOSTS)
    .where('configVersion', '==', version)
    .where('state', '==', state)
    .select('name', 'project', 'zone', 'stateSince')
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  return listed(page.docs, (id, d) => sighting(id, d, d.stateSince));
}

/**
 * Hosts on `version` whose latest osqueryd sample is above `threshold` in one measure (CPU percent or
 * resident bytes), dated by the sample.
 */
export async function osquerydAbove(
  version: string,
  measure: 'cpuPercent' | 'rssBytes',
  threshold: number,
  db: Firestore = clients.firestore(),
): Promise<Listed> {
  const page = await db
    .collection(HOSTS)
    .where('configVersion', '==', version)
    .where(`osqueryd.${measure}`, '>', threshold)
    .select('name', 'project', 'zone', 'osqueryd')
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  return listed(page.docs, (id, d) => sighting(id, d, d.osqueryd?.at, d.osqueryd?.[measure]));
}

/** Firestore's limit on the values of an `in` filter. */
const IN_LIMIT = 30;

/**
 * Cloud Monitoring incidents (host.performance episodes monitoringAlert opened, source `monitoring`) on
 * hosts of the zones the gate judges (`project/zone` keys) that run `version` now: those still open, and
 * those begun since `since` (the earliest zone's first exposure), dated by their start. Only what the gate
 * judges is read: osqueryd's own host.performance (source osquery) is the osqueryd gates' business, and
 * incidents of zones outside the stages reached are not this rollout's, so a busy fleet never fills the
 * listing with episodes the gate would ignore.
 */
export async function incidentsInZones(
  version: string,
  zoneKeys: string[],
  since: Date,
  db: Firestore = clients.firestore(),
): Promise<Listed> {
  const wanted = new Set(zoneKeys);
  const zones = [...new Set(zoneKeys.map((k) => k.slice(k.lastIndexOf('/') + 1)))].sort();
  const chunks = Array.from({ length: Math.ceil(zones.length / IN_LIMIT) }, (_, i) =>
    zones.slice(i * IN_LIMIT, (i + 1) * IN_LIMIT),
  );
  // Whole chains, so the Terraform contract test finds each query's composite index.
  const pages = await Promise.all(
    chunks.flatMap((chunk) => [
      db
        .collection(ALERTS)
        .where('kind', '==', 'host.performance')
        .where('source', '==', 'monitoring')
        .where('host.zone', 'in', chunk)
        .where('resolved', '==', null)
        .select('host', 'since', 'resolved')
        .limit(SIGHTINGS_LIMIT)
        .get(),
      db
        .collection(ALERTS)
        .where('kind', '==', 'host.performance')
        .where('source', '==', 'monitoring')
        .where('host.zone', 'in', chunk)
        .where('since', '>=', Timestamp.fromDate(since))
        .select('host', 'since', 'resolved')
        .limit(SIGHTINGS_LIMIT)
        .get(),
    ]),
  );
  countFirestore(
    'reads',
    pages.reduce((n, p) => n + Math.max(1, p.size), 0),
  );
  const episodes = new Map<string, { instanceId: string; since: Date; open: boolean }>();
  for (const d of pages.flatMap((p) => p.docs)) {
    const data = d.data();
    const host = data.host as { instanceId?: string; project?: string; zone?: string } | null;
    const at = date(data.since);
    if (host?.instanceId && at && wanted.has(`${host.project}/${host.zone}`))
      episodes.set(d.id, { instanceId: host.instanceId, since: at, open: !data.resolved });
  }
  const hosts = await readHosts([...new Set([...episodes.values()].map((e) => e.instanceId))], db);
  const sightings = [...episodes.values()].flatMap((e) => {
    const h = hosts.get(e.instanceId)?.host;
    return h && h.configVersion === version
      ? [{ instanceId: e.instanceId, name: h.name, project: h.project, zone: h.zone, at: e.since, open: e.open }]
      : [];
  });
  return { sightings, capped: pages.some((p) => p.size >= SIGHTINGS_LIMIT) };
}

/**
 * Per query of `version`: host snapshots that had it denylisted, per hour window from `windows` (the
 * window ids, `h2026112712`). Only those counters are read, not the histograms beside them.
 */
export async function denylistedByWindow(
  version: string,
  windows: string[],
  db: Firestore = clients.firestore(),
): Promise<Array<{ query: string; windows: Record<string, number> }>> {
  if (windows.length === 0) return [];
  const page = await db
    .collection(QUERY_STATS)
    .where('configVersion', '==', version)
    .select('query', ...windows.map((w) => `windows.${w}.denylisted`))
    .get();
  countFirestore('reads', Math.max(1, page.size));
  return page.docs.map((d) => {
    const data = d.data();
    const counts: Record<string, number> = {};
    for (const w of windows) {
      const n = data.windows?.[w]?.denylisted;
      if (typeof n === 'number' && n > 0) counts[w] = n;
    }
    return { query: String(data.query ?? d.id), windows: counts };
  });
}
