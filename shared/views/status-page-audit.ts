// The status page's audit coverage section: the audit's cycle and each project's audit age, oldest first
// (shared/domain/status-audit.ts builds it; docs/status.md).
import type { AuditCoverageView } from '../domain/status-audit.js';
import { html, type Html } from './html.js';

const num = (n: number) => n.toLocaleString('en-US');
/** An age or a cycle in minutes, as a person reads it: 45 min, 2 h 45 min, 3 d 4 h. */
export function minutes(m: number | null): string {
  if (m === null) return 'unknown';
  if (m < 120) return `${m} min`;
  const [big, unit, rest, restUnit] =
    m < 48 * 60
      ? [Math.floor(m / 60), 'h', m % 60, 'min']
      : [Math.floor(m / 1440), 'd', Math.floor((m % 1440) / 60), 'h'];
  return rest ? `${big} ${unit} ${rest} ${restUnit}` : `${big} ${unit}`;
}

function cycleLine(a: AuditCoverageView): Html {
  const c = a.cycle;
  if (c.mode === 'every-tick')
    return html`<p id="audit-cycle">Every project is audited each tick (every ${num(c.tickMinutes)} min).</p>`;
  return html`<p id="audit-cycle">
    Rolling audit: ${num(c.selected)} of ${num(c.targets)} projects a tick; every project within ${num(c.cycleTicks)}
    ticks (${minutes(c.cycleMinutes)}); ${num(c.neverAudited)} never audited.
  </p>`;
}

/** The audit's cycle (from the latest run) and the oldest audit ages; nothing before the first audit. */
export function auditCoverageSection(a: AuditCoverageView | null): Html | string {
  if (!a) return '';
  const rows = a.projects.map(
    (p) =>
      html`<tr>
        <td>${p.project}</td>
        <td class="n">${minutes(p.ageMinutes)}</td>
        <td><time datetime="${p.lastAuditAt}">${p.lastAuditAt}</time></td>
      </tr>`,
  );
  const more = a.more ? html`<p class="note">And ${num(a.more)} more projects, audited more recently.</p>` : '';
  return html`<section id="audit-coverage">
    <h2>Audit coverage</h2>
    ${cycleLine(a)}
    ${
      rows.length
        ? html`<table id="audit-ages">
            <tr>
              <th>Project</th>
              <th class="n">Audit age</th>
              <th>Last audited</th>
            </tr>
            ${rows}
          </table>`
        : ''
    }
    ${more}
    <p class="note">
      A host's state, silent included, is as of its project's last audit: the oldest audit age bounds how late a silence
      can be noticed.
    </p>
  </section>`;
}
