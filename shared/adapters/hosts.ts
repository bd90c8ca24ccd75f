// Firestore: hosts/{instanceId} and hosts/{instanceId}/transitions (shared/documents/hosts.ts defines them;
// every read goes through those schemas, and a document that does not match raises DocumentInvalid with its
// path, or is returned as such by the listings: each caller decides what it means for it).
// Writes return the keys of the alert episodes they opened or closed: the use case delivers them
// (shared/usecases/alerts.ts).
import {
  FieldPath,
  FieldValue,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type Query,
  type QueryDocumentSnapshot,
  type Timestamp,
  type WriteBatch,
} from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { isInScope, type Host, type HostChange, type Transition } from '../domain/host.js';
import type { HeartbeatHost, HeartbeatWrite } from '../domain/heartbeat.js';
import type { RunningState } from '../domain/drift.js';
import type { HostEvidence } from '../domain/audit.js';
import type { SpoofWrite } from '../domain/heartbeat-identity.js';
import type { OpenIncident } from '../domain/incident.js';
import { readDocument, tryReadDocument, type DocumentInvalid } from '../documents/document.js';
import * as documents from '../documents/hosts.js';
import { stageEpisodes, type Writer } from './alerts.js';
import { countFirestore } from '../metrics.js';
import { isAlreadyExists, isConditionNotMet, isNotFound } from '../errors.js';
import { mapLimit } from '../rate.js';

export const HOSTS = 'hosts';
export const TRANSITIONS = 'transitions';

/** A host document read whole; throws DocumentInvalid (naming the document and field) when it does not match. */
export function readHost(snapshot: DocumentSnapshot): Host {
  return readDocument(documents.host, snapshot.ref.path, snapshot.data());
}

/** A host document with osquery's telemetry fields (hosts/{id}.osqueryd, .querySchedule), times as dates. */
export function readHeartbeatHost(snapshot: DocumentSnapshot): HeartbeatHost {
  const { osqueryd, querySchedule, running, ...host } = readDocument(
    documents.heartbeatHost,
    snapshot.ref.path,
    snapshot.data(),
  );
  return { ...host, osqueryd: osqueryd ?? null, querySchedule: querySchedule ?? null, running: running ?? null };
}

/** Transitions go to the subcollection with an id that orders them. */
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
  const stored = documents.hostData(change.host);
  const { lastLogAt: _lastLogAt, syslog: _syslog, ...owned } = stored;
  if (previous) writer.set(ref, ownsLastLogAt ? stored : owned, { merge: true });
  else writer.set(ref, stored);
  if (change.transition)
    writer.set(
      ref.collection(TRANSITIONS).doc(transitionId(change.transition)),
      documents.transitionData(change.transition),
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
    const current = snapshot.exists ? readHost(snapshot) : null;
    const change = plan(current);
    if (!change) return { host: current, changed: false, transition: null, alertKeys: [] };
    const alertKeys = stageChange(tx, db, current, change);
    return { host: change.host, changed: true, transition: change.transition, alertKeys };
  });
}

export async function getHost(instanceId: string, db: Firestore = clients.firestore()): Promise<Host | null> {
  const snapshot = await db.collection(HOSTS).doc(instanceId).get();
  countFirestore('reads');
  return snapshot.exists ? readHost(snapshot) : null;
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
  return snapshot.docs.map((d) => readDocument(documents.transition, d.ref.path, d.data()));
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
  'cause',
] as const;
/** Telemetry the audit reads as a silence's evidence (osquery's own, before the silence). */
const EVIDENCE_FIELDS = ['osqueryd.restarts', 'querySchedule.at', 'querySchedule.denylisted'] as const;
const AUDITED_FIELDS = [...RECORD_FIELDS, 'updatedAt', ...EVIDENCE_FIELDS, 'running.watcher'] as const;

/** A host document as read, with the update time a conditional write checks it against. */
export interface ReadHost extends HostEvidence {
  host: Host;
  readAt: Timestamp;
}

/**
 * A host from the audit's projection (the record and its update time): instanceId is the document id and
 * inScope follows the state. Returned as DocumentInvalid, not thrown, when it does not match.
 */
