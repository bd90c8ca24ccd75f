// Pure decisions about whether a VM must run osquery and whether OS Config can put it there.
import type { OsFamily, Vm } from './vm.js';

export interface ScopeSettings {
  optOutLabel: { key: string; value: string };
}

/**
 * OS families osquery cannot run on (for now): Windows is not supported by this rollout; COS has no package manager.
 */
export const UNSUPPORTED_OS: ReadonlySet<OsFamily> = new Set(['windows', 'cos']);

export type ScopeDecision = { inScope: true } | { inScope: false; reason: string };

export function isGkeNode(vm: Pick<Vm, 'labels' | 'metadata'>): boolean {
  return 'goog-gke-node' in vm.labels || 'kube-env' in vm.metadata || 'cluster-name' in vm.metadata;
}

export function decideScope(vm: Pick<Vm, 'labels' | 'metadata' | 'os'>, settings: ScopeSettings): ScopeDecision {
  if (isGkeNode(vm)) return { inScope: false, reason: 'gke-node' };
  if (vm.labels[settings.optOutLabel.key] === settings.optOutLabel.value)
    return { inScope: false, reason: 'opt-out-label' };
  if (UNSUPPORTED_OS.has(vm.os)) return { inScope: false, reason: `unsupported-os:${vm.os}` };
  return { inScope: true };
}

export type PrerequisiteCheck =
  | { ok: true }
  /** `remediable`: the setting is absent rather than deliberately off, so the orchestrator may set it. */
  | { ok: false; reason: 'osconfig-disabled' | 'no-service-account'; remediable: boolean };

/** Metadata values OS Config treats as "on". */
const truthy = (v: string | undefined) => v !== undefined && /^(true|1|yes)$/i.test(v.trim());

/** Whether the instance itself decides enable-osconfig, so project metadata need not be read. */
export const instanceDecidesOsConfig = (vm: Pick<Vm, 'metadata'>) => 'enable-osconfig' in vm.metadata;

/**
 * enable-osconfig at instance level wins over project level; an attached service account is required
 * for the agent to authenticate. `projectMetadata` is only consulted when the instance does not decide.
 */
export function checkPrerequisites(
  vm: Pick<Vm, 'metadata' | 'serviceAccounts'>,
  projectMetadata: Record<string, string>,
): PrerequisiteCheck {
  if (vm.serviceAccounts.length === 0) return { ok: false, reason: 'no-service-account', remediable: false };
  const value = instanceDecidesOsConfig(vm) ? vm.metadata['enable-osconfig'] : projectMetadata['enable-osconfig'];
  if (truthy(value)) return { ok: true };
  return { ok: false, reason: 'osconfig-disabled', remediable: value === undefined };
}
