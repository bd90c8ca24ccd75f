// How an audit run's plan (the projects it audits) is split into documents of about PLAN_BUCKET projects:
// by a hash of the project id, so a shard finds its project's bucket from the run's project count alone.

/** Projects per plan bucket, about: one string of ~30 KB at 1,000 ids (far below Firestore's 1 MiB). */
export const PLAN_BUCKET = 1_000;

export const planBucketCount = (projects: number): number => Math.max(1, Math.ceil(projects / PLAN_BUCKET));

/** A project's bucket among `buckets`: FNV-1a (32 bits) of its id. */
export function planBucketOf(project: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < project.length; i++) h = Math.imul(h ^ project.charCodeAt(i), 0x01000193) >>> 0;
  return h % buckets;
}

/** The run's plan in its buckets (index: the bucket's document id). */
export function planBuckets(projects: string[]): string[][] {
  const buckets: string[][] = Array.from({ length: planBucketCount(projects.length) }, () => []);
  for (const p of projects) buckets[planBucketOf(p, buckets.length)]!.push(p);
  return buckets;
}
