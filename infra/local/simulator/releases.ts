// osquery releases in the simulated package repositories (pkg.osquery.io): which versions a pinned install
// can find, and how each behaves once installed (a release whose osqueryd crashes at start, one that uses
// three times the CPU). The simulated agent installs, upgrades and downgrades them (agent.ts).
import { PINNED_OSQUERY_VERSION, osqueryPackageVersion, upstreamOf } from '../../../shared/osquery/version.js';

export interface OsqueryRelease {
  /** osqueryd exits as soon as it starts: OS Config's restart of it fails, no line is ever written. */
  crashesAtStart?: boolean;
  /** The worker's CPU, times this (a release with a costly regression). */
  cpuFactor?: number;
}

/** The repository's releases, upstream version -> behaviour; the pinned version is always there. */
export type Releases = Map<string, OsqueryRelease>;

export const defaultReleases = (): Releases =>
  new Map<string, OsqueryRelease>([
    ['5.22.1', {}],
    [PINNED_OSQUERY_VERSION, {}],
  ]);

/**
 * A pinned install (apt `osquery=V-1.linux`, yum `osquery-V-1.linux.x86_64`) as the package manager does it:
 * the version must be in the repository (else apt's error), an older one than installed is a downgrade
 * (allowed: the policy's scripts say --allow-downgrades / yum downgrade). Returns the error, or null.
 */
export function installPinned(
  releases: Releases,
  installed: Record<string, string>,
  version: string,
): { error: string } | { from: string | null; to: string } {
  if (!releases.has(version))
    return { error: `E: Version '${osqueryPackageVersion(version)}' for 'osquery' was not found` };
  const from = installed.osquery ? upstreamOf(installed.osquery) : null;
  installed.osquery = osqueryPackageVersion(version);
  return { from, to: version };
}

/** The release installed on a VM (upstream version), or null without osquery. */
export const installedRelease = (installed: Record<string, string>) =>
  installed.osquery ? upstreamOf(installed.osquery) : null;
