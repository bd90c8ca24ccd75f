// The status page: one server-rendered HTML document, a little inline CSS, an inline SVG chart, no
// script (filters are a GET form, applied on the server). Every value is escaped by html``.
import { createHash } from 'node:crypto';
import type { HistoryPoint, HostEntry } from '../domain/status.js';
import { NEEDS_ACTION_STATES } from '../domain/status.js';
import type { AlertRow, ListView, OsqueryCostHost, RolloutStagesView, StatusView } from '../domain/status-view.js';
import { Html, html, withQuery } from './html.js';
import { auditCoverageSection } from './status-page-audit.js';

export const EVIDENCE_PATH = 'evidence.csv';
export const API_PATH = 'api/status';

const CSS = `
:root{--fg:#1d2330;--muted:#5d6575;--line:#dde1e8;--bg:#f6f7f9;--ok:#1e7e34;--warn:#b35c00;--bad:#b3261e;--info:#1a5fb4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 20px}header{padding-top:18px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:14px 16px;margin:14px 0}
.meta,.note,footer{color:var(--muted)}footer{padding-bottom:24px;font-size:13px}
a{color:var(--info)}code{font:12px ui-monospace,Menlo,Consolas,monospace}
.figure{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap}.big{font-size:40px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;background:#fafbfc}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600}
.chip{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;background:#e9ecf1;white-space:nowrap}
.s-reporting,.s-compliant{background:#dcf2e1;color:var(--ok)}
.s-silent,.sev-critical{background:#fbe0de;color:var(--bad)}
.s-noncompliant,.s-blocked,.sev-warning{background:#fdebd3;color:var(--warn)}
.s-exempt{background:#dde9f8;color:var(--info)}
.s-failed,.s-partial{background:#fbe0de;color:var(--bad)}.s-succeeded{background:#dcf2e1;color:var(--ok)}
form.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:end;margin:0 0 10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
select,input,button{font:inherit;padding:3px 6px}
.later{border-left:3px solid var(--line);padding-left:10px;color:var(--muted)}
.q-minimal{background:#dcf2e1;color:var(--ok)}.q-considerable{background:#fdebd3;color:var(--warn)}
.q-excessive{background:#fbe0de;color:var(--bad)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px}
svg text{font-size:11px;fill:var(--muted)}
`;

/** The style element, whole: the policy below allows exactly this text (whitespace included) by its hash. */
const STYLE = new Html(`<style>${CSS}</style>`);

/** The page's Content-Security-Policy: no script at all, only this stylesheet (by hash), nothing framed. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'`,
  'img-src data:',
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
const num = (n: number) => n.toLocaleString('en-US');
const utc = (isoTime: string) => isoTime.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');

function ago(isoTime: string, now: string): string {
  const s = Math.max(0, (Date.parse(now) - Date.parse(isoTime)) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
const when = (isoTime: string | null, now: string) =>
  isoTime
    ? html`<time datetime="${isoTime}">${utc(isoTime)}</time> <span class="note">(${ago(isoTime, now)} ago)</span>`
    : html`-`;
const chip = (state: string, cls = `s-${state}`) => html`<span class="chip ${cls}">${state}</span>`;

const STATUS_CHIP: Record<string, string> = {
  running: 's-reporting',
  completed: 's-succeeded',
  halted: 's-failed',
  'rolled-back': 's-noncompliant',
  paused: 's-exempt',
};

/**
 * The progressive rollout: each stage with its zones and hosts, the gates against their thresholds, what comes next.
 */
