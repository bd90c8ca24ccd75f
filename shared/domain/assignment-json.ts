// An OS policy assignment in Google's REST JSON form (the proto3 JSON mapping): what `gcloud compute
// os-config os-policy-assignments create --file` and the REST API take as it is. The client library's
// objects differ in two places an assignment uses: google.protobuf.Duration is `{seconds, nanos}` there and
// "60s" in JSON, and int64 values (a Cloud Storage generation) are numbers or Longs there and strings in JSON.
import type { OsqueryAssignment } from './policy.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Duration fields of OSPolicyAssignment (rollout.minWaitDuration). */
const DURATIONS = new Set(['minWaitDuration']);
/** int64 fields of OSPolicyAssignment and its resources (file.gcs.generation). */
const INT64S = new Set(['generation']);

/** {seconds, nanos} -> "60s" / "1.500s" (proto3 JSON writes 0, 3, 6 or 9 fractional digits). */
function durationJson(value: { seconds?: unknown; nanos?: unknown }): string {
  const seconds = String(value.seconds ?? 0);
  const nanos = Number(value.nanos ?? 0);
  if (!nanos) return `${seconds}s`;
  return `${seconds}.${String(nanos)
    .padStart(9, '0')
    .replace(/(000)+$/, '')}s`;
}

function convert(value: unknown, key: string | null): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (key !== null && DURATIONS.has(key) && typeof value === 'object') return durationJson(value as object);
  if (
    key !== null &&
    INT64S.has(key) &&
    (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'object')
  )
    return String(value);
  if (Array.isArray(value)) return value.map((v) => convert(v, null) ?? null);
  if (typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      const converted = convert(v, k);
      if (converted !== undefined) out[k] = converted;
    }
    return out;
  }
  return value as Json;
}

/** Pure: the assignment in REST JSON form (enums are already their names; absent values are left out). */
export function assignmentRestJson(assignment: OsqueryAssignment): Record<string, Json> {
  return convert(assignment, null) as Record<string, Json>;
}