function projectedHost(d: QueryDocumentSnapshot) {
  const read = tryReadDocument(documents.auditedHost, d.ref.path, d.data());
  if (!read.ok) return read;
  const { osqueryd, running, querySchedule, ...record } = read.value;
  const host: Host = { ...record, instanceId: d.id, inScope: isInScope(record.state) };
  const evidence: HostEvidence = {
    workerRestarts: osqueryd?.restarts ?? 0,
    watcher: running?.watcher ?? null,
    denylisted: querySchedule?.denylisted ? { at: querySchedule.at, queries: querySchedule.denylisted } : null,
  };
  return { ok: true as const, host, evidence };
}

/**
 * Every host document of a project, by instance id, and those that do not match their definition (the
 * audit leaves them as they are). Only the audited fields are read: on the emulator that halves the time
 * for 10,000 hosts (the projection skips decoding what the audit never looks at), and only they are
 * validated. Projected query results still carry each document's update time. The documents are streamed:
 * each becomes its compact record as it arrives, and the query's snapshots are never all held at once.
 */
export async function listProjectHosts(
  project: string,
  db: Firestore = clients.firestore(),
): Promise<{ hosts: Map<string, ReadHost>; invalid: Map<string, DocumentInvalid> }> {
  const query = db
    .collection(HOSTS)
    .where('project', '==', project)
    .select(...AUDITED_FIELDS);
  const hosts = new Map<string, ReadHost>();
  const invalid = new Map<string, DocumentInvalid>();
  // The client streams QueryDocumentSnapshots; its typing says only ReadableStream.
  for await (const d of query.stream() as AsyncIterable<QueryDocumentSnapshot>) {
    const read = projectedHost(d);
    if (read.ok) hosts.set(d.id, { host: read.host, readAt: d.updateTime, ...read.evidence });
    else invalid.set(d.id, read.invalid);
  }
  countFirestore('reads', Math.max(1, hosts.size + invalid.size));
  return { hosts, invalid };
}

/**
 * Stages an audit's host change against what it read: an update only if the document is unchanged
 * since (its update time), a create only if there is still none. lastLogAt is never part of it.
 */
function stageAgainstRead(batch: WriteBatch, db: Firestore, change: HostChange, read: ReadHost | undefined): string[] {
  const ref = db.collection(HOSTS).doc(change.host.instanceId);
  const stored = documents.hostData(change.host);
  const { lastLogAt: _lastLogAt, syslog: _syslog, ...owned } = stored;
  if (read) batch.update(ref, owned, { lastUpdateTime: read.readAt });
  else batch.create(ref, stored);
  if (change.transition)
    batch.set(
      ref.collection(TRANSITIONS).doc(transitionId(change.transition)),
      documents.transitionData(change.transition),
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
 * transition) on the host, and the alert episodes they open or close, in the same commit. `update` is the
 * transaction's update, or the batch's conditioned on the update time read.
 */
function stageHeartbeat(
  writer: Writer,
  update: (ref: DocumentReference, data: documents.HeartbeatUpdate) => void,
  db: Firestore,
  instanceId: string,
  planned: HeartbeatUpdate,
): string[] {
  const ref = db.collection(HOSTS).doc(instanceId);
  const host = planned.change ? documents.hostData(planned.change.host) : {};
  update(ref, { ...host, ...planned.fields });
  const transition = planned.change?.transition;
  if (transition)
    writer.set(ref.collection(TRANSITIONS).doc(transitionId(transition)), documents.transitionData(transition));
  return [
    ...(planned.change ? stageEpisodes(writer, planned.change.episodes, db) : []),
    ...stageEpisodes(writer, planned.episodes, db),
    ...(planned.drift ? stageEpisodes(writer, planned.drift, db) : []),
    ...(planned.spoof ? stageEpisodes(writer, planned.spoof, db) : []),
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
    const planned = plan(readHeartbeatHost(snapshot));
    if (planned.write === 'nothing') return { known: true, written: null, alertKeys: [] };
    const alertKeys = stageHeartbeat(tx, (r, data) => tx.update(r, data), db, instanceId, planned);
    countFirestore('writes', planned.change?.transition ? 2 : 1);
    return { known: true, written: planned, alertKeys };
  });
}

/**
 * A forged heartbeat naming a host (logHeartbeat): `plan` says what it writes to the host as read
 * (shared/domain/heartbeat-identity.ts planSpoof), with the host.spoofed episode it opens, in one
 * transaction. Nothing for an unknown host, or when the plan writes nothing (a redelivery).
 */