function rolloutStages(r: RolloutStagesView | null, now: string): Html {
  if (!r)
    return html`<div id="rollout-stages">
      <h3>Progressive rollout</h3>
      <p class="note">No staged rollout: the next <code>osq-orch publish</code> starts one.</p>
    </div>`;
  // `%` and `% over baseline` follow the number; `queries` after a space.
  const value = (v: number, unit: string) => (unit.startsWith('%') ? `${v}${unit}` : `${v} ${unit}`);
  return html`<div id="rollout-stages" data-version="${r.version}" data-status="${r.status}">
    <h3>Progressive rollout of <code>${r.version}</code> ${chip(r.status, STATUS_CHIP[r.status] ?? '')}</h3>
    <p class="note">
      Baseline <code>${r.baseline ?? 'none'}</code>; stage ${r.stage ?? '-'}.
      ${r.evaluatedAt ? html`Gates as of ${when(r.evaluatedAt, now)}.` : 'Not evaluated yet (the next audit run does).'}
    </p>
    ${
      r.halt
        ? html`<p class="halt" id="rollout-halt">
            ${chip('halted', 's-failed')} in stage ${r.halt.stage}: gate <strong>${r.halt.gate}</strong>
            ${value(r.halt.value, r.halt.unit)} above ${value(r.halt.threshold, r.halt.unit)}, ${when(r.halt.at, now)};
            every zone rolled back to the baseline.
          </p>`
        : ''
    }
    <table class="stages">
      <tr>
        <th>Stage</th>
        <th>State</th>
        <th>Zones</th>
        <th class="n">On target</th>
        <th class="n">On baseline</th>
        <th class="n">Hosts</th>
        <th>Bake</th>
      </tr>
      ${r.stages.map(
        (s) =>
          html`<tr data-stage="${s.name}" data-state="${s.state}">
            <td>${s.name}</td>
            <td>${chip(s.state, s.state === 'done' ? 's-succeeded' : s.state === 'current' ? 's-reporting' : '')}</td>
            <td class="zones">${s.zones.join(', ')}</td>
            <td class="n">
              ${s.onTarget === null ? '' : num(s.onTarget)}${
                s.notRunning
                  ? html` <span class="note" data-not-running="${s.notRunning}"
                      >(${num(s.notRunning)} not yet running the target)</span
                    >`
                  : ''
              }
            </td>
            <td class="n">${s.onBaseline === null ? '' : num(s.onBaseline)}</td>
            <td class="n">${s.targeted === null ? '' : num(s.targeted)}</td>
            <td>${s.bakeMinutes} min${s.startedAt ? html`, from ${when(s.startedAt, now)}` : ''}</td>
          </tr>`,
      )}
      ${r.skipped.map(
        (s) =>
          html`<tr data-stage="${s.name}" data-state="skipped">
            <td>${s.name}</td>
            <td>${chip('skipped', '')}</td>
            <td colspan="5" class="note">${s.reason}</td>
          </tr>`,
      )}
    </table>
    ${
      r.gates.length
        ? html`<table class="gates">
            <tr>
              <th>Gate</th>
              <th class="n">Value</th>
              <th class="n">Threshold</th>
              <th></th>
            </tr>
            ${r.gates.map(
              (g) =>
                html`<tr data-gate="${g.gate}" data-passed="${String(g.passed)}">
                  <td>${g.gate}</td>
                  <td class="n">${value(g.value, g.unit)}</td>
                  <td class="n">${value(g.threshold, g.unit)}</td>
                  <td>${g.passed ? chip('ok', 's-succeeded') : chip('failed', 's-failed')}</td>
                </tr>`,
            )}
          </table>`
        : ''
    }
    ${r.next ? html`<p id="rollout-next">Next: <strong>${r.next.action}</strong> (${r.next.reason})</p>` : ''}
  </div>`;
}

const MiB = 1024 * 1024;
const ms = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(1) : num(Math.round(v)));
const rate = (v: number) => (v === 0 ? '0' : v < 10 ? v.toFixed(1) : num(Math.round(v)));
const bytes = (v: number) =>
  v < 1024 ? `${Math.round(v)} B` : v < MiB ? `${(v / 1024).toFixed(1)} KiB` : `${(v / MiB).toFixed(1)} MiB`;
const every = (s: number | null) =>
  s === null
    ? '-'
    : s % 86400 === 0
      ? `${s / 86400}d`
      : s % 3600 === 0
        ? `${s / 3600}h`
        : s % 60 === 0
          ? `${s / 60}m`
          : `${s}s`;

