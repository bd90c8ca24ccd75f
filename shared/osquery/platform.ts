// Where osquery runs a pack or query with a `platform` restriction, as osquery/core/system.cpp
// checkPlatform decides it: substring matches on the whole string, no list parsing. Pure.

/** The systems osquery 5.23.1 builds for (cmake/flags.cmake OSQUERY_BUILD_PLATFORM). */
export const OSQUERY_SYSTEMS = ['linux', 'darwin', 'windows'] as const;
export type OsquerySystem = (typeof OSQUERY_SYSTEMS)[number];

/**
 * The systems a `platform` value runs on. Empty, "null" or not a string (osquery reads only strings):
 * all. "any"/"all" anywhere in it: all. "linux", "ubuntu" or "centos": Linux. "posix": Linux and macOS.
 * Otherwise the build's own name ("darwin", "windows"). Anything else ("gentoo", "freebsd") runs nowhere.
 */
export function systemsForPlatform(platform: unknown): Set<OsquerySystem> {
  if (typeof platform !== 'string' || platform === '' || platform === 'null' || /any|all/.test(platform))
    return new Set(OSQUERY_SYSTEMS);
  const systems = new Set<OsquerySystem>();
  if (/linux|ubuntu|centos/.test(platform)) systems.add('linux');
  if (platform.includes('posix')) {
    systems.add('linux');
    systems.add('darwin');
  }
  if (platform.includes('darwin')) systems.add('darwin');
  if (platform.includes('windows')) systems.add('windows');
  return systems;
}
