// Firestore: rollouts/{configVersion} (what was published and where it is rolled out) and
// config/current (which version new assignments get).
import { FieldValue, Timestamp, type Firestore } from '@google-cloud/firestore';
import { clients } from '../clients.js';
import { countFirestore } from '../metrics.js';
import type { PolicyConfig } from '../domain/policy.js';
import type { ZoneRollout } from '../domain/assignment.js';

export const ROLLOUTS = 'rollouts';
export const CURRENT = { collection: 'config', doc: 'current' } as const;

export interface RolloutRecord {
  configVersion: string;
  publishedAt: Date;
  bucket: string | null;
  files: Array<{ source: string; vmPath: string; sha256: string; size: number; object?: string; generation?: string }>;
  /** What vmLifecycle needs to create an assignment at this version. */
  policyConfig: PolicyConfig;
  /** `${project}/${zone}` -> the zone's assignment at this version. */
  zones: Record<string, ZoneRollout>;
  /** project -> hosts per state that run this version (written by the audit). */
  hostCounts?: Record<string, Record<string, number>>;
}

/**
 * Records a published version and makes it current, in one transaction that writes nothing when both
 * already say so (publishing the same bundle twice changes nothing).
 */
export async function recordPublished(
  record: Omit<RolloutRecord, 'zones' | 'publishedAt'>,
  db: Firestore = clients.firestore(),
): Promise<{ created: boolean; madeCurrent: boolean }> {
  const rolloutRef = db.collection(ROLLOUTS).doc(record.configVersion);
  const currentRef = db.collection(CURRENT.collection).doc(CURRENT.doc);
  countFirestore('transactions');
  return db.runTransaction(async (tx) => {
    const [rollout, current] = await Promise.all([tx.get(rolloutRef), tx.get(currentRef)]);
    countFirestore('reads', 2);
    const created = !rollout.exists;
    const madeCurrent = current.get('configVersion') !== record.configVersion;
    const now = Timestamp.now();
    if (created) tx.set(rolloutRef, { ...record, publishedAt: now, zones: {} });
    if (madeCurrent) tx.set(currentRef, { configVersion: record.configVersion, since: now });
    countFirestore('writes', Number(created) + Number(madeCurrent));
    return { created, madeCurrent };
  });
}

export async function currentVersion(db: Firestore = clients.firestore()): Promise<string | null> {
  const snapshot = await db.collection(CURRENT.collection).doc(CURRENT.doc).get();
  countFirestore('reads');
  return (snapshot.get('configVersion') as string | undefined) ?? null;
}

export async function getRollout(
  configVersion: string,
  db: Firestore = clients.firestore(),
): Promise<RolloutRecord | null> {
  const snapshot = await db.collection(ROLLOUTS).doc(configVersion).get();
  countFirestore('reads');
  if (!snapshot.exists) return null;
  const data = snapshot.data()!;
  return { ...data, publishedAt: (data.publishedAt as Timestamp).toDate() } as RolloutRecord;
}

/** The current version's policy configuration, or null when nothing was published yet. */
export async function currentPolicyConfig(db: Firestore = clients.firestore()): Promise<PolicyConfig | null> {
  const version = await currentVersion(db);
  if (!version) return null;
  return (await getRollout(version, db))?.policyConfig ?? null;
}

const zoneKey = (project: string, zone: string) => `${project}/${zone}`;

/** Notes a zone's assignment revision on the version's record (merge: zones are written independently). */
export async function recordZoneRollout(
  configVersion: string,
  zone: ZoneRollout,
  db: Firestore = clients.firestore(),
): Promise<void> {
  await db
    .collection(ROLLOUTS)
    .doc(configVersion)
    .set(
      { zones: { [zoneKey(zone.project, zone.zone)]: { ...zone, updatedAt: FieldValue.serverTimestamp() } } },
      { merge: true },
    );
  countFirestore('writes');
}

/** The audit's count of hosts per state on this version, for one project; written only when it changed. */
export async function recordHostCounts(
  configVersion: string,
  project: string,
  counts: Record<string, number>,
  previous?: Record<string, number>,
  db: Firestore = clients.firestore(),
): Promise<void> {
  const same =
    previous && JSON.stringify(Object.entries(previous).sort()) === JSON.stringify(Object.entries(counts).sort());
  if (same) return;
  // update() replaces the project's map whole (a state that dropped to zero disappears).
  await db
    .collection(ROLLOUTS)
    .doc(configVersion)
    .update({ [`hostCounts.${project}`]: counts });
  countFirestore('writes');
}
