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

/**
 * Cloud Monitoring incidents (host.performance episodes monitoringAlert opened) since `since` on hosts
 * that run `version`, dated by the incident's start. osqueryd's own host.performance (source osquery)
 * is the osqueryd gates' business, not this one's.
 */
export async function incidentsSince(
  version: string,
  since: Date,
  db: Firestore = clients.firestore(),
): Promise<Listed> {
  const page = await db
    .collection(ALERTS)
    .where('kind', '==', 'host.performance')
    .where('since', '>=', Timestamp.fromDate(since))
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  const episodes = page.docs
    .map((d) => d.data())
    .filter((d) => d.host?.instanceId && d.source !== 'osquery')
    .map((d) => ({ id: String(d.host.instanceId), since: date(d.since)! }));
  const hosts = await readHosts([...new Set(episodes.map((e) => e.id))], db);
  const sightings = episodes.flatMap((e) => {
    const h = hosts.get(e.id)?.host;
    return h && h.configVersion === version
      ? [{ instanceId: e.id, name: h.name, project: h.project, zone: h.zone, at: e.since }]
      : [];
  });
  return { sightings, capped: page.size >= SIGHTINGS_LIMIT };
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
