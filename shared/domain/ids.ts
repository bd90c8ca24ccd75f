// What Google Cloud identifiers look like, as Compute Engine's API itself validates them. Values that
// become Firestore document ids, field paths or API paths are checked against these before use.

/** A project id, domain-scoped ones included (`example.com:acme`); Compute's own pattern, length capped. */
const PROJECT_ID =
  /^(?:(?:[-a-z0-9]{1,63}\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?))$/;
/** A zone, e.g. `us-central1-a`. */
const ZONE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** An instance name. */
const INSTANCE_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const U64_MAX = 18_446_744_073_709_551_615n;

export const isProjectId = (value: string): boolean => value.length <= 255 && PROJECT_ID.test(value);
export const isZone = (value: string): boolean => ZONE.test(value);
export const isInstanceName = (value: string): boolean => INSTANCE_NAME.test(value);

/** A Compute instance id: an unsigned 64-bit integer in canonical decimal (no sign, no leading zero). */
export const isInstanceId = (value: string): boolean => /^[1-9][0-9]{0,19}$/.test(value) && BigInt(value) <= U64_MAX;
