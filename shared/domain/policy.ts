// The osquery OS policy assignment: one per zone, repository -> package -> service running, per OS family.
import type { protos } from '@google-cloud/os-config';
import type { OsFamily } from './vm.js';

export type OsqueryAssignment = protos.google.cloud.osconfig.v1.IOSPolicyAssignment;

export interface PolicySettings {
  optOutLabel: { key: string; value: string };
  disruptionPercent: number;
  minWaitSeconds: number;
}

export const APT_FAMILIES: readonly OsFamily[] = ['debian', 'ubuntu'];
export const YUM_FAMILIES: readonly OsFamily[] = ['rhel', 'rocky', 'centos', 'almalinux'];

// systemd keeps osqueryd running between OS Config checks (Restart=on-failure in the packaged unit);
// the exec puts it back to enabled + active when someone stops or disables it. 100 = in desired state.
const SERVICE_RUNNING: Exec = {
  validate: {
    interpreter: 'SHELL',
    script: 'systemctl is-enabled --quiet osqueryd && systemctl is-active --quiet osqueryd && exit 100\nexit 101',
  },
  enforce: { interpreter: 'SHELL', script: 'systemctl enable --now osqueryd && exit 100\nexit 1' },
};

type Exec = protos.google.cloud.osconfig.v1.OSPolicy.Resource.IExecResource;
type ResourceGroup = protos.google.cloud.osconfig.v1.OSPolicy.IResourceGroup;

const APT_GROUP: ResourceGroup = {
  inventoryFilters: APT_FAMILIES.map((osShortName) => ({ osShortName })),
  resources: [
    {
      id: 'osquery-repository',
      repository: {
        apt: { archiveType: 'DEB', uri: 'https://pkg.osquery.io/deb', distribution: 'deb', components: ['main'], gpgKey: 'https://pkg.osquery.io/deb/pubkey.gpg' },
      },
    },
    { id: 'install-osquery', pkg: { desiredState: 'INSTALLED', apt: { name: 'osquery' } } },
    { id: 'osqueryd-running', exec: SERVICE_RUNNING },
  ],
};

const YUM_GROUP: ResourceGroup = {
  inventoryFilters: YUM_FAMILIES.map((osShortName) => ({ osShortName })),
  resources: [
    {
      id: 'osquery-repository',
      repository: {
        yum: { id: 'osquery-s3-rpm-repo', displayName: 'osquery', baseUrl: 'https://pkg.osquery.io/rpm', gpgKeys: ['https://pkg.osquery.io/rpm/GPG'] },
      },
    },
    { id: 'install-osquery', pkg: { desiredState: 'INSTALLED', yum: { name: 'osquery' } } },
    { id: 'osqueryd-running', exec: SERVICE_RUNNING },
  ],
};

/** Pure: the assignment body (string enums; the client encodes them). */
export function buildOsqueryAssignment(settings: PolicySettings): OsqueryAssignment {
  return {
    description: 'osquery installed and osqueryd running. Managed by osquery-orchestrator: edits are overwritten.',
    osPolicies: [
      {
        id: 'osquery',
        description: 'Install osquery from pkg.osquery.io and keep osqueryd running',
        mode: 'ENFORCEMENT',
        // Other OSes match no group: reported, not failed.
        allowNoResourceGroupMatch: true,
        resourceGroups: [APT_GROUP, YUM_GROUP],
      },
    ],
    instanceFilter: {
      // Label sets are ORed: either label excludes the VM.
      exclusionLabels: [{ labels: { 'goog-gke-node': '' } }, { labels: { [settings.optOutLabel.key]: settings.optOutLabel.value } }],
      inventories: [...APT_FAMILIES, ...YUM_FAMILIES].map((osShortName) => ({ osShortName })),
    },
    rollout: {
      disruptionBudget: { percent: settings.disruptionPercent },
      minWaitDuration: { seconds: settings.minWaitSeconds },
    },
  };
}

/**
 * Pure: whether the assignment's instance filter selects a VM. An out-of-scope VM it would still select
 * (a GKE node recognised only by metadata) must be labelled out, or OS Config would install osquery on it.
 */
export function assignmentSelects(vm: { labels: Record<string, string>; os: OsFamily }, settings: Pick<PolicySettings, 'optOutLabel'>): boolean {
  if ('goog-gke-node' in vm.labels) return false;
  if (vm.labels[settings.optOutLabel.key] === settings.optOutLabel.value) return false;
  return vm.os === 'unknown' || APT_FAMILIES.includes(vm.os) || YUM_FAMILIES.includes(vm.os);
}
