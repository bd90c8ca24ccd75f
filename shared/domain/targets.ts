// What TARGET_PROJECTS may name, and when a project is left out of an audit. Pure.
import { isProjectId } from './ids.js';

/** A folder or organisation target: its active projects, those of its subfolders included, are audited. */
const PARENT = /^(?:folders|organizations)\/[1-9][0-9]{0,19}$/;

export const isTargetParent = (target: string): boolean => PARENT.test(target);
/** A project id, `folders/N` or `organizations/N`. */
export const isTarget = (target: string): boolean => isProjectId(target) || isTargetParent(target);

/** The APIs an audit of a project calls: without either there is nothing to audit there. */
export const REQUIRED_SERVICES = ['compute.googleapis.com', 'osconfig.googleapis.com'] as const;

/**
 * Pure: why a project is skipped, from Service Usage's states of the required services (service name ->
 * state), or null when it is audited. A service Service Usage did not report is not assumed off.
 */
export function skipReason(states: Readonly<Record<string, string>>): string | null {
  const off = REQUIRED_SERVICES.filter((s) => states[s] !== undefined && states[s] !== 'ENABLED');
  return off.length === 0 ? null : `${off.join(' and ')} ${off.length === 1 ? 'is' : 'are'} not enabled`;
}