/** The hosts where osqueryd costs most by CPU over its last heartbeat interval, then by memory (status/osquery). */
function osquerydHosts(view: StatusView): Html {
  const { cost, topHosts } = view.osquery;
  if (!cost || !topHosts)
    return html`<p class="note" id="osquery-cost">
      No measurement yet: osqueryd's own CPU and memory come with each host's 5-minute heartbeat and appear here when an
      audit run closes.
    </p>`;
  const rows = (hosts: OsqueryCostHost[], by: 'cpu' | 'memory') =>
    hosts.length
      ? html`<table id="osqueryd-${by}">
          <tr>
            <th>Host</th>
            <th>Project / zone</th>
            <th class="n">CPU %</th>
            <th class="n">Memory</th>
            <th>Measured</th>
          </tr>
          ${hosts.map(
            (h) =>
              html`<tr data-instance-id="${h.instanceId}" data-alerting="${String(h.alerting)}">
                <td class="host">${h.name}${h.alerting ? html` ${chip('host.performance', 'sev-warning')}` : ''}</td>
                <td>${h.project} / ${h.zone}</td>
                <td class="n">${h.cpuPercent === null ? '-' : h.cpuPercent.toFixed(1)}</td>
                <td class="n">${bytes(h.rssBytes)}</td>
                <td>${when(h.at, view.generatedAt)}</td>
              </tr>`,
          )}
        </table>`
      : html`<p class="note">No host has reported it yet.</p>`;
  return html`<div id="osquery-cost">
    <p class="note">
      osqueryd's worker, from its own heartbeat: CPU over the last 5-minute interval (percent of one core) and resident
      memory, as of the run ${cost.runId} (${when(cost.at, view.generatedAt)}).
    </p>
    <h3>By CPU</h3>
    ${rows(topHosts.cpu, 'cpu')}
    <h3>By memory</h3>
    ${rows(topHosts.memory, 'memory')}
  </div>`;
}

/** Syslog ingestion on the reporting hosts: whose syslog results arrive, and which ones' do not. */
function syslogSection(view: StatusView): Html {
  const s = view.syslog;
  if (!s) return html`<p class="note" id="syslog-none">No audit run has counted syslog ingestion yet.</p>`;
  const count = (k: 'arriving' | 'missing' | 'off') => num(s.counts[k] ?? 0);
  return html`<p class="note">
      Reporting hosts whose osquery_schedule snapshot showed syslog results within the last hour:
      <strong id="syslog-arriving">${count('arriving')}</strong> arriving,
      <strong id="syslog-missing">${count('missing')}</strong> missing,
      <strong id="syslog-off">${count('off')}</strong> not ingesting (their configuration version reads no syslog).
    </p>
    ${
      s.missing.length
        ? html`<table id="syslog-missing-hosts">
            <tr>
              <th>Host</th>
              <th>Project / zone</th>
              <th>Last syslog results</th>
            </tr>
            ${s.missing.map(
              (h) =>
                html`<tr data-instance-id="${h.instanceId}">
                  <td class="host">${h.name}</td>
                  <td>${h.project} / ${h.zone}</td>
                  <td>${h.seenAt ? when(h.seenAt, view.generatedAt) : 'never'}</td>
                </tr>`,
            )}
          </table>`
        : html``
    }`;
}

/** The most expensive scheduled queries per configuration version (queryStats, summarized at the run's close). */
function expensiveQueries(view: StatusView): Html {
  const { cost, topQueries: queries } = view.osquery;
  if (!cost || !queries) return html``;
  return html`<h3>The most expensive queries</h3>
    ${
      queries.length
        ? html`<p class="note">
              ${num(queries.length)} of ${num(cost.queries)} queries with statistics, over the current hour and the
              ${cost.hours} before it; CPU is user + system ms per execution across hosts (classes: minimal below 2000
              ms at p50, considerable below 4000 ms, excessive above).
            </p>
            <table id="expensive-queries">
              <tr>
                <th>Query</th>
                <th>Version</th>
                <th>Every</th>
                <th class="n">CPU p50 ms</th>
                <th class="n">CPU p95 ms</th>
                <th class="n">Runs / h</th>
                <th class="n">Output / h</th>
                <th class="n">Denylisted on</th>
                <th>Class</th>
              </tr>
              ${queries.map(
                (q) =>
                  html`<tr data-query="${q.query}" data-class="${q.class}">
                    <td><code>${q.query}</code></td>
                    <td><code>${q.configVersion}</code></td>
                    <td>${every(q.interval)}</td>
                    <td class="n">${ms(q.cpuP50)}</td>
                    <td class="n">${ms(q.cpuP95)}</td>
                    <td class="n">${rate(q.executionsPerHour)}</td>
                    <td class="n">${bytes(q.outputBytesPerHour)}</td>
                    <td class="n">${q.denylistedHosts ? num(q.denylistedHosts) : '-'}</td>
                    <td>${chip(q.class, `q-${q.class}`)}</td>
                  </tr>`,
              )}
            </table>`
        : html`<p class="note">No query statistics yet: they come from the hourly osquery_schedule snapshot.</p>`
    }`;
}

