// Node prints process warnings to stderr. Three are known noise for this project's terminal tools:
// node:sqlite's "experimental" notice (Node 22), gax's autopaginate notice, and the auth library's
// note that no metadata server answered (off Google Cloud, where the CLI usually runs). Others print.
const KNOWN = [/SQLite is an experimental feature/, /Autopaginate will always be set to false/];
const KNOWN_NAMES = ['MetadataLookupWarning'];

export function quietKnownWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (KNOWN_NAMES.includes(warning.name) || KNOWN.some((k) => k.test(warning.message))) return;
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
