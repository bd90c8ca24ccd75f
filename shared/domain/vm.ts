// What the orchestrator needs to know about a Compute Engine VM, independent of the client's types.

export type OsFamily = 'debian' | 'ubuntu' | 'rhel' | 'rocky' | 'centos' | 'almalinux' | 'windows' | 'cos' | 'unknown';

export interface Vm {
  instanceId: string;
  name: string;
  project: string;
  /** Short zone name, e.g. us-central1-a. */
  zone: string;
  /** PROVISIONING, STAGING, RUNNING, STOPPING, STOPPED, SUSPENDED, TERMINATED, ... */
  status: string;
  labels: Record<string, string>;
  labelFingerprint: string;
  metadata: Record<string, string>;
  metadataFingerprint: string;
  serviceAccounts: string[];
  os: OsFamily;
  /** creationTimestamp; grace periods for VMs first seen by the audit start here. */
  createdAt?: Date;
}

// Boot-disk licenses name the image family: projects/debian-cloud/global/licenses/debian-12-bookworm.
const LICENSE_FAMILIES: Array<[RegExp, OsFamily]> = [
  [/\/licenses\/windows-/, 'windows'],
  [/\/cos-cloud\/|\/licenses\/cos(-|$)/, 'cos'],
  [/\/licenses\/ubuntu-/, 'ubuntu'],
  [/\/licenses\/debian-/, 'debian'],
  [/\/licenses\/rhel-/, 'rhel'],
  [/\/licenses\/rocky-linux-/, 'rocky'],
  [/\/licenses\/centos-/, 'centos'],
  [/\/licenses\/almalinux-/, 'almalinux'],
];

/** Pure: the OS family named by a boot disk's licenses, or 'unknown' (custom images carry none). */
export function osFamilyFromLicenses(licenses: readonly string[]): OsFamily {
  for (const license of licenses) {
    for (const [pattern, family] of LICENSE_FAMILIES) if (pattern.test(license)) return family;
  }
  return 'unknown';
}

/** `https://.../zones/us-central1-a` or `zones/us-central1-a` -> `us-central1-a`. */
export const lastSegment = (url: string): string => url.slice(url.lastIndexOf('/') + 1);
