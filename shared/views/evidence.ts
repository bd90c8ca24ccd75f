// Compliance evidence: every in-scope VM and every exempt VM with what an auditor asks about, stamped
// with the audit run it comes from. Written row by row (CSV, JSON or HTML), so a fleet of any size
// streams through in constant memory.
import type { Host } from '../domain/host.js';
import type { RunSummary } from '../domain/status.js';
import { syslogStatus } from '../domain/syslog.js';
import { html as markup } from './html.js';

export const EVIDENCE_FORMATS = ['csv', 'json', 'html'] as const;
export type EvidenceFormat = (typeof EVIDENCE_FORMATS)[number];

export const CONTENT_TYPES: Record<EvidenceFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

export interface EvidenceMeta {
  run: RunSummary | null;
  generatedAt: Date;
  project: string | null;
}

export interface EvidenceRow {
  auditRunId: string;
  auditRunFinishedAt: string;
  instanceId: string;
  project: string;
  zone: string;
  name: string;
  inScope: boolean;
  state: string;
  /** Why the host is in its state; for an exempt host, the exemption. */
  reason: string;
  stateSince: string;
  configVersion: string;
  osqueryVersion: string;
  lastLogAt: string;
  /** Syslog results seen within the last hour (arriving), not (missing), or no ingestion (off); at generation. */
  syslog: string;
  /** When the host's osquery_schedule snapshot last showed syslog results logged. */
  syslogSeenAt: string;
}

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
];
const CSV_HEADER = COLUMNS.map((c) => c.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`));

const isoOf = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : '');

export function evidenceRow(host: Host, run: RunSummary | null, now: Date = new Date()): EvidenceRow {
  return {
    auditRunId: run?.runId ?? '',
    auditRunFinishedAt: run?.finishedAt ?? '',
    instanceId: host.instanceId,
    project: host.project,
    zone: host.zone,
    name: host.name,
    inScope: host.state !== 'exempt' && host.state !== 'deleted',
    state: host.state,
    reason: host.reason ?? '',
    stateSince: isoOf(host.stateSince),
    configVersion: host.configVersion ?? '',
    osqueryVersion: host.osqueryVersion ?? '',
    lastLogAt: isoOf(host.lastLogAt),
    syslog: host.state === 'exempt' || host.state === 'deleted' ? '' : syslogStatus(host.syslog, now),
    syslogSeenAt: isoOf(host.syslog?.seenAt),
  };
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A field a spreadsheet
 * would run as a formula (= + - @ tab CR first) gets a leading apostrophe (OWASP CSV injection).
 */
export function csvField(value: string | boolean): string {
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface EvidenceWriter {
  begin(meta: EvidenceMeta): string;
  row(row: EvidenceRow, first: boolean): string;
  end(counts: { inScope: number; exempt: number }): string;
}

const csv: EvidenceWriter = {
  begin: () => `${CSV_HEADER.join(',')}\r\n`,
  row: (r) => `${COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n`,
  end: () => '',
};

const json: EvidenceWriter = {
  begin: (m) =>
    `{"run":${JSON.stringify(m.run)},"generatedAt":${JSON.stringify(m.generatedAt.toISOString())},"project":${JSON.stringify(m.project)},"hosts":[\n`,
  row: (r, first) => `${first ? '' : ',\n'}${JSON.stringify(r)}`,
  end: (counts) => `\n],"counts":${JSON.stringify(counts)}}\n`,
};

const HTML_COLUMNS = COLUMNS.filter((c) => c !== 'auditRunId' && c !== 'auditRunFinishedAt');
// `markup` is html`` under a name Prettier does not format: these fragments open and close the document
// across three calls, which an HTML formatter would "repair".
const htmlWriter: EvidenceWriter = {
  begin: (m) => {
    const title = `osquery compliance evidence${m.project ? ` (${m.project})` : ''}`;
    const run = m.run
      ? markup`Audit run <code>${m.run.runId}</code> (${m.run.status}), started ${m.run.startedAt}, closed ${m.run.finishedAt}.`
      : 'No audit run has closed yet.';
    return markup`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
<p>${run} Generated ${m.generatedAt.toISOString()}. Every in-scope VM, then every exempt VM with the reason it is exempt.</p>
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
