// The osquery OS policy assignment: one per zone, repository -> package -> service running, per OS family.
import type { protos } from '@google-cloud/os-config';
import type { OsFamily } from './vm.js';
import { objectNameOf } from '../osquery/bundle.js';
import type { RenderedConfig } from '../osquery/render.js';
import { PINNED_OSQUERY_VERSION, osqueryPackageVersion } from '../osquery/version.js';

export type OsqueryAssignment = protos.google.cloud.osconfig.v1.IOSPolicyAssignment;

export interface PolicySettings {
  optOutLabel: { key: string; value: string };
  disruptionPercent: number;
  minWaitSeconds: number;
  /**
   * The audience heartbeats' instance identity tokens are asked for (HEARTBEAT_TOKEN_AUDIENCE): a configured
   * policy keeps a token for it on the VM. Absent: no refresher (heartbeats go unsigned).
   */
  tokenAudience?: string;
}

export const APT_FAMILIES: readonly OsFamily[] = ['debian', 'ubuntu'];
export const YUM_FAMILIES: readonly OsFamily[] = ['rhel', 'rocky', 'centos', 'almalinux'];

export interface ConfigFile {
  /** Bundle-relative path, e.g. packs/network.conf. */
  source: string;
  vmPath: string;
  permissions: string;
  /** Inline content (<= 1024 characters) or a Cloud Storage object pinned by generation. */
  content?: string;
  gcs?: { bucket: string; object: string; generation: string };
}

/** A rendered configuration version, as the OS policy delivers it. */
export interface PolicyConfig {
  configVersion: string;
  /**
   * The osquery version the package is pinned to (the bundle's osquery.version). Absent on versions recorded
   * before pinning: then the pinned default of this repository (PINNED_OSQUERY_VERSION).
   */
  osqueryVersion?: string;
  files: ConfigFile[];
  /**
   * The pipe osqueryd creates and reads syslog from with this version's flags; null or absent (versions
   * recorded before syslog ingestion) when it ingests none: then rsyslog is never restarted for it.
   */
  syslogPipe?: string | null;
}

const IDENTITY_FILE = '/etc/osquery-orchestrator/identity.env';
const MARKER_DIR = '/var/lib/osquery-orchestrator';

const exec = (validate: string, enforce: string): Exec => ({
  validate: { interpreter: 'SHELL', script: validate },
  enforce: { interpreter: 'SHELL', script: enforce },
});

// systemd keeps osqueryd running between OS Config checks (Restart=on-failure in the packaged unit);
// the exec puts it back to enabled + active when someone stops or disables it. 100 = in desired state.
const SERVICE_RUNNING = exec(
  'systemctl is-enabled --quiet osqueryd && systemctl is-active --quiet osqueryd && exit 100\nexit 101',
  'systemctl enable --now osqueryd && exit 100\nexit 1',
);

/** Running, and restarted once whenever the configuration version changes (osquery reads flags only at start). */
function osquerydAtVersion(version: string): Exec {
  const marker = `${MARKER_DIR}/osqueryd.version`;
  return exec(
    'systemctl is-enabled --quiet osqueryd && systemctl is-active --quiet osqueryd && ' +
      `[ "$(cat ${marker} 2>/dev/null)" = "${version}" ] && exit 100\nexit 101`,
    `mkdir -p ${MARKER_DIR} && systemctl enable osqueryd && systemctl restart osqueryd && ` +
      `echo ${version} > ${marker} && exit 100\nexit 1`,
  );
}

/**
 * Host identity for the log shipper (docs/heartbeat.md: Host identity): the VM's instance id, project and zone
 * from the metadata server, as environment for fluentd, which stamps them on every Pub/Sub message.
 */
const HOST_IDENTITY = exec(
  `m() { curl -sf -H Metadata-Flavor:Google "http://metadata.google.internal/computeMetadata/v1/$1"; }
want="GCE_INSTANCE_ID=$(m instance/id)
GCE_PROJECT_ID=$(m project/project-id)
GCE_ZONE=$(m instance/zone | sed 's#.*/##')"
[ "$(cat ${IDENTITY_FILE} 2>/dev/null)" = "$want" ] && exit 100
exit 101`,
  `m() { curl -sf -H Metadata-Flavor:Google "http://metadata.google.internal/computeMetadata/v1/$1"; }
mkdir -p /etc/osquery-orchestrator /etc/systemd/system/fluentd.service.d || exit 1
printf 'GCE_INSTANCE_ID=%s\\nGCE_PROJECT_ID=%s\\nGCE_ZONE=%s\\n' \\
  "$(m instance/id)" "$(m project/project-id)" "$(m instance/zone | sed 's#.*/##')" > ${IDENTITY_FILE} || exit 1
printf '[Service]\\nEnvironmentFile=${IDENTITY_FILE}\\n' > /etc/systemd/system/fluentd.service.d/osquery-identity.conf
systemctl daemon-reload
exit 100`,
);