const logBytes = (v: number) => (v >= 1024 * MiB ? `${(v / 1024 / MiB).toFixed(1)} GiB` : bytes(v));
const usd = (v: number) => `$${v < 100 ? v.toFixed(2) : num(Math.round(v))}`;

/** What the logs cost: the queries that ship most bytes a day and the fleet's projected month (status/osquery). */
function logCost(view: StatusView): Html {
  const { cost, logs } = view.osquery;
  if (!cost || !logs) return html``;
  return html`<h3>What the logs cost</h3>
    <p class="note" id="log-cost">
      The fleet ships <span id="log-bytes-per-day">${logBytes(logs.bytesPerDay)}</span> of logs a day (the log shipper's
      count, over the current hour and the one before it): about
      <strong id="log-usd-per-month">${usd(logs.usdPerMonth)}</strong> a month projected (Pub/Sub
      ${usd(logs.pubsubUsdPerMonth)}, the SIEM ${usd(logs.siemUsdPerMonth)}, at the prices in COST_PRICES).
    </p>
    ${
      logs.topQueries.length
        ? html`<table id="log-volume">
            <tr>
              <th>Query</th>
              <th>Version</th>
              <th class="n">Hosts</th>
              <th class="n">Shipped / host / day</th>
              <th class="n">Shipped / day</th>
              <th class="n">Logs $ / month</th>
            </tr>
            ${logs.topQueries.map(
              (q) =>
                html`<tr data-query="${q.query}">
                  <td><code>${q.query}</code></td>
                  <td><code>${q.configVersion}</code></td>
                  <td class="n">${num(q.hosts)}</td>
                  <td class="n">${bytes(q.shippedBytesPerHostDay)}</td>
                  <td class="n">${logBytes(q.shippedBytesPerDay)}</td>
                  <td class="n">${usd(q.usdPerMonth)}</td>
                </tr>`,
            )}
          </table>`
        : html`<p class="note">
            Nothing counted yet: the shipper's counts come with the hourly osquery_schedule line.
          </p>`
    }`;
}

