// Firestore: what a rollout's gates read, each a bounded query (hosts in trouble on the target version,
// performance incidents since the rollout started, the target's query statistics), never the fleet.
// The osqueryd field (hosts/{id}.osqueryd {cpuPercent, rssBytes, at}) and queryStats/{version}~{query}
// are written by logHeartbeat (docs/contracts.md); these functions only read them, through the projections
// shared/documents defines. A document that does not match is returned apart (`invalid`): the controller
// counts the listing as incomplete.
import { Timestamp, type Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { z } from 'zod';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { ShippedTotals, Sighting } from '../domain/rollout.js';
import { tryReadDocument, type DocumentInvalid } from '../documents/document.js';
import { auditedHost, hostCostRow, runningState } from '../documents/hosts.js';
import { incidentRow } from '../documents/alerts.js';
import { denylistedRow, shippedRow } from '../documents/query-stats.js';
import { HOSTS, readHosts } from './hosts.js';
import { ALERTS } from './alerts.js';

/** At most this many hosts per list: beyond it a gate's count is a lower bound (and it holds or halts anyway). */
export const SIGHTINGS_LIMIT = 1000;
const QUERY_STATS = 'queryStats';

export interface Listed {
  sightings: Sighting[];
  /** The listing hit SIGHTINGS_LIMIT. */
  capped: boolean;
  /** Documents of the listing that do not match their definition (left out of `sightings`). */
  invalid: DocumentInvalid[];
}

/** Each document read with `schema` and made a sighting; those that do not match are set apart. */
function listed<S extends z.ZodType>(
  docs: QueryDocumentSnapshot[],
  schema: S,
  pick: (id: string, d: z.output<S>) => Sighting,
): Listed {
  const result: Listed = { sightings: [], capped: docs.length >= SIGHTINGS_LIMIT, invalid: [] };
  for (const doc of docs) {
    const read = tryReadDocument(schema, doc.ref.path, doc.data());
    if (read.ok) result.sightings.push(pick(doc.id, read.value));
    else result.invalid.push(read.invalid);
  }
  return result;
}

// What each listing reads: its projection is the schema's fields, so the two never differ.
const stateRow = auditedHost.pick({ name: true, project: true, zone: true, stateSince: true });
const osquerydRow = hostCostRow.omit({ configVersion: true });
const fieldsOf = (schema: z.ZodObject) => Object.keys(schema.shape);

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
    .select(...fieldsOf(stateRow))
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  return listed(page.docs, stateRow, (instanceId, d) => ({
    instanceId,
    name: d.name,
    project: d.project,
    zone: d.zone,
    at: d.stateSince,
  }));
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
    .select(...fieldsOf(osquerydRow))
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  return listed(page.docs, osquerydRow, (instanceId, d) => {
    const value = d.osqueryd[measure];
    return {
      instanceId,
      name: d.name,
      project: d.project,
      zone: d.zone,
      at: d.osqueryd.at,
      ...(typeof value === 'number' ? { value } : {}),
    };
  });
}

const runningRow = auditedHost
  .pick({ name: true, project: true, zone: true, configVersion: true })
  .extend({ running: runningState });

/**
 * Hosts OS Config calls on `version` whose own lines say osqueryd runs something else (docs/osquery-upgrade.md):
 * those with a drift recorded (a single-field filter: drift is rare, so the listing stays small), kept when
 * their applied version is `version` and their running one is not; dated by the line that proved it.
 */
