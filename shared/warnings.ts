// Node prints process warnings to stderr. Two are known noise for this project's terminal tools:
// node:sqlite's "experimental" notice (Node 22) and gax's autopaginate notice. Others still print.
const KNOWN = [/SQLite is an experimental feature/, /Autopaginate will always be set to false/];

export function quietKnownWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (!KNOWN.some((k) => k.test(warning.message))) process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