/** Where the refresher keeps the VM's instance identity token: root's alone (fluentd runs as root). */
export const IDENTITY_TOKEN_FILE = '/etc/osquery-orchestrator/identity.jwt';
const TOKEN_SCRIPT = '/etc/osquery-orchestrator/identity-token.sh';
const TOKEN_UNIT = 'osquery-identity-token';

/**
 * The instance identity token heartbeats carry (docs/heartbeat.md: Whose line is it): a systemd timer fetches
 * it from the metadata server every 30 minutes (a token lives an hour) into IDENTITY_TOKEN_FILE, which
 * fluentd adds to heartbeat lines only. The audience is part of the script, so a new audience rewrites it.
 */
function identityToken(audience: string): Exec {
  // URL-encoded for the query string; a quote would end the shell's literal.
  const aud = encodeURIComponent(audience).replace(/'/g, '%27');
  const marker = `AUD='${aud}'`;
  const unit = `/etc/systemd/system/${TOKEN_UNIT}`;
  // OS Config takes at most 1,024 characters a script: terse on purpose.
  return exec(
    `grep -qxF "${marker}" ${TOKEN_SCRIPT} 2>/dev/null && systemctl is-active --quiet ${TOKEN_UNIT}.timer && ` +
      `[ -s ${IDENTITY_TOKEN_FILE} ] && exit 100\nexit 101`,
    `mkdir -p /etc/osquery-orchestrator || exit 1
cat > ${TOKEN_SCRIPT} <<'EOF' || exit 1
${marker}
M=http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default
T=${IDENTITY_TOKEN_FILE}
umask 077
curl -sf -H Metadata-Flavor:Google -o $T.new "$M/identity?audience=$AUD&format=full" && mv -f $T.new $T
EOF
printf '[Service]\nType=oneshot\nExecStart=/bin/sh %s\n' ${TOKEN_SCRIPT} > ${unit}.service || exit 1
printf '[Timer]\nOnBootSec=10s\nOnUnitActiveSec=30min\n[Install]\nWantedBy=timers.target\n' > ${unit}.timer || exit 1
systemctl daemon-reload && systemctl enable --now ${TOKEN_UNIT}.timer && systemctl start ${TOKEN_UNIT}.service &&
  exit 100
exit 1`,
  );
}

/** The shipper re-reads its configuration (and identity.env) on restart: once per version. */
function shipperAtVersion(version: string): Exec {
  const marker = `${MARKER_DIR}/shipper.version`;
  return exec(
    `systemctl is-active --quiet fluentd && [ "$(cat ${marker} 2>/dev/null)" = "${version}" ] && exit 100\nexit 101`,
    `mkdir -p ${MARKER_DIR} /var/osquery && systemctl enable fluentd && ` +
      `systemctl restart fluentd && echo ${version} > ${marker} && exit 100\nexit 1`,
  );
}

/** How long the rsyslog restart waits for osqueryd to create the pipe (it does within seconds of starting). */
export const SYSLOG_PIPE_WAIT_SECONDS = 60;

/**
 * rsyslog opens its ompipe target only when it starts, and osqueryd creates the pipe only when it starts
 * (after the restart above, asynchronously): rsyslog is restarted once per version, after the pipe exists.
 * validate: in the desired state once the marker names this version, whatever happens after (never a
 * second restart). enforce: wait for the pipe (a FIFO), restart rsyslog, write the marker; no pipe within
 * the wait fails the resource, and OS Config's next check tries again.
 */
function rsyslogReadsPipe(version: string, pipe: string): Exec {
  const marker = `${MARKER_DIR}/rsyslog.version`;
  return exec(
    `[ "$(cat ${marker} 2>/dev/null)" = "${version}" ] && exit 100\nexit 101`,
    `i=0; while [ ! -p ${pipe} ] && [ $i -lt ${SYSLOG_PIPE_WAIT_SECONDS} ]; do sleep 1; i=$((i+1)); done\n` +
      `[ -p ${pipe} ] || { echo "no syslog pipe ${pipe}: osqueryd has not created it"; exit 1; }\n` +
      `mkdir -p ${MARKER_DIR} && systemctl restart rsyslog && echo ${version} > ${marker} && exit 100\nexit 1`,
  );
}

/** rsyslog reads the rule the bundle places: Debian 12's images do not ship it (Ubuntu's and RHEL's do). */
const RSYSLOG_PACKAGE = {
  apt: { id: 'install-rsyslog', pkg: { desiredState: 'INSTALLED', apt: { name: 'rsyslog' } } },
  yum: { id: 'install-rsyslog', pkg: { desiredState: 'INSTALLED', yum: { name: 'rsyslog' } } },
} as const;

/** packs/network.conf -> file-packs-network-conf */
export const resourceIdOf = (source: string) => `file-${source.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`.slice(0, 63);

function fileResource(f: ConfigFile): Resource {
  const file =
    f.content !== undefined
      ? { path: f.vmPath, state: 'CONTENTS_MATCH', permissions: f.permissions, content: f.content }
      : {
          path: f.vmPath,
          state: 'CONTENTS_MATCH',
          permissions: f.permissions,
          file: { gcs: { bucket: f.gcs!.bucket, object: f.gcs!.object, generation: f.gcs!.generation } },
        };
  return { id: resourceIdOf(f.source), file } as Resource;
}

/**
 * Files land before the services that read them restart: osquery's files, then rsyslog (installed) and the
 * shipper's files (its configuration and its filter plugin, fluentd/plugin/: the configuration names the
 * plugin, so both are in place before the one restart), the shipper, and last rsyslog's restart onto the
 * pipe osqueryd created.
 */
function configuredResources(config: PolicyConfig, manager: 'apt' | 'yum', tokenAudience?: string): Resource[] {
  const isShipper = (f: ConfigFile) => f.source.startsWith('rsyslog/') || f.source.startsWith('fluentd/');
  const rsyslogRules = config.files.some((f) => f.source.startsWith('rsyslog/'));
  return [
    ...config.files.filter((f) => !isShipper(f)).map(fileResource),
    { id: 'osqueryd-running', exec: osquerydAtVersion(config.configVersion) },
    { id: 'host-identity', exec: HOST_IDENTITY },
    ...(tokenAudience ? [{ id: 'identity-token', exec: identityToken(tokenAudience) }] : []),
    ...(rsyslogRules ? [RSYSLOG_PACKAGE[manager] as Resource] : []),
    ...config.files.filter(isShipper).map(fileResource),
    { id: 'shipper-running', exec: shipperAtVersion(config.configVersion) },
    ...(config.syslogPipe
      ? [{ id: 'rsyslog-reads-pipe', exec: rsyslogReadsPipe(config.configVersion, config.syslogPipe) }]
      : []),
  ];
}

type Exec = protos.google.cloud.osconfig.v1.OSPolicy.Resource.IExecResource;
type Resource = protos.google.cloud.osconfig.v1.OSPolicy.IResource;
type ResourceGroup = protos.google.cloud.osconfig.v1.OSPolicy.IResourceGroup;

/**
 * The osquery package pinned to one version (docs/osquery-upgrade.md). OS Config's `pkg` resource takes a name
 * only (INSTALLED keeps whatever version is there), so an exec holds the pin: validate compares the installed
 * version, enforce installs exactly that version, upgrading or downgrading. A rollback is a policy naming the
 * older version: apt needs --allow-downgrades, yum `downgrade` (install refuses an older version); both
 * repositories keep every release, so the older one stays installable. The unit file is the package's:
 * osqueryd-running restarts the new binary (its version is part of the configuration version).
 */
export function pinnedOsquery(version: string, manager: 'apt' | 'yum'): Resource {
  const pkgVersion = osqueryPackageVersion(version);
  if (manager === 'apt')
    return {
      id: 'install-osquery',
      exec: exec(
        `[ "$(dpkg-query -W -f='\${Version}' osquery 2>/dev/null)" = "${pkgVersion}" ] && exit 100\nexit 101`,
        'export DEBIAN_FRONTEND=noninteractive\napt-get update -qq\n' +
          `apt-get install -y -qq --allow-downgrades -o Dpkg::Options::=--force-confold osquery=${pkgVersion} ` +
          '&& exit 100\nexit 1',
      ),
    };
  const nevra = `osquery-${pkgVersion}.x86_64`;
  return {
    id: 'install-osquery',
    exec: exec(
      `[ "$(rpm -q --qf '%{VERSION}-%{RELEASE}' osquery 2>/dev/null)" = "${pkgVersion}" ] && exit 100\nexit 101`,
      `if rpm -q osquery >/dev/null 2>&1; then yum -y -q downgrade ${nevra} || yum -y -q install ${nevra}; ` +
        `else yum -y -q install ${nevra}; fi\n` +
        `[ "$(rpm -q --qf '%{VERSION}-%{RELEASE}' osquery)" = "${pkgVersion}" ] && exit 100\nexit 1`,
    ),
  };
}

/** The version a pinned install names (its validate script), or null for an unpinned `pkg` resource. */
export function pinnedVersionOf(resource: Resource): string | null {
  const script = resource.exec?.validate?.script ?? '';
  return /= "(\d+\.\d+\.\d+)-[^"]+" \]/.exec(script)?.[1] ?? null;
}

