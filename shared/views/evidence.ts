// Compliance evidence as a file: CSV, JSON or HTML, written row by row (shared/domain/evidence.ts says what
// a row holds), so a fleet of any size streams through in constant memory.
import type { EvidenceRow, EvidenceWriter } from '../domain/evidence.js';
import { html as markup } from './html.js';

export const EVIDENCE_FORMATS = ['csv', 'json', 'html'] as const;
export type EvidenceFormat = (typeof EVIDENCE_FORMATS)[number];

export const CONTENT_TYPES: Record<EvidenceFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

export const COLUMNS: Array<keyof EvidenceRow> = [
  'auditRunId',
  'auditRunFinishedAt',
  'instanceId',
  'project',
  'zone',
  'name',
  'inScope',
  'state',
  'reason',
  'stateSince',
  'configVersion',
  'osqueryVersion',
  'lastLogAt',
  'syslog',
  'syslogSeenAt',
  'runningConfigVersion',
  'runningOsqueryVersion',
  'configValid',
  'runningProvedAt',
  'drift',
];
const CSV_HEADER = COLUMNS.map((c) => c.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`));

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A field a spreadsheet
 * would run as a formula (= + - @ tab CR first) gets a leading apostrophe (OWASP CSV injection).
 */
export function csvField(value: string | boolean): string {
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const csv: EvidenceWriter = {
  begin: () => `${CSV_HEADER.join(',')}\r\n`,
  row: (r) => `${COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n`,
  end: () => '',
};

const json: EvidenceWriter = {
  begin: (m) =>
    `{"run":${JSON.stringify(m.run)},"generatedAt":${JSON.stringify(m.generatedAt.toISOString())},` +
    `"project":${JSON.stringify(m.project)},"hosts":[\n`,
  row: (r, first) => `${first ? '' : ',\n'}${JSON.stringify(r)}`,
  end: (counts) => `\n],"counts":${JSON.stringify(counts)}}\n`,
};

const HTML_COLUMNS = COLUMNS.filter((c) => c !== 'auditRunId' && c !== 'auditRunFinishedAt');
// `markup` is html`` under a name Prettier does not format: these fragments open and close the document
// across three calls, which an HTML formatter would "repair".
const htmlWriter: EvidenceWriter = {
  begin: (m) => {
    const title = `osquery compliance evidence${m.project ? ` (${m.project})` : ''}`;
    const r = m.run;
    const run = r
      ? markup`Audit run <code>${r.runId}</code> (${r.status}), started ${r.startedAt}, closed ${r.finishedAt}.`
      : 'No audit run has closed yet.';
    const generated = m.generatedAt.toISOString();
    return markup`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
<p>${run} Generated ${generated}. Every in-scope VM, then every exempt VM with the reason it is exempt.</p>
<table border="1" cellspacing="0" cellpadding="3">
<tr>${HTML_COLUMNS.map((c) => markup`<th>${c}</th>`)}</tr>
`.value;
  },
  row: (r) => `${markup`<tr>${HTML_COLUMNS.map((c) => markup`<td>${String(r[c])}</td>`)}</tr>`.value}\n`,
  end: (counts) =>
    markup`</table>
<p>${counts.inScope} in-scope VMs, ${counts.exempt} exempt VMs.</p>
</body></html>
`.value,
};

export const EVIDENCE_WRITERS: Record<EvidenceFormat, EvidenceWriter> = { csv, json, html: htmlWriter };