/** Coverage over the kept runs, as an inline SVG line chart (0-100 %, time on the x axis). */
export function coverageChart(history: HistoryPoint[], width = 720, height = 180): Html {
  const points = history.filter((p) => p.coverage !== null);
  if (points.length === 0)
    return html`<p class="note">No coverage figure yet: it appears when an audit run closes.</p>`;
  const pad = { left: 40, right: 12, top: 10, bottom: 24 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const t0 = Date.parse(points[0]!.at);
  const t1 = Date.parse(points.at(-1)!.at);
  const x = (at: string) => pad.left + (t1 === t0 ? w / 2 : ((Date.parse(at) - t0) / (t1 - t0)) * w);
  const y = (v: number) => pad.top + (1 - v) * h;
  const xy = points.map((p) => `${x(p.at).toFixed(1)},${y(p.coverage!).toFixed(1)}`);
  const grid = [0, 0.5, 0.9, 1].map(
    (v) =>
      html`<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(v)}" y2="${y(v)}" stroke="#dde1e8" /><text
          x="${pad.left - 6}"
          y="${y(v) + 4}"
          text-anchor="end"
          >${v * 100}%</text
        >`,
  );
  const x0 = pad.left + (t1 === t0 ? w / 2 : 0);
  const area = `${x0},${y(0)} ${xy.join(' ')} ${x(points.at(-1)!.at).toFixed(1)},${y(0)}`;
  // Dots only while they stay readable; each names its run (a tooltip in every browser).
  const dots =
    points.length <= 150
      ? points.map(
          (p) =>
            html`<circle
              cx="${x(p.at).toFixed(1)}"
              cy="${y(p.coverage!).toFixed(1)}"
              r="3"
              fill="${p.status === 'succeeded' ? '#1a5fb4' : '#b3261e'}"
              ><title>
                ${utc(p.at)}: ${pct(p.coverage)} (${p.reporting} of ${p.expected}), run ${p.runId} ${p.status}
              </title></circle
            >`,
        )
      : [];
  const last = points.at(-1)!;
  return html`<svg
    id="coverage-chart"
    width="${width}"
    height="${height}"
    viewBox="0 0 ${width} ${height}"
    role="img"
    aria-label="Coverage over the last ${points.length} audit runs, latest ${pct(last.coverage)}"
  >
    ${grid}
    <polygon points="${area}" fill="#1a5fb4" fill-opacity="0.08" />
    <polyline points="${xy.join(' ')}" fill="none" stroke="#1a5fb4" stroke-width="2" />
    ${dots}
    <text x="${pad.left}" y="${height - 6}">${utc(points[0]!.at)}</text>
    <text x="${pad.left + w}" y="${height - 6}" text-anchor="end">${utc(last.at)}</text>
  </svg>`;
}

function hostRows(hosts: HostEntry[], now: string, withState: boolean): Html {
  return html`${hosts.map(
    (h) =>
      html`<tr data-state="${h.state}" data-instance-id="${h.instanceId}" data-cause="${h.cause ?? ''}">
        ${withState ? html`<td>${chip(h.state)}</td>` : ''}
        <td class="host">${h.name}</td>
        <td>${h.project} / ${h.zone}</td>
        <td><code>${h.instanceId}</code></td>
        <td>${h.reason ?? '-'}</td>
        <td>${when(h.since, now)}</td>
      </tr>`,
  )}`;
}

function listNote(list: ListView, what: string): Html {
  if (list.total === 0) return html``;
  const kept = list.truncated
    ? html` The snapshot keeps ${num(list.listed)} of ${num(list.total)};
        <a href="${EVIDENCE_PATH}">the evidence CSV</a> lists every host.`
    : '';
  return html`<p class="note">Showing ${num(list.hosts.length)} of ${num(list.total)} ${what}.${kept}</p>`;
}

function filterForm(view: StatusView, refreshSeconds: number | undefined): Html {
  const f = view.filters;
  const projects = [...new Set(view.states.rows.map((r) => r.project))];
  const zones = [...new Set(view.states.rows.map((r) => r.zone))].sort();
  const options = (values: readonly string[], selected: string | undefined) =>
    values.map((v) => html`<option value="${v}" ${v === selected ? html` selected` : ''}>${v}</option>`);
  return html`<form class="filters" method="get">
    <label
      >State<select name="state">
        <option value="">any</option>
        ${options(NEEDS_ACTION_STATES, f.state)}
      </select></label
    >
    <label
      >Project<select name="project">
        <option value="">any</option>
        ${options(projects, f.project)}
      </select></label
    >
    <label
      >Zone<select name="zone">
        <option value="">any</option>
        ${options(zones, f.zone)}
      </select></label
    >
    <label>Host<input name="q" value="${f.q ?? ''}" placeholder="name or instance id" size="22" /></label>
    ${refreshSeconds ? html`<input type="hidden" name="refresh" value="${refreshSeconds}" />` : ''}<button
      type="submit"
    >
      Filter
    </button>
    <a href="${withQuery('./', { refresh: refreshSeconds ? String(refreshSeconds) : undefined })}">Clear</a>
  </form>`;
}

/** Where an alert is: its host's project and zone, else its query's configuration version. */
const alertWhere = (a: AlertRow) =>
  a.host ? `${a.host.project} / ${a.host.zone}` : a.query ? html`version <code>${a.query.configVersion}</code>` : '-';

function alertRows(alerts: AlertRow[], now: string): Html {
  return html`${alerts.map(
    (a) =>
      html`<tr data-kind="${a.kind}">
        <td>${chip(a.severity, `sev-${a.severity}`)}</td>
        <td>${a.kind}</td>
        <td class="host">${a.host ? a.host.name : a.query ? html`query <code>${a.query.name}</code>` : '(no host)'}</td>
        <td>${alertWhere(a)}</td>
        <td>${a.reason ?? '-'}</td>
        <td>${when(a.since, now)}</td>
        <td>${a.notified ? 'sent' : 'owed'}</td>
      </tr>`,
  )}`;
}

/** The page's head: its title, the stylesheet the policy allows, and the reload a wall display asks for. */
function pageHead(refreshSeconds: number | undefined): Html {
  return html`<head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    ${refreshSeconds ? html`<meta http-equiv="refresh" content="${refreshSeconds}" />` : ''}
    <title>osquery fleet status</title>
    <link rel="icon" href="data:," />
    ${STYLE}
  </head>`;
}

/** The title, the audit run the figures come from, and the links to the JSON and the evidence. */
function pageHeader(view: StatusView): Html {
  const now = view.generatedAt;
  const run = view.run;
  const csv = withQuery(EVIDENCE_PATH, { project: view.filters.project });
  return html`<header>
    <h1>osquery fleet status</h1>
    <p class="meta">
      ${
        run
          ? html`As of audit run <code>${run.runId}</code> ${chip(run.status)}, started ${when(run.startedAt, now)},
              closed ${when(run.finishedAt, now)}.`
          : html`No audit run has closed yet: the figures appear when the first one does.`
      } <a href="${API_PATH}">JSON</a> &middot; <a id="evidence-link" href="${csv}">Evidence (CSV, every host)</a>
    </p>
  </header>`;
}

/** Coverage now, and over the kept runs. */
function coverageSection(view: StatusView): Html {
  return html`<section id="coverage-section">
    <h2>Coverage</h2>
    <div class="figure">
      <span id="coverage" class="big">${pct(view.coverage.now)}</span
      ><span
        >${num(view.coverage.reporting)} of ${num(view.coverage.expected)} in-scope running hosts reporting (coverage =
        reporting / in scope and not stopped)</span
      >
    </div>
    ${coverageChart(view.coverage.history)}
  </section>`;
}

/** Hosts per state, a row per project and zone (a project's rows from an earlier run say so), and the total. */
function statesSection(view: StatusView): Html {
  const s = view.states;
  const head = html`<tr>
    <th>Project</th>
    <th>Zone</th>
    ${s.columns.map((c) => html`<th class="n">${chip(c)}</th>`)}
    <th class="n">Total</th>
  </tr>`;
  const stateRows = s.rows.map((r) => {
    const stale = r.stale ? html` <span class="note">(earlier run)</span>` : '';
    const cells = s.columns.map((c) => html`<td class="n">${r.counts[c] ? num(r.counts[c]!) : ''}</td>`);
    return html`<tr>
      <td>${r.project}${stale}</td>
      <td>${r.zone}</td>
      ${cells}
      <td class="n">${num(r.total)}</td>
    </tr>`;
  });
  const totals = html`<tr class="total">
    <td colspan="2">All</td>
    ${s.columns.map((c) => html`<td class="n">${s.totals[c] ? num(s.totals[c]!) : ''}</td>`)}
    <td class="n">${num(Object.values(s.totals).reduce((a, n) => a + (n ?? 0), 0))}</td>
  </tr>`;
  const deletedNote = s.deleted
    ? html`<p class="note">
        ${num(s.deleted)} deleted ${s.deleted === 1 ? 'VM is' : 'VMs are'} kept for history, not counted above.
      </p>`
    : '';
  return html`<section id="states">
    <h2>Hosts per state, by project and zone</h2>
    ${
      s.rows.length
        ? html`<table>
            ${head}${stateRows}${totals}
          </table>`
        : html`<p class="note">No hosts yet.</p>`
    }
    ${deletedNote}
  </section>`;
}

/** The hosts needing action, by state, with the filters that narrow them. */
function needingActionSection(view: StatusView, refreshSeconds: number | undefined): Html {
  const na = view.needingAction;
  return html`<section id="needing-action">
    <h2>Needing action (${num(na.total)})</h2>
    <p class="note">${NEEDS_ACTION_STATES.map((st) => html`${chip(st)} ${num(na.byKey[st] ?? 0)} `)}</p>
    ${backlogNote(view.backlogs)} ${causesNote(na.causes)} ${filterForm(view, refreshSeconds)}
    ${hostList(na, view.generatedAt, {
      withState: true,
      since: 'Since',
      what: 'hosts needing action',
      none: 'Nothing needs action.',
      noMatch: 'No host matches the filters.',
    })}
  </section>`;
}

/** The log subscriptions behind now (pipeline.backlog) and how far, as Cloud Monitoring measured it. */
function backlogNote(backlogs: StatusView['backlogs']): Html {
  if (backlogs.length === 0) return html``;
  return html`<ul class="note" id="backlogs">
    ${backlogs.map(
      (b) =>
        html`<li data-subscription="${b.subscription}" data-role="${b.role}">
          ${b.role === 'siem' ? "The SIEM's" : 'The heartbeat'} subscription <code>${b.subscription}</code> is behind
          since ${b.since}: ${b.lag ?? 'lag not measured'}
        </li>`,
    )}
  </ul>`;
}

/** Silent hosts grouped by why they went quiet, and whether the heartbeat pipeline is behind. */
function causesNote(causes: Record<string, number>): Html {
  const behind = causes['pipeline-behind'] ?? 0;
  const silent = Object.entries(causes).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  if (silent.length === 0) return html``;
  return html`${
      behind
        ? html`<p class="note" id="pipeline-behind">
            <strong>The heartbeat pipeline is behind</strong> (pipeline.backlog): ${num(behind)} hosts wait for their
            lines, not judged silent while its backlog can explain them.
          </p>`
        : ''
    }
    <p class="note" id="silent-causes">
      Quiet, by cause: ${silent.map(([cause, n]) => html`${chip(cause, 's-silent')} ${num(n)} `)}
    </p>`;
}

/** The exempt hosts, by reason. */
function exemptSection(view: StatusView): Html {
  const ex = view.exempt;
  return html`<section id="exempt">
    <h2>Exempt hosts (${num(ex.total)})</h2>
    <p class="note">${Object.entries(ex.byKey).map(([reason, n]) => html`${chip(reason, 's-exempt')} ${num(n)} `)}</p>
    ${hostList(ex, view.generatedAt, {
      withState: false,
      since: 'Exempt since',
      what: 'exempt hosts',
      none: 'No exempt hosts.',
      noMatch: 'No exempt host matches the filters.',
    })}
  </section>`;
}

/** A list of hosts as a table (with their states, where those differ), or why it is empty; then what it keeps. */
function hostList(
  list: ListView,
  now: string,
  shown: { withState: boolean; since: string; what: string; none: string; noMatch: string },
): Html {
  return html`${
    list.hosts.length
      ? html`<table>
          <tr>
            ${shown.withState ? html`<th>State</th>` : ''}
            <th>Host</th>
            <th>Project / zone</th>
            <th>Instance id</th>
            <th>Reason</th>
            <th>${shown.since}</th>
          </tr>
          ${hostRows(list.hosts, now, shown.withState)}
        </table>`
      : html`<p class="note">${list.total ? shown.noMatch : shown.none}</p>`
  }
  ${listNote(list, shown.what)}`;
}

/** The configuration versions live in the fleet, and the current version's rollout zone by zone. */
function configurationSection(view: StatusView): Html {
  const cfg = view.configuration;
  return html`<section id="configuration">
    <h2>Configuration</h2>
    <div class="cols">
      <div>
        <h3>Versions live in the fleet (in-scope hosts)</h3>
        ${versionTable(cfg.live)}
      </div>
      <div>
        <h3>Rollout of the current version ${cfg.current ? html`<code>${cfg.current}</code>` : ''}</h3>
        ${currentRollout(view)} ${rolloutStages(cfg.stages, view.generatedAt)}
      </div>
    </div>
  </section>`;
}

/** In-scope hosts per version (of the configuration, or of osquery), the current one marked. */
function versionTable(versions: Array<{ version: string; hosts: number; current?: boolean }>): Html {
  if (!versions.length) return html`<p class="note">No hosts yet.</p>`;
  return html`<table>
    <tr>
      <th>Version</th>
      <th class="n">Hosts</th>
    </tr>
    ${versions.map(
      (v) =>
        html`<tr>
          <td><code>${v.version}</code>${v.current ? html` ${chip('current', 's-succeeded')}` : ''}</td>
          <td class="n">${num(v.hosts)}</td>
        </tr>`,
    )}
  </table>`;
}

/** Where the current version stands in each zone: its assignment's revision and OS Config's rollout state. */
function currentRollout(view: StatusView): Html {
  const rollout = view.configuration.rollout;
  if (!rollout) return html`<p class="note">No configuration published yet (<code>osq-orch publish</code>).</p>`;
  return html`<p class="note">Published ${when(rollout.publishedAt, view.generatedAt)}.</p>
    ${
      rollout.zones.length
        ? html`<table>
            <tr>
              <th>Project</th>
              <th>Zone</th>
              <th>Revision</th>
              <th>Rollout</th>
            </tr>
            ${rollout.zones.map(
              (z) =>
                html`<tr>
                  <td>${z.project}</td>
                  <td>${z.zone}</td>
                  <td><code>${z.revisionId}</code></td>
                  <td>${chip(z.rolloutState, z.rolloutState === 'SUCCEEDED' ? 's-succeeded' : '')}</td>
                </tr>`,
            )}
          </table>`
        : html`<p class="note">No zone has an assignment at this version yet.</p>`
    }`;
}

/** osquery itself: the versions the hosts run, where osqueryd costs most, and the most expensive queries. */
function osquerySection(view: StatusView): Html {
  return html`<section id="osquery">
    <h2>osquery</h2>
    <div class="cols">
      <div>
        <h3>osquery versions (in-scope hosts)</h3>
        ${versionTable(view.osquery.versions)}
      </div>
      <div>
        <h3>Where osqueryd costs most</h3>
        ${osquerydHosts(view)}
      </div>
    </div>
    ${expensiveQueries(view)} ${logCost(view)}
  </section>`;
}

/** The open alerts, newest first, and whether each one's message went out. */
function alertsSection(view: StatusView): Html {
  const { open, shown } = view.alerts;
  const more = open > shown.length ? html`<p class="note">The ${num(shown.length)} newest of ${num(open)}.</p>` : '';
  return html`<section id="alerts">
    <h2>Open alerts (${num(open)})</h2>
    ${
      shown.length
        ? html`<table>
              <tr>
                <th>Severity</th>
                <th>Kind</th>
                <th>Host</th>
                <th>Project / zone</th>
                <th>Reason</th>
                <th>Since</th>
                <th>Message</th>
              </tr>
              ${alertRows(shown, view.generatedAt)}
            </table>
            ${more}`
        : html`<p class="note">No open alerts.</p>`
    }
  </section>`;
}

/** The run's projects and why any failed, and where the figures come from. */
function pageFooter(view: StatusView): Html {
  const run = view.run;
  const runProjects = run
    ? html`<p>
        Projects in run <code>${run.runId}</code>: ${run.projects.map((p) => html`${p.project} ${chip(p.status)} `)}
      </p>`
    : '';
  const failedNotes = (run?.projects.filter((p) => p.status !== 'succeeded') ?? []).map((p) => {
    const shownAs = p.snapshotRunId ? html`; its hosts are shown as of run <code>${p.snapshotRunId}</code>` : '';
    return html`<p>${p.project}: ${p.error ?? p.status}${shownAs}.</p>`;
  });
  return html`<footer>
    ${runProjects} ${failedNotes}
    <p>Generated ${utc(view.generatedAt)}. Figures come from the latest closed audit run; open alerts are live.</p>
  </footer>`;
}

/** The whole page: its head, then each section in the order people read them. */
export function renderStatusPage(view: StatusView, options: { refreshSeconds?: number } = {}): string {
  const page = html`<!doctype html>
    <html lang="en">
      ${pageHead(options.refreshSeconds)}
      <body>
        ${pageHeader(view)}
        <main>
          ${coverageSection(view)} ${statesSection(view)} ${needingActionSection(view, options.refreshSeconds)}
          ${exemptSection(view)} ${configurationSection(view)} ${osquerySection(view)}
          <section id="syslog">
            <h2>Syslog ingestion</h2>
            ${syslogSection(view)}
          </section>
          ${alertsSection(view)} ${auditCoverageSection(view.audit)}
        </main>
        ${pageFooter(view)}
      </body>
    </html> `;
  return page.value;
}
