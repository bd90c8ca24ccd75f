// Firestore: hosts/{instanceId} and hosts/{instanceId}/transitions.
// Writes return the keys of the alert episodes they opened or closed: the use case delivers them
// (shared/usecases/alerts.ts).
import {
  FieldPath,
  FieldValue,
  Timestamp,
  type DocumentData,
  type Firestore,
  type Query,
  type QueryDocumentSnapshot,
  type Transaction,
  type WriteBatch,
} from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { isInScope, type Host, type HostChange, type Transition } from '../domain/host.js';
import type { HeartbeatHost, HeartbeatWrite } from '../domain/heartbeat.js';
import type { OsquerydState, ScheduleBaseline } from '../domain/telemetry.js';
import type { OpenIncident } from '../domain/incident.js';
import { stageEpisodes, type Writer } from './alerts.js';
import { countFirestore } from '../metrics.js';
import { isAlreadyExists, isConditionNotMet, isNotFound } from '../errors.js';
import { mapLimit } from '../rate.js';

export const HOSTS = 'hosts';
export const TRANSITIONS = 'transitions';

const DATE_FIELDS = ['stateSince', 'lastLogAt', 'updatedAt'] as const;

const toDate = (v: unknown) => (v instanceof Timestamp ? v.toDate() : (v as Date));

export function hostFromDoc(data: DocumentData): Host {
  const host = { ...data } as Record<string, unknown>;
  for (const f of DATE_FIELDS) if (host[f] instanceof Timestamp) host[f] = (host[f] as Timestamp).toDate();
  const syslog = data.syslog as { scheduledAt: unknown; seenAt: unknown } | undefined;
  if (syslog)
    host.syslog = { scheduledAt: toDate(syslog.scheduledAt), seenAt: syslog.seenAt ? toDate(syslog.seenAt) : null };
  return host as unknown as Host;
}

/** A host document with osquery's telemetry fields (hosts/{id}.osqueryd, .querySchedule), times as dates. */
export function heartbeatHostFromDoc(data: DocumentData): HeartbeatHost {
  const o = data.osqueryd as (OsquerydState & { at: unknown }) | undefined;
  const q = data.querySchedule as (ScheduleBaseline & { at: unknown }) | undefined;
  return {
    ...hostFromDoc(data),
    osqueryd: o
      ? { ...o, at: toDate(o.at), episode: o.episode ? { ...o.episode, since: toDate(o.episode.since) } : null }
      : null,
    querySchedule: q ? { ...q, at: toDate(q.at) } : null,
  };
}

/** Firestore stores Dates as Timestamps; transitions go to the subcollection with an id that orders them. */
function transitionId(t: Transition): string {
  return `${t.at.toISOString()}-${t.to}`;
}

export interface ApplyResult {
  host: Host | null;
  changed: boolean;
  transition: Transition | null;
  /** The alert episodes the change opened or closed, to deliver. */
  alertKeys: string[];
}

/**
 * Writes a host change, the transition beside it, and the alert episodes it opens or closes. lastLogAt and
 * syslog belong to logHeartbeat: other writers merge around them instead of writing back what they read.
 */
function stageChange(
  writer: Writer,
  db: Firestore,
  previous: Host | null,
  change: HostChange,
  ownsLastLogAt = false,
): string[] {
  const ref = db.collection(HOSTS).doc(change.host.instanceId);
  const { lastLogAt: _lastLogAt, syslog: _syslog, ...owned } = change.host;
  if (previous)
    writer.set(ref, ownsLastLogAt ? (change.host as unknown as Record<string, unknown>) : owned, { merge: true });
  else writer.set(ref, change.host as unknown as Record<string, unknown>);
  if (change.transition)
    writer.set(
      ref.collection(TRANSITIONS).doc(transitionId(change.transition)),
      change.transition as unknown as Record<string, unknown>,
    );
  countFirestore('writes', change.transition ? 2 : 1);
  return stageEpisodes(writer, change.episodes, db);
}

/**
 * Reads a host and writes `plan`'s change to it in one transaction, so concurrent or repeated
 * deliveries see each other's writes. `plan` returns null when nothing is to be written.
 */
export async function applyHostChange(
  instanceId: string,
  plan: (current: Host | null) => HostChange | null,
  db: Firestore = clients.firestore(),
): Promise<ApplyResult> {
  const ref = db.collection(HOSTS).doc(instanceId);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    const current = snapshot.exists ? hostFromDoc(snapshot.data()!) : null;
    const change = plan(current);
    if (!change) return { host: current, changed: false, transition: null, alertKeys: [] };
    const alertKeys = stageChange(tx, db, current, change);
    return { host: change.host, changed: true, transition: change.transition, alertKeys };
  });
}

