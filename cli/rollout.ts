// `osq-orch rollout status | promote | pause | resume | rollback [--to VERSION]`: the progressive rollout
// from a terminal, each command by hand recorded with who (--by, default $USER) and why (--reason).
import { parseArgs } from 'node:util';
import type { Evaluation, StagedRollout } from '../shared/domain/rollout.js';

export const ROLLOUT_HELP = `  rollout status
      The rollout under way (else the current version's): each stage with its zones and hosts on the
      target / the baseline, each gate's value against its threshold, and what the controller does next.
  rollout promote | pause | resume | rollback [--to VERSION] --reason WHY [--by WHO]
      By hand, recorded in the rollout's history with who and why. promote moves to the next stage now
      (or completes); pause stops the controller promoting; resume starts a paused, halted or rolled-back
      rollout again (its hosts judged from then on); rollback sends every zone back to the baseline, or
      with --to makes a published VERSION current everywhere.
`;

const pad = (s: string, n: number) => s.padEnd(n);
const when = (d: Date | null | undefined) => (d ? new Date(d).toISOString().replace('.000Z', 'Z') : '-');

/** The text of `rollout status` (pure, so the CLI and the demo print the same). */
export function formatRollout(r: StagedRollout, evaluation: Evaluation | null, current: string | null): string {
  const lines: string[] = [];
  lines.push(
    `rollout of ${r.configVersion}: ${r.status} (${r.mode}), ` +
      `baseline ${r.baseline ?? 'none'}, current ${current ?? 'none'}`,
  );
  if (r.mode === 'staged') {
    lines.push(`stage ${r.stage + 1} of ${r.stages.length}: ${r.stages[r.stage]?.name ?? '-'}`);
    const views = evaluation?.stages ?? [];
    for (const [i, s] of r.stages.entries()) {
      const v = views[i];
      const state = i < r.stage ? 'done' : i === r.stage ? 'current' : 'waiting';
      lines.push(
        `  ${pad(s.name, 8)} ${pad(state, 8)} ${String(s.zones.length).padStart(3)} zones  ` +
          (v ? `${v.onTarget} on target, ${v.onBaseline} on baseline, of ${v.targeted} hosts` : `${s.hosts} hosts`) +
          (v?.notRunning ? ` (${v.notRunning} not yet running the target)` : '') +
          `  bake ${s.bakeMinutes} min, started ${when(s.startedAt)}`,
      );
      lines.push(`           ${s.zones.join(' ')}`);
    }
    for (const s of r.skipped) lines.push(`  ${pad(s.name, 8)} skipped: ${s.reason}`);
  }
  if (evaluation) {
    lines.push(`gates (stage ${evaluation.stage}, evaluated ${when(evaluation.at)}):`);
    for (const g of evaluation.gates) {
      const value = `${g.value}${g.unit.startsWith('%') ? g.unit : ` ${g.unit}`}`;
      lines.push(
        `  ${g.passed ? 'ok  ' : 'FAIL'} ${pad(g.gate, 18)} ${value} ` +
          `(threshold ${g.threshold}${g.unit === '%' ? '%' : ''})${g.capped ? ' at least' : ''}` +
          (g.queries.length
            ? `  ${g.queries.join(', ')}`
            : g.hosts.length
              ? `  ${g.hosts.map((h) => h.name).join(', ')}`
              : ''),
      );
    }
    const notRunning = evaluation.stages[r.stage]?.notRunning ?? 0;
    // Beside the gates: hosts OS Config calls on the target whose own lines say otherwise (docs/osquery-upgrade.md).
    if (notRunning) lines.push(`  not yet running the target (by their own lines): ${notRunning} host(s)`);
    lines.push(
      `observed: ${evaluation.observed.stage} of the stage's hosts on the target ` +
        `(need ${evaluation.observed.needed}); ` +
        `bake left ${evaluation.bakeLeftMinutes} min`,
    );
    lines.push(`next: ${evaluation.next.action} (${evaluation.next.reason})`);
  }
  if (r.halt)
    lines.push(
      `halted ${when(r.halt.at)} in stage ${r.halt.stage}: gate ${r.halt.gate} ${r.halt.value}` +
        `${r.halt.unit.startsWith('%') ? r.halt.unit : ` ${r.halt.unit}`} > ${r.halt.threshold}; ` +
        (r.halt.queries.length
          ? `queries ${r.halt.queries.join(', ')}`
          : `hosts ${r.halt.hosts.map((h) => `${h.zone}/${h.name}`).join(', ')}`),
    );
  lines.push('history:');
  for (const h of r.history)
    lines.push(
      `  ${when(h.at)} ${pad(h.action, 22)} ${pad(h.stage ?? '-', 8)} by ${h.by}${h.reason ? `: ${h.reason}` : ''}`,
    );
  return lines.join('\n');
}

export async function rollout(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      to: { type: 'string' },
      reason: { type: 'string' },
      by: { type: 'string' },
      project: { type: 'string', multiple: true },
    },
  });
  const { rolloutStatus, runCommand } = await import('../shared/usecases/rollout.js');
  if (sub === 'status') {
    const view = await rolloutStatus();
    if (!view.record?.staged) {
      console.log(`no rollout recorded; current version ${view.current.configVersion ?? 'none'}`);
      return 0;
    }
    console.log(formatRollout(view.record.staged, view.evaluation, view.current.configVersion));
    return 0;
  }
  if (sub !== 'promote' && sub !== 'pause' && sub !== 'resume' && sub !== 'rollback')
    throw new Error(`rollout: expected status, promote, pause, resume or rollback, not ${sub ?? 'nothing'}`);
  if (values.to && sub !== 'rollback') throw new Error('--to goes with rollback only');
  if (!values.reason?.trim()) throw new Error(`rollout ${sub}: say why with --reason (it is recorded with who did it)`);
  const actor = { by: values.by ?? process.env.USER ?? 'unknown', reason: values.reason };
  const result = await runCommand(sub, actor, { to: values.to, projects: values.project });
  console.log(
    `${sub}: rollout of ${result.version} is ${result.status}${result.stage ? ` at stage ${result.stage}` : ''}; ` +
      `current ${result.current ?? 'none'}`,
  );
  const z = result.zones;
  console.log(
    `zones: ${z.created.length} created, ${z.updated.length} updated, ${z.unchanged.length} unchanged` +
      (Object.keys(z.failed).length ? `, ${Object.keys(z.failed).length} failed (the next audit retries them)` : ''),
  );
  for (const [zone, reason] of Object.entries(z.failed)) console.error(`${zone}: ${reason.split('\n')[0]}`);
  return Object.keys(z.failed).length ? 1 : 0;
}