const APT_REPOSITORY: Resource = {
  id: 'osquery-repository',
  repository: {
    apt: {
      archiveType: 'DEB',
      uri: 'https://pkg.osquery.io/deb',
      distribution: 'deb',
      components: ['main'],
      gpgKey: 'https://pkg.osquery.io/deb/pubkey.gpg',
    },
  },
};
const YUM_REPOSITORY: Resource = {
  id: 'osquery-repository',
  repository: {
    yum: {
      id: 'osquery-s3-rpm-repo',
      displayName: 'osquery',
      baseUrl: 'https://pkg.osquery.io/rpm',
      gpgKeys: ['https://pkg.osquery.io/rpm/GPG'],
    },
  },
};

function group(
  families: readonly OsFamily[],
  repository: Resource,
  pkg: Resource,
  manager: 'apt' | 'yum',
  config?: PolicyConfig,
  tokenAudience?: string,
): ResourceGroup {
  return {
    inventoryFilters: families.map((osShortName) => ({ osShortName })),
    resources: [
      repository,
      pkg,
      ...(config
        ? configuredResources(config, manager, tokenAudience)
        : [{ id: 'osqueryd-running', exec: SERVICE_RUNNING }]),
    ],
  };
}

/** The OS policy id carries the configuration version, so every compliance report names the version it applies. */
export const policyIdFor = (configVersion?: string) => (configVersion ? `osquery-${configVersion}` : 'osquery');