export async function getHost(instanceId: string, db: Firestore = clients.firestore()): Promise<Host | null> {
  const snapshot = await db.collection(HOSTS).doc(instanceId).get();
  countFirestore('reads');
  return snapshot.exists ? hostFromDoc(snapshot.data()!) : null;
}

/**
 * A delete entry without instance_id: the ids of every live host recorded under that name in that zone.
 * Compute keeps names unique only among existing VMs, so a name reused after a delete can match several.
 */
export async function findLiveHostIds(
  project: string,
  zone: string,
  name: string,
  db: Firestore = clients.firestore(),
): Promise<string[]> {
  const snapshot = await db
    .collection(HOSTS)
    .where('project', '==', project)
    .where('zone', '==', zone)
    .where('name', '==', name)
    .get();
  countFirestore('reads', Math.max(1, snapshot.size));
  return snapshot.docs.filter((d) => d.get('state') !== 'deleted').map((d) => d.id);
}

export async function listTransitions(instanceId: string, db: Firestore = clients.firestore()): Promise<Transition[]> {
  const snapshot = await db.collection(HOSTS).doc(instanceId).collection(TRANSITIONS).orderBy('at').get();
  return snapshot.docs.map((d) => {
    const t = d.data();
    return { ...t, at: (t.at as Timestamp).toDate() } as Transition;
  });
}

// A host's record as the audit compares it and the evidence reports it; the rest is derived (instanceId
// is the document id, inScope follows the state).
export const RECORD_FIELDS = [
  'name',
  'project',
  'zone',
  'state',
  'reason',
  'stateSince',
  'lastLogAt',
  'osqueryVersion',
  'configVersion',
  'syslog',
] as const;
const AUDITED_FIELDS = [...RECORD_FIELDS, 'updatedAt'] as const;

/** A host document as read, with the update time a conditional write checks it against. */
export interface ReadHost {
  host: Host;
  readAt: Timestamp;
}

/**
 * Every host document of a project, by instance id. Only the audited fields are read: on the emulator
 * that halves the time for 10,000 hosts (the projection skips decoding what the audit never looks at).
 * Projected query results still carry each document's update time. The documents are streamed: each
 * becomes its compact record as it arrives, and the query's snapshots are never all held at once.
 */
export async function listProjectHosts(
  project: string,
  db: Firestore = clients.firestore(),
): Promise<Map<string, ReadHost>> {
  const query = db
    .collection(HOSTS)
    .where('project', '==', project)
    .select(...AUDITED_FIELDS);
  const hosts = new Map<string, ReadHost>();
  for await (const d of query.stream() as AsyncIterable<QueryDocumentSnapshot>) {
    const host = hostFromDoc({ ...d.data(), instanceId: d.id });
    hosts.set(d.id, {
      host: { ...host, lastLogAt: host.lastLogAt ?? null, inScope: isInScope(host.state) },
      readAt: d.updateTime,
    });
  }
  countFirestore('reads', Math.max(1, hosts.size));
  return hosts;
}

/**
 * Stages an audit's host change against what it read: an update only if the document is unchanged
 * since (its update time), a create only if there is still none. lastLogAt is never part of it.
 */
function stageAgainstRead(batch: WriteBatch, db: Firestore, change: HostChange, read: ReadHost | undefined): string[] {
  const ref = db.collection(HOSTS).doc(change.host.instanceId);
  const { lastLogAt: _lastLogAt, syslog: _syslog, ...owned } = change.host;
  if (read) batch.update(ref, owned as Record<string, unknown>, { lastUpdateTime: read.readAt });
  else batch.create(ref, change.host as unknown as Record<string, unknown>);
  if (change.transition)
    batch.set(
      ref.collection(TRANSITIONS).doc(transitionId(change.transition)),
      change.transition as unknown as Record<string, unknown>,
    );
  return stageEpisodes(batch, change.episodes, db);
}

const lostRace = (error: unknown) => isConditionNotMet(error) || isAlreadyExists(error) || isNotFound(error);

/** The hosts among `ids` whose document is no longer as `read` saw it (written, created or gone since). */
async function changedSince(ids: string[], read: Map<string, ReadHost>, db: Firestore): Promise<Set<string>> {
  const snapshots = await db.getAll(...ids.map((id) => db.collection(HOSTS).doc(id)));
  countFirestore('reads', snapshots.length);
  const changed = new Set<string>();
  for (const s of snapshots) {
    const before = read.get(s.id)?.readAt;
    if (before ? !s.exists || !s.updateTime!.isEqual(before) : s.exists) changed.add(s.id);
  }
  return changed;
}

