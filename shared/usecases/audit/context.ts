// What every stage of one project's audit shares: the project, the clock, the settings, the mode.
import { reconcileSettings } from '../../config.js';
import { usageSnapshot, type Usage } from '../../metrics.js';
import type { AuditBasis } from '../../domain/audit.js';

export interface AuditProgress {
  phase: 'inventory' | 'reports' | 'reconcile' | 'write' | 'done';
  done: number;
  total: number;
}

export interface AuditOptions {
  now?: Date;
  /** Read and decide, but write and fix nothing: heal and write say what they would do. */
  dryRun?: boolean;
  cause?: string;
  /** The audit run this audit is a shard of: the status page's snapshot of the project is written. */
  runId?: string;
  onProgress?: (p: AuditProgress) => void;
}

export interface Audit extends AuditBasis {
  dryRun: boolean;
  runId: string | null;
  progress: (p: AuditProgress) => void;
  /** Milliseconds from the start at which each step finished (`mark`). */
  timings: Record<string, number>;
  mark: (step: string) => void;
  /** API calls and Firestore operations before the audit began (the audit's own are the difference). */
  usageBefore: Usage;
}

export function beginAudit(project: string, options: AuditOptions): Audit {
  const now = options.now ?? new Date();
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  return {
    project,
    now,
    cause: options.cause ?? `fleetAudit ${now.toISOString()}`,
    settings: reconcileSettings(),
    dryRun: options.dryRun ?? false,
    runId: options.runId ?? null,
    progress: options.onProgress ?? (() => undefined),
    timings,
    mark: (step) => void (timings[step] = Math.round(performance.now() - t0)),
    usageBefore: usageSnapshot(),
  };
}