export async function recordSpoof(
  instanceId: string,
  plan: (host: HeartbeatHost) => SpoofWrite | null,
  db: Firestore = clients.firestore(),
): Promise<{ alertKeys: string[] }> {
  const ref = db.collection(HOSTS).doc(instanceId);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const snapshot = await tx.get(ref);
    countFirestore('reads');
    if (!snapshot.exists) return { alertKeys: [] };
    const planned = plan(readHeartbeatHost(snapshot));
    if (!planned) return { alertKeys: [] };
    tx.update(ref, { spoofed: planned.spoofed, updatedAt: new Date() });
    countFirestore('writes');
    return { alertKeys: stageEpisodes(tx, planned.episodes, db) };
  });
}

/**
 * Many hosts in one read (getAll): each with the update time a conditional write can check against, and,
 * apart, those whose document does not match its definition (by instance id: the caller decides).
 */
export async function readHosts(
  instanceIds: string[],
  db: Firestore = clients.firestore(),
): Promise<{
  hosts: Map<string, { host: HeartbeatHost; updateTime: Timestamp }>;
  invalid: Map<string, DocumentInvalid>;
}> {
  const hosts = new Map<string, { host: HeartbeatHost; updateTime: Timestamp }>();
  const invalid = new Map<string, DocumentInvalid>();
  if (instanceIds.length === 0) return { hosts, invalid };
  const snapshots = await db.getAll(...instanceIds.map((id) => db.collection(HOSTS).doc(id)));
  countFirestore('reads', snapshots.length);
  for (const s of snapshots) {
    if (!s.exists) continue;
    const read = tryReadDocument(documents.heartbeatHost, s.ref.path, s.data());
    if (!read.ok) invalid.set(s.id, read.invalid);
    else {
      const { osqueryd, querySchedule, running, ...host } = read.value;
      const heartbeatHost = {
        ...host,
        osqueryd: osqueryd ?? null,
        querySchedule: querySchedule ?? null,
        running: running ?? null,
      };
      hosts.set(s.id, { host: heartbeatHost, updateTime: s.updateTime! });
    }
  }
  return { hosts, invalid };
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
  const alertKeys = writes.flatMap((w) =>
    stageHeartbeat(
      batch,
      (r, data) => batch.update(r, data, { lastUpdateTime: w.readAt }),
      db,
      w.instanceId,
      w.planned,
    ),
  );
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
 * element); nothing is written when `edit` leaves the list as it was. A list that does not match its
 * definition raises DocumentInvalid (rewriting it would drop what could not be read).
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
    const read = readDocument(documents.hostIncidents, ref.path, { openIncidents: snapshot.get('openIncidents') });
    const list: OpenIncident[] = read.openIncidents ?? [];
    const next = edit(list);
    if (JSON.stringify(next) === JSON.stringify(list)) return;
    tx.update(ref, { openIncidents: next.length ? next : FieldValue.delete(), updatedAt: new Date() });
    countFirestore('writes');
  });
}

/**
 * Every in-scope host (`inScope`) or every exempt host (`exempt`), optionally of one project, in pages
 * ordered by instance id: memory holds two pages (the one being written, the next being read), whatever
 * the fleet's size. Each page also says which documents did not match their definition (left out of it).
 */
export async function* streamHosts(
  which: 'inScope' | 'exempt',
  project: string | undefined,
  pageSize = 1000,
  db: Firestore = clients.firestore(),
): AsyncGenerator<{ hosts: Array<Host & { running: RunningState | null }>; invalid: DocumentInvalid[] }> {
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
    // The evidence also shows what osqueryd itself says it runs (hosts/{id}.running).
    .select(...RECORD_FIELDS, 'updatedAt', ...EVIDENCE_FIELDS, 'running')
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
    if (page.empty) continue;
    const hosts: Array<Host & { running: RunningState | null }> = [];
    const invalid: DocumentInvalid[] = [];
    for (const d of page.docs) {
      const read = projectedHost(d);
      // A running field that does not match reads as absent (rebuildable: logHeartbeat rewrites it).
      const running = tryReadDocument(documents.heartbeatHost.shape.running, `${d.ref.path}.running`, d.get('running'));
      if (read.ok) hosts.push({ ...read.host, running: running.ok ? (running.value ?? null) : null });
      else invalid.push(read.invalid);
    }
    yield { hosts, invalid };
  }
}