export async function notRunning(version: string, db: Firestore = clients.firestore()): Promise<Listed> {
  const page = await db
    .collection(HOSTS)
    .where('running.drift', '>', '')
    .select(...fieldsOf(runningRow))
    .limit(SIGHTINGS_LIMIT)
    .get();
  countFirestore('reads', Math.max(1, page.size));
  const all = listed(page.docs, runningRow, (instanceId, d) => ({
    instanceId,
    name: d.name,
    project: d.project,
    zone: d.zone,
    at: d.running.at,
    open: d.configVersion === version && d.running.configVersion !== version,
  }));
  return { ...all, sightings: all.sightings.filter((s) => s.open).map(({ open: _, ...s }) => s) };
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
        .select(...fieldsOf(incidentRow))
        .limit(SIGHTINGS_LIMIT)
        .get(),
      db
        .collection(ALERTS)
        .where('kind', '==', 'host.performance')
        .where('source', '==', 'monitoring')
        .where('host.zone', 'in', chunk)
        .where('since', '>=', Timestamp.fromDate(since))
        .select(...fieldsOf(incidentRow))
        .limit(SIGHTINGS_LIMIT)
        .get(),
    ]),
  );
  countFirestore(
    'reads',
    pages.reduce((n, p) => n + Math.max(1, p.size), 0),
  );
  const episodes = new Map<string, { instanceId: string; since: Date; open: boolean }>();
  const invalid: DocumentInvalid[] = [];
  for (const d of pages.flatMap((p) => p.docs)) {
    const read = tryReadDocument(incidentRow, d.ref.path, d.data());
    if (!read.ok) {
      invalid.push(read.invalid);
      continue;
    }
    const { host, since, resolved } = read.value;
    if (host && wanted.has(`${host.project}/${host.zone}`))
      episodes.set(d.id, { instanceId: host.instanceId, since, open: !resolved });
  }
  const read = await readHosts([...new Set([...episodes.values()].map((e) => e.instanceId))], db);
  invalid.push(...read.invalid.values());
  const sightings = [...episodes.values()].flatMap((e) => {
    const h = read.hosts.get(e.instanceId)?.host;
    return h && h.configVersion === version
      ? [{ instanceId: e.instanceId, name: h.name, project: h.project, zone: h.zone, at: e.since, open: e.open }]
      : [];
  });
  return { sightings, capped: pages.some((p) => p.size >= SIGHTINGS_LIMIT), invalid };
}

/**
 * Per query of `version`: host snapshots that had it denylisted, per hour window from `windows` (the
 * window ids, `h2026112712`). Only those counters are read, not the histograms beside them. Documents
 * that do not match their definition are returned apart.
 */
export async function denylistedByWindow(
  version: string,
  windows: string[],
  db: Firestore = clients.firestore(),
): Promise<{ queries: Array<{ query: string; windows: Record<string, number> }>; invalid: DocumentInvalid[] }> {
  if (windows.length === 0) return { queries: [], invalid: [] };
  const page = await db
    .collection(QUERY_STATS)
    .where('configVersion', '==', version)
    .select('query', ...windows.map((w) => `windows.${w}.denylisted`))
    .get();
  countFirestore('reads', Math.max(1, page.size));
  const result: Awaited<ReturnType<typeof denylistedByWindow>> = { queries: [], invalid: [] };
  for (const d of page.docs) {
    const read = tryReadDocument(denylistedRow, d.ref.path, d.data());
    if (!read.ok) {
      result.invalid.push(read.invalid);
      continue;
    }
    const counts: Record<string, number> = {};
    for (const w of windows) {
      const n = read.value.windows?.[w]?.denylisted;
      if (n !== undefined && n > 0) counts[w] = n;
    }
    result.queries.push({ query: read.value.query, windows: counts });
  }
  return result;
}

/**
 * Per query of `version`: the log shipper's bytes and the host time they cover, summed over `windows` (the
 * logVolume gate). Only those counters are read. Documents that do not match are returned apart.
 */
export async function shippedOverWindows(
  version: string,
  windows: string[],
  db: Firestore = clients.firestore(),
): Promise<{ queries: ShippedTotals[]; invalid: DocumentInvalid[] }> {
  if (windows.length === 0) return { queries: [], invalid: [] };
  const page = await db
    .collection(QUERY_STATS)
    .where('configVersion', '==', version)
    .select('query', ...windows.flatMap((w) => [`windows.${w}.shippedBytes`, `windows.${w}.shippedSpanMs`]))
    .get();
  countFirestore('reads', Math.max(1, page.size));
  const result: { queries: ShippedTotals[]; invalid: DocumentInvalid[] } = { queries: [], invalid: [] };
  for (const d of page.docs) {
    const read = tryReadDocument(shippedRow, d.ref.path, d.data());
    if (!read.ok) {
      result.invalid.push(read.invalid);
      continue;
    }
    let shippedBytes = 0;
    let shippedSpanMs = 0;
    for (const w of windows) {
      shippedBytes += read.value.windows?.[w]?.shippedBytes ?? 0;
      shippedSpanMs += read.value.windows?.[w]?.shippedSpanMs ?? 0;
    }
    result.queries.push({ query: read.value.query, shippedBytes, shippedSpanMs });
  }
  return result;
}
