// osq-orch report: the compliance evidence (the status page's CSV link serves the same CSV).
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';

export const REPORT_HELP = `  report [--format csv|json|html] [--project P] [--out FILE]
      Compliance evidence: every in-scope VM with its state, configuration version, osquery version and
      last log time, and every exempt VM with its reason, stamped with the latest closed audit run. Reads
      the hosts collection page by page (any fleet size); to stdout unless --out (written whole or not at all).
`;

/** Writes a chunk, waiting when the stream asks to. */
const sinkOf = (out: Writable) => async (chunk: string) => {
  if (!out.write(chunk)) await once(out, 'drain');
};

export async function report(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      format: { type: 'string', default: 'csv' },
      project: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const { EVIDENCE_FORMATS, EVIDENCE_WRITERS } = await import('../shared/views/evidence.js');
  const format = values.format as (typeof EVIDENCE_FORMATS)[number];
  if (!EVIDENCE_FORMATS.includes(format)) throw new Error(`--format must be one of ${EVIDENCE_FORMATS.join(', ')}`);
  const { writeEvidence } = await import('../shared/usecases/status.js');
  // A file is written beside its name and renamed at the end: a report cut short never looks complete.
  const partial = values.out ? `${values.out}.partial` : null;
  const out = partial ? createWriteStream(partial) : process.stdout;
  try {
    const result = await writeEvidence(EVIDENCE_WRITERS[format], sinkOf(out), { project: values.project });
    if (partial) {
      out.end();
      await once(out, 'finish');
      renameSync(partial, values.out!);
    }
    const from = result.run
      ? `audit run ${result.run.runId} (${result.run.status}, closed ${result.run.finishedAt})`
      : 'no closed audit run (none has closed yet: rows carry no run stamp)';
    console.error(
      `${result.inScope} in-scope and ${result.exempt} exempt VMs${values.project ? ` of ${values.project}` : ''}, ` +
        `${from}${values.out ? `, written to ${values.out}` : ''}`,
    );
    if (result.invalid > 0)
      console.error(
        `${result.invalid} host documents left out: they do not match their definition (docs/contracts.md); ` +
          'each is logged with its path',
      );
    return 0;
  } catch (error) {
    if (partial) {
      out.destroy();
      rmSync(partial, { force: true });
    }
    throw error;
  }
}
