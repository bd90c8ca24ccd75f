/** The osquery version this project pins: the bundle is written for it, its schema ships in the repository. */
export const PINNED_OSQUERY_VERSION = '5.23.1';

/**
 * The bundle file naming the osquery version a configuration runs with (one line, e.g. `5.23.1`). It is not
 * placed on VMs: the policy pins the package to it, and it enters the configuration version's content address.
 */
export const OSQUERY_VERSION_FILE = 'osquery.version';

/** osquery-packaging's release suffix: the Debian version and the RPM release of every Linux package. */
export const OSQUERY_PACKAGE_RELEASE = '1.linux';

export const isOsqueryVersion = (v: string) => /^\d+\.\d+\.\d+$/.test(v);

/** The package version to pin: apt `osquery=5.23.1-1.linux`, yum `osquery-5.23.1-1.linux.x86_64`. */
export const osqueryPackageVersion = (version: string) => `${version}-${OSQUERY_PACKAGE_RELEASE}`;

/** The upstream version of an installed package version (`5.23.1-1.linux` -> `5.23.1`). */
export const upstreamOf = (packageVersion: string) => packageVersion.split('-')[0]!;

/**
 * Pure: the osquery version a bundle names (its osquery.version file), or the pinned one for a bundle that
 * names none (written before the file existed). A malformed file is an error, never a silent default.
 */
export function osqueryVersionOfBundle(files: ReadonlyMap<string, string>): string {
  const text = files.get(OSQUERY_VERSION_FILE);
  if (text === undefined) return PINNED_OSQUERY_VERSION;
  const version = text.trim();
  if (!isOsqueryVersion(version))
    throw new Error(`${OSQUERY_VERSION_FILE}: expected an osquery version such as 5.23.1, not '${version}'`);
  return version;
}