/** The configuration version an OS policy id names, or null for the unconfigured base policy. */
export const configVersionOfPolicy = (policyId: string) => /^osquery-(.+)$/.exec(policyId)?.[1] ?? null;

/**
 * Pure: the assignment body (string enums; the client encodes them). Without a configuration it only
 * installs osquery and keeps osqueryd running; with one it also places every bundle file.
 */
export function buildOsqueryAssignment(settings: PolicySettings, config?: PolicyConfig): OsqueryAssignment {
  // Without a configuration (or one recorded before pinning) osquery is still pinned: never "whatever is newest".
  const osqueryVersion = config?.osqueryVersion ?? PINNED_OSQUERY_VERSION;
  return {
    description:
      `osquery ${config ? `configuration ${config.configVersion}` : 'installed, no configuration published'}. ` +
      'Managed by osquery-orchestrator: edits are overwritten.',
    osPolicies: [
      {
        id: policyIdFor(config?.configVersion),
        description:
          `Install osquery ${osqueryVersion} from pkg.osquery.io, place its configuration, ` +
          'keep osqueryd and the log shipper running',
        mode: 'ENFORCEMENT',
        // Other OSes match no group: reported, not failed.
        allowNoResourceGroupMatch: true,
        resourceGroups: [
          group(
            APT_FAMILIES,
            APT_REPOSITORY,
            pinnedOsquery(osqueryVersion, 'apt'),
            'apt',
            config,
            settings.tokenAudience,
          ),
          group(
            YUM_FAMILIES,
            YUM_REPOSITORY,
            pinnedOsquery(osqueryVersion, 'yum'),
            'yum',
            config,
            settings.tokenAudience,
          ),
        ],
      },
    ],
    instanceFilter: {
      // Label sets are ORed: either label excludes the VM.
      exclusionLabels: [
        { labels: { 'goog-gke-node': '' } },
        { labels: { [settings.optOutLabel.key]: settings.optOutLabel.value } },
      ],
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
export function assignmentSelects(
  vm: { labels: Record<string, string>; os: OsFamily },
  settings: Pick<PolicySettings, 'optOutLabel'>,
): boolean {
  if ('goog-gke-node' in vm.labels) return false;
  if (vm.labels[settings.optOutLabel.key] === settings.optOutLabel.value) return false;
  return vm.os === 'unknown' || APT_FAMILIES.includes(vm.os) || YUM_FAMILIES.includes(vm.os);
}

/** The policy's view of a rendered version, once its large files have Cloud Storage generations. */
export function policyConfigOf(
  rendered: RenderedConfig,
  bucket: string,
  generations: Record<string, string>,
  missing: 'throw' | 'blank' = 'throw',
): PolicyConfig {
  const files: ConfigFile[] = rendered.files.map((f) => {
    const base = { source: f.source, vmPath: f.vmPath, permissions: f.permissions };
    if (!f.viaStorage) return { ...base, content: f.content };
    const generation = generations[f.source];
    if (!generation && missing === 'throw')
      throw new Error(`${f.source} of ${rendered.configVersion} has no Cloud Storage generation: publish it first`);
    return {
      ...base,
      gcs: { bucket, object: objectNameOf(rendered.configVersion, f.source), generation: generation ?? '' },
    };
  });
  return {
    configVersion: rendered.configVersion,
    osqueryVersion: rendered.osqueryVersion,
    files,
    syslogPipe: rendered.syslogPipe,
  };
}