/**
 * Writes host changes in batches (at most 500 operations each): the host, a transition beside each
 * state change, and the alert episodes they open or close; each host write is conditioned on the
 * document being as `read` saw it. A batch that loses a race (a heartbeat, vmLifecycle or another audit
 * wrote one of its hosts) is committed again without the hosts that changed, and those are returned as
 * `lost`: the caller decides them again on a fresh read. Returns how many changes were written and the
 * alert episodes they opened or closed.
 */
export async function writeHostChanges(
  changes: HostChange[],
  read: Map<string, ReadHost>,
  db: Firestore = clients.firestore(),
): Promise<{ changesWritten: number; alertKeys: string[]; lost: string[] }> {
  const batches: HostChange[][] = [[]];
  let ops = 0;
  for (const change of changes) {
    const { open, close } = change.episodes;
    const n = 1 + (change.transition ? 1 : 0) + (open ? 1 : 0) + (close ? 1 : 0);
    if (ops + n > 490) {
      batches.push([]);
      ops = 0;
    }
    batches.at(-1)!.push(change);
    ops += n;
  }
  let changesWritten = 0;
  const alertKeys: string[] = [];
  const lost: string[] = [];
  const commit = async (batch: HostChange[]) => {
    let remaining = batch;
    for (;;) {
      const writer = db.batch();
      const keys = remaining.flatMap((change) =>
        stageAgainstRead(writer, db, change, read.get(change.host.instanceId)),
      );
      try {
        await writer.commit();
        changesWritten += remaining.length;
        countFirestore('writes', remaining.length + remaining.filter((c) => c.transition).length);
        alertKeys.push(...keys);
        return;
      } catch (error) {
        if (!lostRace(error)) throw error;
        const changed = await changedSince(
          remaining.map((c) => c.host.instanceId),
          read,
          db,
        );
        if (changed.size === 0) throw error;
        lost.push(...changed);
        remaining = remaining.filter((c) => !changed.has(c.host.instanceId));
        if (remaining.length === 0) return;
      }
    }
  };
  // A few commits in flight: on the emulator, 20,000 writes took 1.0 s with 3 concurrent commits,
  // 1.2 s one at a time, and 4.5 s with all 41 at once (they contend).
  await mapLimit(
    batches.filter((b) => b.length > 0),
    3,
    commit,
  );
  return { changesWritten, alertKeys, lost };
}

type HeartbeatUpdate = Extract<HeartbeatWrite, { write: 'update' }>;

/**
 * Stages one heartbeat write: the fields (and, when it ends a silent episode, the state change with its
 * transition) on the host, and the alert episodes they open or close, in the same commit.
 */
function stageHeartbeat(
  writer: Transaction | WriteBatch,
  db: Firestore,
  instanceId: string,
  planned: HeartbeatUpdate,
  readAt?: Timestamp,
): string[] {
  const ref = db.collection(HOSTS).doc(instanceId);
  const data = { ...(planned.change?.host ?? {}), ...planned.fields } as Record<string, unknown>;
  if (readAt) (writer as WriteBatch).update(ref, data, { lastUpdateTime: readAt });
  else (writer as Transaction).update(ref, data);
  const transition = planned.change?.transition;
  if (transition)
    (writer as Writer).set(
      ref.collection(TRANSITIONS).doc(transitionId(transition)),
      transition as unknown as DocumentData,
    );
  return [
    ...(planned.change ? stageEpisodes(writer, planned.change.episodes, db) : []),
    ...stageEpisodes(writer, planned.episodes, db),
  ];
}

/**
 * Records a host's log lines (logHeartbeat) in a transaction: `plan` says what to write to the host as
 * read (shared/domain/heartbeat.ts planHeartbeatWrite): lastLogAt, osquery's telemetry fields, and the
 * state change that ends a silent episode, with the alert episodes they open or close.
 */
export async function recordHeartbeat(
  instanceId: string,
  plan: (host: HeartbeatHost) => HeartbeatWrite,
  db: Firestore = clients.firestore(),
): Promise<{ known: boolean; written: HeartbeatUpdate | null; alertKeys: string[] }> {
  const ref = db.collection(HOSTS).doc(instanceId);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists) return { known: false, written: null, alertKeys: [] };
    const planned = plan(heartbeatHostFromDoc(snapshot.data()!));
    if (planned.write === 'nothing') return { known: true, written: null, alertKeys: [] };
    const alertKeys = stageHeartbeat(tx, db, instanceId, planned);
    countFirestore('writes', planned.change?.transition ? 2 : 1);
    return { known: true, written: planned, alertKeys };
  });
}

/** Many hosts in one read (getAll): each with the update time a conditional write can check against. */
export async function readHosts(
  instanceIds: string[],
  db: Firestore = clients.firestore(),
): Promise<Map<string, { host: HeartbeatHost; updateTime: Timestamp }>> {
  if (instanceIds.length === 0) return new Map();
  const snapshots = await db.getAll(...instanceIds.map((id) => db.collection(HOSTS).doc(id)));
  countFirestore('reads', snapshots.length);
  return new Map(
    snapshots
      .filter((s) => s.exists)
      .map((s) => [s.id, { host: heartbeatHostFromDoc(s.data()!), updateTime: s.updateTime! }]),
  );
}

/**
 * Writes many hosts' heartbeat writes (and the episodes they open or close) in one commit, each only if its
 * document is still as it was read. False when any of them changed in between (nothing is written then;
 * the caller decides again). At most 500 operations: a write is the host and up to two episodes.
 */
export async function writeHeartbeats(
  writes: Array<{ instanceId: string; planned: HeartbeatUpdate; readAt: Timestamp }>,
  db: Firestore = clients.firestore(),
): Promise<{ committed: boolean; alertKeys: string[] }> {
  if (writes.length === 0) return { committed: true, alertKeys: [] };
  const batch = db.batch();
  const alertKeys = writes.flatMap((w) => stageHeartbeat(batch, db, w.instanceId, w.planned, w.readAt));
  try {
    await batch.commit();
    countFirestore(
      'writes',
      writes.reduce((n, w) => n + (w.planned.change?.transition ? 2 : 1), 0),
    );
    return { committed: true, alertKeys };
  } catch (error) {
    if (isConditionNotMet(error)) return { committed: false, alertKeys: [] };
    throw error;
  }
}

/**
 * Read-modify-write of hosts/{id}.openIncidents in a transaction (arrayRemove would need the exact
 * element); nothing is written when `edit` leaves the list as it was.
 */
export async function updateOpenIncidents(
  instanceId: string,
  edit: (list: OpenIncident[]) => OpenIncident[],
  db: Firestore = clients.firestore(),
): Promise<void> {
  const ref = db.collection(HOSTS).doc(instanceId);
  countFirestore('transactions');
  await db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    const list = ((snapshot.get('openIncidents') as OpenIncident[] | undefined) ?? []).map((i) => ({
      ...i,
      startedAt: i.startedAt instanceof Timestamp ? i.startedAt.toDate() : i.startedAt,
    }));
    const next = edit(list);
    if (JSON.stringify(next) === JSON.stringify(list)) return;
    tx.update(ref, { openIncidents: next.length ? next : FieldValue.delete(), updatedAt: new Date() });
    countFirestore('writes');
  });
}

/**
 * Every in-scope host (`inScope`) or every exempt host (`exempt`), optionally of one project, in pages
 * ordered by instance id: memory holds two pages (the one being written, the next being read), whatever
 * the fleet's size.
 */
export async function* streamHosts(
  which: 'inScope' | 'exempt',
  project: string | undefined,
  pageSize = 1000,
  db: Firestore = clients.firestore(),
): AsyncGenerator<Host[]> {
  // Whole chains, so the Terraform contract test finds each query's composite index.
  const filtered: Query =
    which === 'inScope'
      ? project
        ? db.collection(HOSTS).where('project', '==', project).where('inScope', '==', true)
        : db.collection(HOSTS).where('inScope', '==', true)
      : project
        ? db.collection(HOSTS).where('project', '==', project).where('state', '==', 'exempt')
        : db.collection(HOSTS).where('state', '==', 'exempt');
  const query = filtered
    .orderBy(FieldPath.documentId())
    .select(...RECORD_FIELDS)
    .limit(pageSize);
  const read = async (after: string | null) => {
    const page = await (after === null ? query : query.startAfter(after)).get();
    countFirestore('reads', Math.max(1, page.size));
    return page;
  };
  // The next page is read while the caller writes out this one.
  let next: ReturnType<typeof read> | null = read(null);
  while (next) {
    const page: Awaited<ReturnType<typeof read>> = await next;
    next = page.size === pageSize ? read(page.docs.at(-1)!.id) : null;
    if (!page.empty) yield page.docs.map((d) => ({ ...hostFromDoc(d.data()), instanceId: d.id }));
  }
}
