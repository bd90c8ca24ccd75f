// Contract tests of the Terraform deployment (infra/terraform) against the code: entry points,
// triggers, settings, topics, IAM (shared/permissions.ts), Firestore indexes, monitoring. Offline: the
// HCL is parsed with @cdktf/hcl2json (no provider download); `terraform fmt -check` runs when the
// terraform binary is on PATH.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../shared/config.js';
import { FUNCTION_PERMISSIONS, PUBLISHER_PERMISSIONS } from '../../shared/permissions.js';
import { RUN_CLOSED_MESSAGE, mergeFleetStatus, summarizeProject } from '../../shared/domain/status.js';
import { LOG_HEARTBEAT_FILTER } from '../../shared/osquery/log-routing.js';
import { LIFECYCLE_METHODS } from '../../shared/domain/audit-event.js';
import { HOST_STATES } from '../../shared/domain/host.js';
import { haltReason } from '../../shared/domain/rollout.js';
import { COMPUTE_AUDIT_LOG_TOPIC } from '../../infra/local/functions.js';
import { parseFilter } from '../../infra/local/pubsub-filter.js';

const root = path.resolve(import.meta.dirname, '../..');
const tfDir = path.join(root, 'infra/terraform');

type Block = Record<string, unknown>;

interface Tf {
  resources: Map<string, Block>;
  data: Map<string, Block>;
  locals: Record<string, unknown>;
  variables: Record<string, Block>;
  texts: Map<string, string>;
}

/** Settings the functions deliberately do not get: local simulator only, set by the runtime, CLI only. */
const NOT_FOR_FUNCTIONS = ['GOOGLE_API_ENDPOINT', 'OSQUERY_SCHEMA'];

/** The trigger of each entry point (docs/contracts.md): vmLifecycle's methods are the code's own list. */
const AUDIT_LOG_TRIGGERS: Record<string, readonly string[]> = { vmLifecycle: LIFECYCLE_METHODS };
const PUBSUB_TRIGGERS: Record<string, string> = {
  fleetAudit: 'AUDIT_TICK_TOPIC',
  fleetAuditShard: 'AUDIT_SHARD_TOPIC',
  monitoringAlert: 'INCIDENT_TOPIC',
  logHeartbeatDrain: 'LOG_DRAIN_TICK_TOPIC',
};
/**
 * HTTP entry points: no trigger and no retry (a person reloads the page), reached from browsers, so not
 * internal-only: private by Cloud Run invoker IAM for listed viewers, or IAP (checked below).
 */
const HTTP_FUNCTIONS: readonly string[] = ['fleetStatus'];

/** Entry points fed by a filtered push subscription of their own (an Eventarc trigger cannot filter): topic setting and filter. */
const FILTERED_PUSH: Record<string, { setting: string; filter: string }> = {
  logHeartbeat: { setting: 'LOG_TOPIC', filter: LOG_HEARTBEAT_FILTER },
};
/** var.log_heartbeat_delivery: logHeartbeat (push) or logHeartbeatDrain (pull), never both. */
const PUSH_ONLY = '${local.log_heartbeat_push ? 1 : 0}';
const PULL_ONLY = '${local.log_heartbeat_pull ? 1 : 0}';
const AUDIT_LOG_TYPE = 'google.cloud.audit.log.v1.written';
const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

// --- Loading -------------------------------------------------------------------------------------

async function loadTerraform(): Promise<Tf> {
  const tf: Tf = { resources: new Map(), data: new Map(), locals: {}, variables: {}, texts: new Map() };
  const files = readdirSync(tfDir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  for (const file of files) {
    const text = readFileSync(path.join(tfDir, file), 'utf8');
    tf.texts.set(file, text);
    const json = (await parse(file, text)) as Record<string, unknown>;
    const add = (into: Map<string, Block>, kinds: unknown, what: string) => {
      for (const [type, byName] of Object.entries((kinds ?? {}) as Record<string, Record<string, Block[]>>)) {
        for (const [name, blocks] of Object.entries(byName)) {
          const key = `${type}.${name}`;
          assert.not.ok(into.has(key), `${what} ${key} is declared twice (${file})`);
          assert.is(blocks.length, 1, `${what} ${key}`);
          into.set(key, blocks[0]!);
        }
      }
    };
    add(tf.resources, json.resource, 'resource');
    add(tf.data, json.data, 'data source');
    for (const block of (json.locals ?? []) as Block[]) {
      for (const [k, v] of Object.entries(block)) {
        assert.not.ok(k in tf.locals, `local.${k} is declared twice (${file})`);
        tf.locals[k] = v;
      }
    }
    for (const [name, blocks] of Object.entries((json.variable ?? {}) as Record<string, Block[]>)) {
      assert.not.ok(name in tf.variables, `var.${name} is declared twice`);
      tf.variables[name] = blocks[0]!;
    }
  }
  return tf;
}

/** Every .ts file under a directory of the repository. */
function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
    if (f.endsWith('.ts')) out.set(path.join(dir, f), readFileSync(path.join(root, dir, f), 'utf8'));
  }
  return out;
}

/** Entry points registered in functions/index.ts (CloudEvent and HTTP). */
function entryPoints(kind: 'event' | 'http' | 'any' = 'any'): string[] {
  const text = readFileSync(path.join(root, 'functions/index.ts'), 'utf8');
  // Event functions register through eventFunction (served as HTTP, they read their CloudEvent themselves).
  const re = /(functions\.cloudEvent|functions\.http|eventFunction)\(\s*['"]([A-Za-z0-9_]+)['"]/g;
  const kindOf = (registrar: string) => (registrar === 'functions.http' ? 'http' : 'event');
  return [...text.matchAll(re)].filter((m) => kind === 'any' || kindOf(m[1]!) === kind).map((m) => m[2]!);
}

/** Keys of the zod `schema` object in shared/config.ts. */
function schemaKeys(): string[] {
  const text = readFileSync(path.join(root, 'shared/config.ts'), 'utf8');
  const start = text.indexOf('const schema = z.object({');
  assert.ok(start >= 0, 'shared/config.ts declares `const schema = z.object({`');
  const end = text.indexOf('\n});', start);
  assert.ok(end > start, 'the schema object ends with `});`');
  return [...text.slice(start, end).matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
}

/** Environment variables read directly (process.env.NAME) by the deployed code. */
function directEnvReads(): Set<string> {
  const names = new Set<string>();
  for (const dir of ['functions', 'shared']) {
    for (const text of sources(dir).values())
      for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1]!);
  }
  return names;
}

// --- Expressions ---------------------------------------------------------------------------------

const RESOURCE_REF = /(?<![\w.])(google_[a-z0-9_]+)\.([a-z0-9_]+)/g;
const VAR_REF = /(?<![\w.])var\.([a-z0-9_]+)/g;
const LOCAL_REF = /(?<![\w.])local\.([a-z0-9_]+)/g;
const DATA_REF = /(?<![\w.])data\.(google_[a-z0-9_]+)\.([a-z0-9_]+)/g;

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v ?? null));

interface Refs {
  resources: Set<string>;
  vars: Set<string>;
  locals: Set<string>;
}

/** References of a value, following locals transitively. */
function refsOf(tf: Tf, value: unknown): Refs {
  const refs: Refs = { resources: new Set(), vars: new Set(), locals: new Set() };
  const visit = (v: unknown) => {
    const s = text(v);
    for (const m of s.matchAll(RESOURCE_REF)) refs.resources.add(`${m[1]}.${m[2]}`);
    for (const m of s.matchAll(VAR_REF)) refs.vars.add(m[1]!);
    for (const m of s.matchAll(LOCAL_REF)) {
      if (refs.locals.has(m[1]!)) continue;
      refs.locals.add(m[1]!);
      visit(tf.locals[m[1]!]);
    }
  };
  visit(value);
  return refs;
}

/** The google_pubsub_topic resources a value designates: referenced directly, or named by a variable it uses. */
function topicsOf(tf: Tf, value: unknown): string[] {
  const refs = refsOf(tf, value);
  const out = new Set<string>();
  for (const r of refs.resources) if (r.startsWith('google_pubsub_topic.')) out.add(r);
  for (const [key, topic] of tf.resources) {
    if (!key.startsWith('google_pubsub_topic.')) continue;
    const named = refsOf(tf, topic.name);
    if ([...named.vars].some((v) => refs.vars.has(v))) out.add(key);
  }
  return [...out].sort();
}

/** The value of a local that is a literal (list, map, string). */
function local(tf: Tf, name: string): unknown {
  assert.ok(name in tf.locals, `local.${name} exists`);
  const v = tf.locals[name];
  const m = typeof v === 'string' ? /^\$\{local\.([a-z0-9_]+)\}$/.exec(v) : null;
  return m ? local(tf, m[1]!) : v;
}

/** A literal, or the default of the variable / the local it is (possibly through tostring or a resource's name). */
function staticValue(tf: Tf, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const inner = /^\$\{(.*)\}$/s.exec(v)?.[1];
  if (inner === undefined) return v.includes('${') ? undefined : v;
  const plain = /^(?:tostring\()?([a-z0-9_.]+)\)?$/.exec(inner.trim())?.[1];
  if (!plain) return undefined;
  const [head, a, b] = plain.split('.');
  if (head === 'var' && a) return tf.variables[a]?.default;
  if (head === 'local' && a) return staticValue(tf, tf.locals[a]);
  if (head?.startsWith('google_') && a && b) return staticValue(tf, tf.resources.get(`${head}.${a}`)?.[b]);
  return undefined;
}

/** The one nested block `key` of a block. */
function one(block: Block | undefined, key: string, where = ''): Block {
  const list = block?.[key] as Block[] | undefined;
  assert.ok(Array.isArray(list) && list.length === 1, `${where} has one ${key} block`);
  return list[0]!;
}

const resourcesOf = (tf: Tf, type: string) => [...tf.resources].filter(([k]) => k.startsWith(`${type}.`));

/** The function resources by entry point. */
function functionsByEntryPoint(tf: Tf): Map<string, [string, Block]> {
  const out = new Map<string, [string, Block]>();
  for (const [key, fn] of resourcesOf(tf, 'google_cloudfunctions2_function')) {
    const ep = one(fn, 'build_config', key).entry_point as string;
    assert.not.ok(out.has(ep), `entry point ${ep} is deployed twice`);
    out.set(ep, [key, fn]);
  }
  return out;
}

/** The function's event trigger (never conditional: a dynamic block would make it so). */
function triggerOf(fn: Block, key: string): { trigger: Block; condition: string | null } {
  assert.not.ok((fn.dynamic as Block | undefined)?.event_trigger, `${key}: the trigger is not conditional`);
  return { trigger: one(fn, 'event_trigger', key), condition: null };
}

/** The service account resource key a value names (`${google_service_account.X.email}`). */
function serviceAccountOf(v: unknown): string | null {
  const m = /^\$\{google_service_account\.([a-z0-9_]+)\.(?:email|id|name)\}$/.exec(text(v));
  return m ? `google_service_account.${m[1]}` : null;
}

interface Binding {
  key: string;
  type: string;
  block: Block;
}

/** Every IAM member/binding resource whose member is the given service account. */
function bindingsOf(tf: Tf, saKey: string): Binding[] {
  const email = `\${${saKey}.email}`;
  return [...tf.resources]
    .filter(([k]) => /_iam_(member|binding|policy)\./.test(k))
    .filter(([, b]) =>
      [b.member, ...((b.members as unknown[]) ?? [])].some((m) => text(m) === `serviceAccount:${email}`),
    )
    .map(([key, block]) => ({ key, type: key.split('.')[0]!, block }));
}

/** Splits a service account's bindings into target custom roles, Firestore, topic publisher and the rest. */
function classify(tf: Tf, bindings: Binding[]) {
  const customTarget: { binding: Binding; role: Block; roleKey: string }[] = [];
  /** Bindings on target folders and organisations of an organisation-level custom role. */
  const customParent: { binding: Binding; role: Block; roleKey: string }[] = [];
  const firestore: Binding[] = [];
  const firestoreRead: Binding[] = [];
  const publishesTo: string[] = [];
  const subscribesTo: string[] = [];
  const other: Binding[] = [];
  for (const b of bindings) {
    const role = text(b.block.role);
    const custom = /^\$\{(google_project_iam_custom_role\.[a-z0-9_]+)\[each\.value\]\.(?:name|id)\}$/.exec(role);
    const orgRole = /^\$\{(google_organization_iam_custom_role\.[a-z0-9_]+)\[0\]\.(?:name|id)\}$/.exec(role);
    if (b.type === 'google_project_iam_member' && custom) {
      customTarget.push({ binding: b, role: tf.resources.get(custom[1]!)!, roleKey: custom[1]! });
    } else if ((b.type === 'google_folder_iam_member' || b.type === 'google_organization_iam_member') && orgRole) {
      customParent.push({ binding: b, role: tf.resources.get(orgRole[1]!)!, roleKey: orgRole[1]! });
    } else if (
      b.type === 'google_project_iam_member' &&
      role === 'roles/datastore.user' &&
      b.block.project === '${var.project_id}'
    ) {
      firestore.push(b);
    } else if (
      b.type === 'google_project_iam_member' &&
      role === 'roles/datastore.viewer' &&
      b.block.project === '${var.project_id}'
    ) {
      firestoreRead.push(b);
    } else if (b.type === 'google_pubsub_topic_iam_member' && role === 'roles/pubsub.publisher') {
      const topics = topicsOf(tf, b.block.topic);
      assert.is(topics.length, 1, `${b.key} names one topic`);
      publishesTo.push(topics[0]!);
    } else if (b.type === 'google_pubsub_subscription_iam_member' && role === 'roles/pubsub.subscriber') {
      const subscription = /^\$\{(google_pubsub_subscription\.[a-z0-9_]+)(?:\[0\])?\.(?:name|id)\}$/.exec(
        text(b.block.subscription),
      )?.[1];
      assert.ok(subscription, `${b.key} names one subscription`);
      subscribesTo.push(subscription!);
    } else other.push(b);
  }
  return {
    customTarget,
    customParent,
    firestore,
    firestoreRead,
    publishesTo: publishesTo.sort(),
    subscribesTo: subscribesTo.sort(),
    other,
  };
}

/** A custom role made in, and bound in, every target project, with exactly `permissions`. */
function assertTargetRole(
  tf: Tf,
  entries: ReturnType<typeof classify>['customTarget'],
  permissions: readonly string[],
  who: string,
) {
  if (permissions.length === 0) {
    assert.is(entries.length, 0, `${who} needs nothing in target projects, so has no target role`);
    return;
  }
  assert.is(entries.length, 1, `${who} has one custom role binding in the target projects`);
  const { binding, role, roleKey } = entries[0]!;
  assert.ok(role, `${roleKey} exists`);
  assert.equal(
    [...(role.permissions as string[])].sort(),
    [...permissions].sort(),
    `${roleKey}: the permissions of ${who}`,
  );
  assert.is(
    new Set(role.permissions as string[]).size,
    (role.permissions as string[]).length,
    `${roleKey} lists no permission twice`,
  );
  for (const [what, block] of [
    [roleKey, role],
    [binding.key, binding.block],
  ] as const) {
    assert.is(block.for_each, '${toset(local.target_project_ids)}', `${what} is made in every listed target project`);
    assert.is(block.project, '${each.value}', `${what} lives in the target project`);
  }
}

/**
 * On each target folder and organisation: one organisation-level custom role with exactly the target
 * permissions (inherited by every project below) and the parent ones, bound on every target folder and
 * every target organisation, made only when target_projects names one.
 */
function assertParentRole(
  tf: Tf,
  entries: ReturnType<typeof classify>['customParent'],
  permissions: readonly string[],
  who: string,
) {
  if (permissions.length === 0) {
    assert.is(entries.length, 0, `${who} needs nothing under target folders, so has no role there`);
    return;
  }
  assert.equal(
    entries.map((e) => [e.binding.type, e.binding.block.for_each]).sort(),
    [
      ['google_folder_iam_member', '${toset(local.target_folders)}'],
      ['google_organization_iam_member', '${toset(local.target_organizations)}'],
    ],
    `${who}: bound on every target folder and organisation`,
  );
  assert.is(entries[0]!.roleKey, entries[1]!.roleKey, `${who}: one role on both`);
  const { role, roleKey } = entries[0]!;
  assert.equal(
    [...(role.permissions as string[])].sort(),
    [...permissions].sort(),
    `${roleKey}: the permissions of ${who}`,
  );
  assert.is(
    role.count,
    '${local.has_target_parents ? 1 : 0}',
    `${roleKey} exists only for folder or organisation targets`,
  );
  assert.is(role.org_id, '${var.organization_id}', `${roleKey} is defined in the organisation`);
  const folder = entries.find((e) => e.binding.type === 'google_folder_iam_member')!.binding.block;
  const org = entries.find((e) => e.binding.type === 'google_organization_iam_member')!.binding.block;
  assert.is(folder.folder, '${each.value}', `${who}: on the folder itself`);
  assert.is(org.org_id, '${each.value}', `${who}: on the organisation itself`);
}

/** The setting whose value designates a topic, per function_settings. */
function settingTopics(tf: Tf, setting: string): string[] {
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  assert.ok(setting in settings, `${setting} is a function setting`);
  const topics = topicsOf(tf, settings[setting]);
  assert.is(topics.length, 1, `${setting} designates one google_pubsub_topic (got ${topics.join(', ') || 'none'})`);
  return topics;
}

// --- Tests ---------------------------------------------------------------------------------------

const t = suite<{ tf: Tf }>('terraform');
t.before(async (ctx) => {
  ctx.tf = await loadTerraform();
});

t('every reference resolves: variables, locals, resources, data sources', ({ tf }) => {
  const values: unknown[] = [...tf.resources.values(), ...tf.data.values(), ...Object.values(tf.locals)];
  const all = values.map(text).join('\n');
  for (const m of all.matchAll(VAR_REF)) assert.ok(m[1]! in tf.variables, `var.${m[1]} is declared`);
  for (const m of all.matchAll(LOCAL_REF)) assert.ok(m[1]! in tf.locals, `local.${m[1]} is declared`);
  for (const m of all.matchAll(RESOURCE_REF))
    assert.ok(tf.resources.has(`${m[1]}.${m[2]}`), `${m[1]}.${m[2]} is declared`);
  for (const m of all.matchAll(DATA_REF)) assert.ok(tf.data.has(`${m[1]}.${m[2]}`), `data.${m[1]}.${m[2]} is declared`);
  assert.ok(tf.resources.size > 50, `a full deployment (${tf.resources.size} resources)`);
});

t('the google provider is pinned to ~> 6 and state lives in a gcs backend', ({ tf }) => {
  const versions = tf.texts.get('versions.tf')!;
  assert.match(versions, /source\s*=\s*"hashicorp\/google"/);
  assert.match(versions, /version\s*=\s*"~> 6\.0"/);
  assert.match(versions, /backend\s+"gcs"/);
});

t('every entry point in functions/index.ts is deployed; every deployed entry point is in permissions.ts', ({ tf }) => {
  const deployed = functionsByEntryPoint(tf);
  const registered = entryPoints();
  assert.ok(registered.length >= 3, `functions/index.ts registers entry points (${registered.join(', ')})`);
  for (const ep of registered) assert.ok(deployed.has(ep), `${ep} has a google_cloudfunctions2_function`);
  assert.equal(
    [...deployed.keys()].sort(),
    Object.keys(FUNCTION_PERMISSIONS).sort(),
    'the functions are exactly the ones permissions.ts describes',
  );
  for (const ep of deployed.keys())
    assert.ok(
      ep in AUDIT_LOG_TRIGGERS || ep in PUBSUB_TRIGGERS || ep in FILTERED_PUSH || HTTP_FUNCTIONS.includes(ep),
      `${ep} has a known trigger or is a known HTTP function`,
    );
  assert.equal(entryPoints('http'), [...HTTP_FUNCTIONS], 'the HTTP functions registered are the ones checked below');
});

t('each function: nodejs22, internal ingress, bounded instances, its own service account, every setting', ({ tf }) => {
  const runtimeAccounts = new Set<string>();
  for (const [ep, [key, fn]] of functionsByEntryPoint(tf)) {
    const build = one(fn, 'build_config', key);
    const service = one(fn, 'service_config', key);
    assert.is(build.runtime, 'nodejs22', `${key} runtime`);
    const storage = one(one(build, 'source', key), 'storage_source', key);
    assert.equal(
      refsOf(tf, storage).vars,
      new Set(['function_source_bucket', 'function_source_object']),
      `${key} builds the uploaded zip`,
    );
    if (HTTP_FUNCTIONS.includes(ep))
      assert.is(
        service.ingress_settings,
        '${var.status_page_iap ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"}',
        `${key}: browsers reach it directly (IAM) or through IAP's load balancer only`,
      );
    else assert.is(service.ingress_settings, 'ALLOW_INTERNAL_ONLY', `${key} ingress`);
    const max = /^\$\{var\.([a-z0-9_]+)\}$/.exec(text(service.max_instance_count))?.[1];
    assert.ok(max, `${key} max_instance_count comes from a variable`);
    const maxDefault = tf.variables[max!]?.default;
    assert.ok(typeof maxDefault === 'number' && maxDefault >= 1, `${key}: var.${max} defaults to a positive number`);
    const sa = serviceAccountOf(service.service_account_email);
    assert.ok(sa, `${key} runs as a google_service_account`);
    assert.not.ok(runtimeAccounts.has(sa!), `${key} has a service account of its own (${sa})`);
    runtimeAccounts.add(sa!);
    assert.is(service.environment_variables, '${local.function_environment}', `${key} gets the shared settings`);
    assert.ok(ep.length > 0);
  }
  for (const shared of [
    'google_service_account.trigger',
    'google_service_account.publisher',
    'google_service_account.build',
  ]) {
    assert.not.ok(runtimeAccounts.has(shared), `${shared} runs no function`);
  }
});

t('each function has the smallest Cloud Functions memory size of at least twice its measured peak', ({ tf }) => {
  // The peaks are `npm run bench` figures recorded in functions.tf; this checks the sizes follow them.
  const peaks = local(tf, 'function_peak_mb') as Record<string, unknown>;
  const sizes = local(tf, 'function_memory') as Record<string, unknown>;
  const SIZES_MIB = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
  const mib = (v: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(v);
    assert.ok(m, `${v} is a size in Mi or Gi`);
    return Number(m![1]) * (m![2] === 'Gi' ? 1024 : 1);
  };
  for (const [ep, [key, fn]] of functionsByEntryPoint(tf)) {
    const service = one(fn, 'service_config', key);
    assert.is(
      service.available_memory,
      `\${local.function_memory.${ep}}`,
      `${key} takes its size from function_memory`,
    );
    const peak = peaks[ep];
    assert.ok(typeof peak === 'number' && peak > 0, `${ep} has a measured peak`);
    const expected = SIZES_MIB.find((size) => size >= 2 * (peak as number))!;
    assert.is(mib(String(sizes[ep])), expected, `${ep}: peak ${peak} MB x 2 -> ${expected} MiB`);
  }
  assert.equal(Object.keys(peaks).sort(), [...functionsByEntryPoint(tf).keys()].sort(), 'a peak for each function');
});

t('vmLifecycle: one audit-log trigger per method name the code acts on, retried, global', ({ tf }) => {
  for (const [ep, methods] of Object.entries(AUDIT_LOG_TRIGGERS)) {
    const [key, fn] = functionsByEntryPoint(tf).get(ep)!;
    const seen: string[] = [];
    const { trigger, condition } = triggerOf(fn, key);
    assert.is(condition, null, `${key} always has its trigger`);
    assert.is(staticValue(tf, trigger.event_type), AUDIT_LOG_TYPE);
    assert.is(trigger.retry_policy, 'RETRY_POLICY_RETRY', `${key} retries`);
    assert.is(trigger.trigger_region, 'global', `${key} sees audit logs of every region`);
    assert.is(serviceAccountOf(trigger.service_account_email), 'google_service_account.trigger');
    const filters = Object.fromEntries(
      (trigger.event_filters as Block[]).map((f) => [f.attribute, staticValue(tf, f.value)]),
    );
    assert.is(filters.serviceName, 'compute.googleapis.com');
    seen.push(filters.methodName as string);
    assert.is(Object.keys(filters).length, 2, `${key} filters on serviceName and methodName only`);
    // Further Eventarc triggers routed to the same Cloud Run service.
    for (const [tkey, tr] of resourcesOf(tf, 'google_eventarc_trigger')) {
      const dest = one(one(tr, 'destination', tkey), 'cloud_run_service', tkey);
      if (!refsOf(tf, dest.service).resources.has(key)) continue;
      assert.is(tr.location, 'global', `${tkey} location`);
      assert.is(serviceAccountOf(tr.service_account), 'google_service_account.trigger', `${tkey} service account`);
      if (tr.retry_policy) assert.is.not(one(tr, 'retry_policy').max_attempts, 1, `${tkey} must retry`);
      const criteria = Object.fromEntries(
        (tr.matching_criteria as Block[]).map((c) => [c.attribute, staticValue(tf, c.value) ?? c.value]),
      );
      assert.is(criteria.type, AUDIT_LOG_TYPE, `${tkey} type`);
      assert.is(criteria.serviceName, 'compute.googleapis.com', `${tkey} serviceName`);
      assert.is(Object.keys(criteria).length, 3, `${tkey} filters on type, serviceName, methodName`);
      if (criteria.methodName === '${each.value}') {
        const each = /^\$\{toset\(local\.([a-z0-9_]+)\)\}$/.exec(text(tr.for_each))?.[1];
        assert.ok(each, `${tkey} iterates over a local list`);
        seen.push(...(local(tf, each!) as string[]));
      } else {
        assert.not.ok(tr.for_each, `${tkey} without for_each`);
        seen.push(criteria.methodName as string);
      }
    }
    assert.equal([...seen].sort(), [...methods].sort(), `${ep}: exactly one trigger per method name`);
  }
});

t('Pub/Sub functions: triggered by the topic of their setting, retried, as the trigger account', ({ tf }) => {
  for (const [ep, setting] of Object.entries(PUBSUB_TRIGGERS)) {
    const [key, fn] = functionsByEntryPoint(tf).get(ep)!;
    const { trigger } = triggerOf(fn, key);
    assert.is(staticValue(tf, trigger.event_type), PUBSUB_TYPE, `${key} event type`);
    assert.equal(topicsOf(tf, trigger.pubsub_topic), settingTopics(tf, setting), `${key} reads the ${setting} topic`);
    assert.is(trigger.retry_policy, 'RETRY_POLICY_RETRY', `${key} retries`);
    assert.is(
      serviceAccountOf(trigger.service_account_email),
      'google_service_account.trigger',
      `${key} trigger account`,
    );
    assert.not.ok(trigger.event_filters, `${key}: no further filters`);
  }
});

t(
  "logHeartbeat: a push subscription on the log topic with the code's filter, retried, as the trigger account",
  ({ tf }) => {
    for (const [ep, { setting, filter }] of Object.entries(FILTERED_PUSH)) {
      const [key, fn] = functionsByEntryPoint(tf).get(ep)!;
      assert.not.ok(
        fn.event_trigger ?? (fn.dynamic as Block | undefined)?.event_trigger,
        `${key}: no trigger (it could not filter)`,
      );
      const subs = resourcesOf(tf, 'google_pubsub_subscription').filter(([, s]) =>
        text(s.push_config).includes(`${key}[0].service_config[0].uri`),
      );
      assert.is(subs.length, 1, `${key}: one push subscription`);
      const [skey, sub] = subs[0]!;
      assert.is(fn.count, PUSH_ONLY, `${key}: deployed in push delivery only`);
      assert.is(sub.count, PUSH_ONLY, `${skey}: exists with its function (the log topic in this project or another)`);
      assert.is(sub.project, '${var.project_id}', `${skey} lives in the orchestrator project`);
      assert.equal(topicsOf(tf, sub.topic), settingTopics(tf, setting), `${skey} reads the ${setting} topic`);
      assert.is(staticValue(tf, sub.filter), filter, `${skey}: the filter is the code's, character for character`);
      parseFilter(filter); // valid Pub/Sub filter syntax, at most 256 bytes
      const push = one(sub, 'push_config', skey);
      assert.match(
        text(push.push_endpoint),
        new RegExp(
          String.raw`^\$\{google_cloudfunctions2_function\.[a-z0-9_]+\[0\]\.service_config\[0\]\.uri\}` +
            String.raw`/projects/\$\{local\.log_topic_project\}/topics/\$\{var\.log_topic\}$`,
        ),
        `${skey}: the Functions Framework learns the topic from the path`,
      );
      const oidc = one(push, 'oidc_token', skey);
      assert.is(serviceAccountOf(oidc.service_account_email), 'google_service_account.trigger');
      assert.is(oidc.audience, `\${${key}[0].service_config[0].uri}`, `${skey}: the token is for the function`);
      const retry = one(sub, 'retry_policy', skey);
      assert.ok(retry.minimum_backoff && retry.maximum_backoff, `${skey} retries with backoff`);
      assert.is(one(sub, 'expiration_policy', skey).ttl, '', `${skey} never expires`);
      assert.ok(
        Number(sub.ack_deadline_seconds) >= Number(one(fn, 'service_config', key).timeout_seconds),
        `${skey}: the ack deadline covers the function's timeout`,
      );
      // Every other subscription on that topic (the SIEM's, should it be managed here) receives every line;
      // the pull delivery's (next test) replaces this one.
      for (const [other, s] of resourcesOf(tf, 'google_pubsub_subscription'))
        if (
          other !== skey &&
          other !== 'google_pubsub_subscription.log_heartbeat_pull' &&
          topicsOf(tf, s.topic).some((tk) => settingTopics(tf, setting).includes(tk))
        )
          assert.not.ok(s.filter, `${other} on the ${setting} topic is not filtered`);
    }
  },
);

t(
  "logHeartbeat's pull delivery: the code's filter on a pull subscription, drained by logHeartbeatDrain every minute",
  ({ tf }) => {
    const mode = tf.variables.log_heartbeat_delivery!;
    assert.is(mode.default, 'push');
    const modes = /contains\(\[([^\]]*)\], var\.log_heartbeat_delivery\)/.exec(
      text(one(mode, 'validation').condition),
    )?.[1];
    assert.equal(
      modes?.split(',').map((m) => m.trim().replace(/"/g, '')),
      ['push', 'pull'],
    );
    assert.is(tf.locals.log_heartbeat_push, '${var.log_heartbeat_delivery == "push"}');
    assert.is(tf.locals.log_heartbeat_pull, '${var.log_heartbeat_delivery == "pull"}');

    const [key, fn] = functionsByEntryPoint(tf).get('logHeartbeatDrain')!;
    assert.is(fn.count, PULL_ONLY, `${key}: deployed in pull delivery only`);
    const subKey = 'google_pubsub_subscription.log_heartbeat_pull';
    const sub = tf.resources.get(subKey)!;
    assert.ok(sub, `${subKey} exists`);
    assert.is(sub.count, PULL_ONLY, `${subKey}: with the drain`);
    assert.not.ok(sub.push_config, `${subKey} is a pull subscription`);
    assert.is(sub.project, '${var.project_id}', `${subKey} lives in the orchestrator project`);
    assert.equal(topicsOf(tf, sub.topic), settingTopics(tf, 'LOG_TOPIC'), `${subKey} reads the log topic`);
    assert.is(staticValue(tf, sub.filter), LOG_HEARTBEAT_FILTER, `${subKey}: the filter is the code's`);
    const ack = Number(sub.ack_deadline_seconds);
    assert.ok(ack >= 60 && ack <= 600, `${subKey}: an ack deadline for a pulled batch's processing (${ack} s)`);
    const retry = one(sub, 'retry_policy', subKey);
    assert.ok(retry.minimum_backoff && retry.maximum_backoff, `${subKey}: released lines come back with backoff`);
    assert.is(one(sub, 'expiration_policy', subKey).ttl, '', `${subKey} never expires`);
    assert.match(text(sub.message_retention_duration), /^\d+s$/);

    // The drain reads the subscription Terraform made, from its setting; empty (unset) in push mode.
    const settings = local(tf, 'function_settings') as Record<string, unknown>;
    assert.is(
      settings.LOG_HEARTBEAT_SUBSCRIPTION,
      `\${local.log_heartbeat_pull ? ${subKey}[0].id : ""}`,
      'LOG_HEARTBEAT_SUBSCRIPTION names the pull subscription (projects/P/subscriptions/S)',
    );
    assert.ok(parseConfig({ LOG_HEARTBEAT_SUBSCRIPTION: 'projects/acme-orch/subscriptions/osq-log-heartbeat-pull' }));
    // Its budget ends well before its timeout: in-flight messages finish, the rest is released.
    const service = one(fn, 'service_config', key);
    assert.is(service.timeout_seconds, '${var.log_drain_budget_seconds + 60}');
    const budget = tf.variables.log_drain_budget_seconds!;
    assert.is(String(budget.default), String(parseConfig({}).LOG_DRAIN_BUDGET_SECONDS));
    assert.match(text(one(budget, 'validation').condition), />= 5 && var\.log_drain_budget_seconds <= 480/);
    for (const bad of ['4', '481'])
      assert.throws(() => parseConfig({ LOG_DRAIN_BUDGET_SECONDS: bad }), /LOG_DRAIN_BUDGET_SECONDS/);

    // Its service account pulls from that subscription, and only in pull mode has any binding at all.
    const sa = serviceAccountOf(service.service_account_email)!;
    const subscriber = bindingsOf(tf, sa).filter((b) => b.type === 'google_pubsub_subscription_iam_member');
    assert.equal(
      subscriber.map((b) => [b.block.role, b.block.subscription]),
      [['roles/pubsub.subscriber', `\${${subKey}[0].name}`]],
    );
    for (const b of bindingsOf(tf, sa)) assert.is(b.block.count, PULL_ONLY, `${b.key}: pull delivery only`);

    // Cloud Scheduler ticks every minute on the topic the drain is triggered by; both only in pull mode.
    const job = tf.resources.get('google_cloud_scheduler_job.log_drain_tick')!;
    assert.is(job.count, PULL_ONLY);
    assert.is(job.schedule, '* * * * *', 'every minute');
    const target = one(job, 'pubsub_target');
    assert.equal(topicsOf(tf, target.topic_name), settingTopics(tf, 'LOG_DRAIN_TICK_TOPIC'));
    assert.match(text(target.data), /^\$\{base64encode\(jsonencode\(\{.+\}\)\)\}$/s, 'a non-empty tick');
    assert.is(tf.resources.get(settingTopics(tf, 'LOG_DRAIN_TICK_TOPIC')[0]!)!.count, PULL_ONLY);
    const invoker = tf.resources.get('google_cloud_run_v2_service_iam_member.log_heartbeat_drain_invoker')!;
    assert.is(invoker.count, PULL_ONLY);
  },
);

t(
  'the enrollment sink: exactly the methods vmLifecycle acts on, non-intercepting with children, ' +
    'its writer publishing to one topic pushed to vmLifecycle with retries',
  ({ tf }) => {
    // The filter: Compute's admin-activity audit log, and exactly the code's method names.
    const filter = staticValue(tf, tf.locals.compute_audit_log_filter) as string;
    assert.ok(typeof filter === 'string', 'local.compute_audit_log_filter is a literal');
    assert.match(filter, /^logName:"cloudaudit\.googleapis\.com%2Factivity" AND /, 'admin-activity audit logs');
    assert.match(filter, / AND protoPayload\.serviceName="compute\.googleapis\.com" AND /, 'of Compute Engine');
    const methods = /protoPayload\.methodName=\(([^()]*)\)$/.exec(filter)?.[1];
    assert.ok(methods, 'one methodName=(... OR ...) clause, last');
    const listed = methods!.split(' OR ').map((m) => /^"([^"]+)"$/.exec(m)?.[1]);
    assert.ok(
      listed.every((m) => m),
      `every method is a quoted name: ${methods}`,
    );
    assert.equal([...listed].sort(), [...LIFECYCLE_METHODS].sort(), 'the filter covers exactly LIFECYCLE_METHODS');

    // The mode variable, and which sink each mode makes.
    const mode = tf.variables.enrollment_sink!;
    assert.is(mode.default, 'projects', 'per-project sinks by default: no folder or organisation access needed');
    const modes = /contains\(\[([^\]]*)\], var\.enrollment_sink\)/.exec(text(one(mode, 'validation').condition))?.[1];
    assert.equal(
      modes?.split(',').map((m) => m.trim().replace(/"/g, '')),
      ['organization', 'folder', 'projects', 'none'],
    );
    const [topicKey] = resourcesOf(tf, 'google_pubsub_topic').find(([, b]) =>
      refsOf(tf, b.name).vars.has('compute_audit_log_topic'),
    )!;
    const topic = tf.resources.get(topicKey)!;
    assert.is(topic.project, '${var.project_id}', 'the topic lives in the orchestrator project');
    assert.match(text(topic.message_retention_duration), /^\d+s$/);
    assert.is(
      tf.variables.compute_audit_log_topic?.default,
      COMPUTE_AUDIT_LOG_TOPIC,
      'the local stack uses the same topic name',
    );
    const sinks: Array<[string, string]> = [
      ['google_logging_organization_sink.compute_audit_log', '${var.enrollment_sink == "organization" ? 1 : 0}'],
      ['google_logging_folder_sink.compute_audit_log', '${local.enrollment_sink_folders}'],
      ['google_logging_project_sink.compute_audit_log', '${local.enrollment_sink_projects}'],
    ];
    assert.equal(
      [...tf.resources.keys()].filter((k) => /^google_logging_[a-z]+_sink\./.test(k)).sort(),
      sinks.map(([k]) => k).sort(),
      'one sink resource per scope, nothing else routes logs',
    );
    assert.match(
      text(tf.locals.enrollment_sink_folders),
      /var\.enrollment_sink == "folder" \? toset\(local\.target_folders\)/,
    );
    assert.match(
      text(tf.locals.enrollment_sink_projects),
      /var\.enrollment_sink == "projects" \? toset\(\[for p in local\.target_project_ids : p if p != var\.project_id\]\)/,
      'a sink in every listed target project but the orchestrator project (Eventarc covers it)',
    );
    for (const [key, made] of sinks) {
      const sink = tf.resources.get(key)!;
      assert.is(sink.count ?? sink.for_each, made, `${key} exists in its mode only`);
      assert.is(sink.filter, '${local.compute_audit_log_filter}', `${key}: the filter checked above`);
      assert.equal(topicsOf(tf, sink.destination), [topicKey], `${key} routes to the topic`);
      assert.match(text(sink.destination), /^pubsub\.googleapis\.com\//, `${key}: a Pub/Sub destination`);
      if (key.includes('project_sink')) assert.is(sink.unique_writer_identity, true, `${key}: its own writer identity`);
      else {
        assert.is(sink.include_children, true, `${key}: every project below`);
        assert.is(sink.intercept_children, false, `${key}: non-intercepting`);
      }
      // Its writer identity: publisher on exactly that topic, and nothing else anywhere.
      const writer = [...tf.resources].filter(([, b]) => text(b.member).includes('writer_identity'));
      const own = writer.filter(([, b]) =>
        key.includes('organization')
          ? b.member === `\${${key}[0].writer_identity}`
          : b.member === '${each.value.writer_identity}' && b.for_each === `\${${key}}`,
      );
      assert.is(own.length, 1, `${key}: one binding for its writer identity`);
      const [wkey, w] = own[0]!;
      assert.is(wkey.split('.')[0], 'google_pubsub_topic_iam_member', `${wkey} is on a topic`);
      assert.is(w.role, 'roles/pubsub.publisher', `${wkey}: publisher`);
      assert.equal(topicsOf(tf, w.topic), [topicKey], `${wkey}: on that topic only`);
      if (key.includes('organization')) assert.is(w.count, sink.count, `${wkey} exists with its sink`);
    }
    assert.is(
      [...tf.resources].filter(([, b]) => text(b.member).includes('writer_identity')).length,
      sinks.length,
      'no other binding names a writer identity',
    );

    // The push subscription: to vmLifecycle, as the trigger account, with retries.
    const [fnKey, fn] = functionsByEntryPoint(tf).get('vmLifecycle')!;
    const subs = resourcesOf(tf, 'google_pubsub_subscription').filter(([, sub]) =>
      text(sub.push_config).includes(`${fnKey}.service_config[0].uri`),
    );
    assert.is(subs.length, 1, 'one push subscription to vmLifecycle');
    const [skey, sub] = subs[0]!;
    assert.is(sub.count, topic.count, `${skey} exists with the topic`);
    assert.equal(topicsOf(tf, sub.topic), [topicKey], `${skey} reads the sink's topic`);
    assert.not.ok(sub.filter, `${skey}: the sink filters, the subscription does not`);
    const push = one(sub, 'push_config', skey);
    assert.is(
      push.push_endpoint,
      `\${${fnKey}.service_config[0].uri}/projects/\${var.project_id}/topics/\${var.compute_audit_log_topic}`,
      `${skey}: the Functions Framework learns the topic from the path`,
    );
    const oidc = one(push, 'oidc_token', skey);
    assert.is(serviceAccountOf(oidc.service_account_email), 'google_service_account.trigger');
    assert.is(oidc.audience, `\${${fnKey}.service_config[0].uri}`, `${skey}: the token is for vmLifecycle`);
    const retry = one(sub, 'retry_policy', skey);
    assert.ok(retry.minimum_backoff && retry.maximum_backoff, `${skey} retries with backoff`);
    assert.is(one(sub, 'expiration_policy', skey).ttl, '', `${skey} never expires`);
    assert.ok(
      Number(sub.ack_deadline_seconds) >= Number(one(fn, 'service_config', fnKey).timeout_seconds),
      `${skey}: the ack deadline covers vmLifecycle's timeout`,
    );
  },
);

t('target folders and organisations: the listed projects alone get project roles and APIs', ({ tf }) => {
  const targets = text(tf.locals.target_project_ids);
  assert.match(targets, /for t in var\.target_projects : t if !can\(regex\("\^\(folders\|organizations\)\/", t\)\)/);
  assert.match(text(tf.locals.target_folders), /startswith\(t, "folders\/"\)/);
  assert.match(
    text(tf.locals.target_organizations),
    /trimprefix\(t, "organizations\/"\) if startswith\(t, "organizations\/"\)/,
  );
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  assert.is(settings.TARGET_PROJECTS, '${join(",", var.target_projects)}', 'the code resolves folders itself');
  for (const [key, b] of tf.resources)
    if (text(b.for_each).includes('target_projects')) assert.unreachable(`${key} iterates over var.target_projects`);
  assert.match(text(tf.resources.get('google_project_service.target')!.for_each), /local\.target_project_ids/);
  // The variable accepts what the code accepts.
  const check = (v: string) =>
    new RegExp(
      /regex\("((?:[^"\\]|\\.)*)"/
        .exec(text((tf.variables.target_projects!.validation as Block[])[1]!.condition))![1]!
        .replace(/\\\\/g, '\\'),
    ).test(v);
  for (const ok of ['acme-prod', 'folders/123', 'organizations/456', 'example.com:acme'])
    assert.ok(check(ok) && parseConfig({ TARGET_PROJECTS: ok }).TARGET_PROJECTS[0] === ok, ok);
  for (const bad of ['folders/', 'folders/abc', 'projects/acme', 'Acme'])
    assert.not.ok(check(bad), `${bad} is refused by the variable`);
});

t("environment: every setting the code reads is passed, nothing else, with the code's defaults", ({ tf }) => {
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  const env = text(tf.locals.function_environment);
  assert.match(
    env,
    /for k, v in local\.function_settings : k => v if v != ""/,
    'function_environment is function_settings minus empty values',
  );
  const keys = schemaKeys();
  assert.ok(keys.includes('OPT_OUT_LABEL') && keys.includes('ALERT_TOPIC'), `schema keys were read (${keys.length})`);
  const direct = directEnvReads();
  assert.ok(direct.has('LOG_LEVEL'), 'shared/log.ts reads LOG_LEVEL');
  for (const k of keys) {
    if (NOT_FOR_FUNCTIONS.includes(k)) assert.not.ok(k in settings, `${k} is not for deployed functions`);
    else assert.ok(k in settings, `${k} (shared/config.ts) is set in the functions' environment`);
  }
  for (const k of Object.keys(settings))
    assert.ok(keys.includes(k) || direct.has(k), `${k} is a setting the code reads`);
  for (const k of NOT_FOR_FUNCTIONS) assert.not.ok(k in settings, `${k} is not set`);

  // The Terraform defaults parse, and equal the code's own defaults.
  const defaults: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings)) {
    const d = staticValue(tf, v);
    if (d !== undefined && d !== null) defaults[k] = String(d);
  }
  assert.ok(
    Object.keys(defaults).length >= 15,
    `most settings have a static default (${Object.keys(defaults).join(', ')})`,
  );
  const fromTerraform = parseConfig(defaults) as Record<string, unknown>;
  const fromCode = parseConfig({}) as Record<string, unknown>;
  for (const k of Object.keys(defaults)) {
    if (fromCode[k] !== undefined)
      assert.equal(fromTerraform[k], fromCode[k], `${k}: Terraform's default equals shared/config.ts's`);
  }
  assert.is(
    tf.variables.silence_threshold_minutes?.default,
    null,
    'the silence threshold derives from the heartbeat unless set',
  );
  assert.match(
    text(settings.SILENCE_THRESHOLD_MINUTES),
    /== null \? ""/,
    'an unset threshold is passed as empty, i.e. not at all',
  );
});

t('every topic the code uses is a google_pubsub_topic with a deliberate retention', ({ tf }) => {
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  const topicSettings = schemaKeys().filter((k) => k.endsWith('_TOPIC'));
  assert.ok(topicSettings.length >= 6, `topic settings: ${topicSettings.join(', ')}`);
  const fromCode = parseConfig({}) as Record<string, unknown>;
  for (const k of topicSettings) {
    const [topicKey] = settingTopics(tf, k);
    const topic = tf.resources.get(topicKey!)!;
    assert.match(text(topic.message_retention_duration), /^\d+s$/, `${topicKey} sets message_retention_duration`);
    if (typeof fromCode[k] === 'string')
      assert.is(staticValue(tf, settings[k]), fromCode[k], `${k} defaults to ${fromCode[k]}`);
  }
  const logs = tf.resources.get(settingTopics(tf, 'LOG_TOPIC')[0]!)!;
  assert.is(logs.count, '${var.create_log_topic ? 1 : 0}', 'the log topic is created only when asked');
  assert.is(logs.project, '${local.log_topic_project}', 'the log topic may live in another project');
  const pull = resourcesOf(tf, 'google_pubsub_subscription').filter(([, s]) => !s.push_config);
  assert.equal(
    pull.map(([, s]) => topicsOf(tf, s.topic)[0]).sort(),
    [
      ...settingTopics(tf, 'ALERT_TOPIC'),
      ...settingTopics(tf, 'DEAD_LETTER_TOPIC'),
      ...settingTopics(tf, 'LOG_TOPIC'), // logHeartbeat's pull delivery
    ].sort(),
    'pull subscriptions on the alert and dead-letter topics, and the log topic for the drain',
  );
});

t('no owner, editor, allUsers or allAuthenticatedUsers anywhere', ({ tf }) => {
  const example = readFileSync(path.join(tfDir, 'terraform.tfvars.example'), 'utf8');
  for (const [file, content] of [...tf.texts, ['terraform.tfvars.example', example] as const]) {
    for (const bad of ['roles/owner', 'roles/editor', 'allUsers', 'allAuthenticatedUsers']) {
      assert.not.ok(content.includes(bad), `${file} mentions ${bad}`);
    }
  }
});

t("each function's service account holds exactly what shared/permissions.ts lists", ({ tf }) => {
  for (const [ep, [key, fn]] of functionsByEntryPoint(tf)) {
    const want = FUNCTION_PERMISSIONS[ep]!;
    const sa = serviceAccountOf(one(fn, 'service_config').service_account_email)!;
    const got = classify(tf, bindingsOf(tf, sa));
    assertTargetRole(tf, got.customTarget, want.target, ep);
    assertParentRole(tf, got.customParent, [...want.target, ...want.parent], ep);
    assert.is(
      got.firestore.length,
      want.firestore === true ? 1 : 0,
      `${ep}: roles/datastore.user iff it writes Firestore`,
    );
    assert.is(
      got.firestoreRead.length,
      want.firestore === 'read' ? 1 : 0,
      `${ep}: roles/datastore.viewer iff it only reads Firestore`,
    );
    assert.equal(
      got.publishesTo,
      want.publishes.flatMap((s) => settingTopics(tf, s)).sort(),
      `${ep} (${key}) publishes to exactly ${want.publishes.join(', ') || 'nothing'}`,
    );
    // A subscription setting names the subscription Terraform passes in it.
    const settings = local(tf, 'function_settings') as Record<string, unknown>;
    assert.equal(
      got.subscribesTo,
      (want.subscribes ?? []).map((s) => [...refsOf(tf, settings[s]).resources][0]).sort(),
      `${ep} pulls from exactly ${want.subscribes?.join(', ') || 'nothing'}`,
    );
    assert.equal(
      got.other.map((b) => b.key),
      [],
      `${ep}: no other bindings`,
    );
  }
});

t('the publisher service account holds exactly PUBLISHER_PERMISSIONS (plus its build logs)', ({ tf }) => {
  const got = classify(tf, bindingsOf(tf, 'google_service_account.publisher'));
  assertTargetRole(tf, got.customTarget, PUBLISHER_PERMISSIONS.target, 'the publisher');
  assertParentRole(
    tf,
    got.customParent,
    [...PUBLISHER_PERMISSIONS.target, ...PUBLISHER_PERMISSIONS.parent],
    'the publisher',
  );
  assert.is(got.firestore.length, PUBLISHER_PERMISSIONS.firestore ? 1 : 0, 'publisher: Firestore');
  assert.is(got.firestoreRead.length, 0);
  assert.equal(got.publishesTo, [], 'the publisher publishes to no topic');
  const bucket = got.other.filter((b) => b.type === 'google_storage_bucket_iam_member');
  assert.is(bucket.length, 1, 'one binding on a bucket');
  assert.is(bucket[0]!.block.bucket, '${google_storage_bucket.config.name}', 'on the configuration bucket');
  const roleKey = /^\$\{(google_project_iam_custom_role\.[a-z0-9_]+)\.name\}$/.exec(text(bucket[0]!.block.role))?.[1];
  assert.ok(roleKey, 'the bucket role is a custom role');
  assert.equal(
    [...(tf.resources.get(roleKey!)!.permissions as string[])].sort(),
    [...PUBLISHER_PERMISSIONS.bucket].sort(),
    'bucket permissions',
  );
  const rest = got.other.filter((b) => b !== bucket[0]);
  assert.equal(
    rest.map((b) => [b.type, b.block.role]),
    [['google_project_iam_member', 'roles/logging.logWriter']],
    'besides: only Cloud Build log writing',
  );
});

t("the trigger account may invoke each function's service and receive events, nothing else", ({ tf }) => {
  const bindings = bindingsOf(tf, 'google_service_account.trigger');
  const invokers = bindings.filter((b) => b.type === 'google_cloud_run_v2_service_iam_member');
  const byEntryPoint = [...functionsByEntryPoint(tf)];
  const fns = byEntryPoint
    .filter(([ep]) => !HTTP_FUNCTIONS.includes(ep))
    .map(([, [key]]) => key)
    .sort();
  const httpFns = byEntryPoint.filter(([ep]) => HTTP_FUNCTIONS.includes(ep)).map(([, [key]]) => key);
  for (const b of invokers) {
    assert.is(b.block.role, 'roles/run.invoker', b.key);
    assert.match(
      text(b.block.name),
      /^\$\{google_cloudfunctions2_function\.[a-z0-9_]+(\[0\])?\.service_config\[0\]\.service\}$/,
      `${b.key}: one function's service`,
    );
  }
  assert.equal(
    invokers.map((b) => [...refsOf(tf, b.block.name).resources][0]).sort(),
    fns,
    'one invoker binding per event-driven function',
  );
  const rest = bindings.filter((b) => !invokers.includes(b)).map((b) => [b.type, b.block.role]);
  assert.equal(rest, [['google_project_iam_member', 'roles/eventarc.eventReceiver']]);
  for (const [key, b] of resourcesOf(tf, 'google_cloud_run_v2_service_iam_member')) {
    if (httpFns.some((fn) => refsOf(tf, b.name).resources.has(fn))) continue; // its viewers: the next test
    assert.is(
      b.member,
      'serviceAccount:${google_service_account.trigger.email}',
      `${key}: only the trigger account invokes`,
    );
  }
});

t('Firestore: native database, a composite index per multi-field query, TTL only for expiring documents', ({ tf }) => {
  const db = tf.resources.get('google_firestore_database.main')!;
  assert.is(db.type, 'FIRESTORE_NATIVE');
  const code = [...sources('shared').values(), ...sources('functions').values()].join('\n');
  const constants = Object.fromEntries(
    [...code.matchAll(/export const ([A-Z_]+) = '([a-zA-Z]+)';/g)].map((m) => [m[1]!, m[2]!]),
  );
  const queries: { collection: string; fields: string[] }[] = [];
  // A query chain may be wrapped over several lines: join each `.where(...)` continuation to its line.
  for (const line of code.replace(/\n\s*\./g, '.').split('\n')) {
    const where = [...line.matchAll(/\.where\('([^']+)'/g)].map((m) => m[1]!);
    // An order on another field than the filters' also needs a composite index.
    const order = [...line.matchAll(/\.orderBy\('([^']+)'/g)].map((m) => m[1]!).filter((f) => !where.includes(f));
    const fields = [...where, ...order];
    const collection = /\.collection\(([A-Z_]+)\)\.where/.exec(line)?.[1];
    if (where.length >= 1 && fields.length >= 2 && collection)
      queries.push({ collection: constants[collection]!, fields });
  }
  assert.ok(
    queries.some((q) => q.collection === 'hosts'),
    'the hosts-by-name query is found',
  );
  assert.ok(
    queries.some((q) => q.collection === 'alerts' && q.fields.includes('since')),
    'the open-alerts query (a filter and an order) is found',
  );
  const indexes = resourcesOf(tf, 'google_firestore_index').map(([, i]) => ({
    collection: i.collection,
    fields: (i.fields as Block[]).map((f) => f.field_path as string).sort(),
  }));
  for (const q of queries) {
    assert.ok(
      indexes.some(
        (i) => i.collection === q.collection && JSON.stringify(i.fields) === JSON.stringify([...q.fields].sort()),
      ),
      `composite index on ${q.collection} (${q.fields.join(', ')})`,
    );
  }
  const expires = /\bexpireAt\b/.test(code);
  const ttl = resourcesOf(tf, 'google_firestore_field').filter(([, f]) => f.ttl_config);
  assert.is(
    ttl.length > 0,
    expires,
    expires ? 'the code writes expireAt: a TTL policy is needed' : 'no document expires: no TTL policy',
  );
});

t('Firestore: the status snapshots are read by id, so none of their maps or lists is indexed', ({ tf }) => {
  const fields = local(tf, 'status_unindexed_fields') as Record<string, string[]>;
  const exempted = tf.resources.get('google_firestore_field.status_unindexed')!;
  assert.equal(one(exempted, 'index_config'), {}, 'an empty index configuration: no index');
  assert.match(text(exempted.for_each), /local\.status_unindexed_fields/);
  const now = new Date('2026-11-27T12:00:00Z');
  const project = summarizeProject('p', 'r', now, []);
  const fleet = mergeFleetStatus(
    {
      runId: 'r',
      startedAt: now.toISOString(),
      finishedAt: null,
      status: 'succeeded',
      coverage: null,
      counts: {},
      projects: {},
    },
    [project],
    [],
    now,
  );
  const structured = (doc: object) =>
    Object.entries(doc)
      .filter(([, v]) => typeof v === 'object' && v !== null)
      .map(([k]) => k)
      .sort();
  assert.equal([...fields.status!].sort(), structured(fleet), 'status/fleet: every map and list');
  assert.equal(
    [...fields.projects!].sort(),
    structured(project),
    'status/fleet/projects/{project}: every map and list',
  );
});

t('Cloud Scheduler publishes a non-empty tick to the audit tick topic every 15 minutes by default', ({ tf }) => {
  // The other job is the pull delivery's drain tick (checked with it).
  const jobs = resourcesOf(tf, 'google_cloud_scheduler_job').filter(([k]) => !k.endsWith('.log_drain_tick'));
  assert.is(jobs.length, 1);
  const [key, job] = jobs[0]!;
  const target = one(job, 'pubsub_target', key);
  assert.equal(topicsOf(tf, target.topic_name), settingTopics(tf, 'AUDIT_TICK_TOPIC'));
  assert.match(
    text(target.data),
    /^\$\{base64encode\(jsonencode\(\{.+\}\)\)\}$/s,
    'the Functions Framework needs message data',
  );
  assert.is(staticValue(tf, job.schedule), '*/15 * * * *');
});

t('the configuration bucket: versioned, uniform access, no public access; VMs read it and publish logs', ({ tf }) => {
  const bucket = tf.resources.get('google_storage_bucket.config')!;
  assert.is(one(bucket, 'versioning').enabled, true);
  assert.is(bucket.uniform_bucket_level_access, true);
  assert.is(bucket.public_access_prevention, 'enforced');
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  assert.is(settings.CONFIG_BUCKET, '${google_storage_bucket.config.name}');
  const vm = [...tf.resources].filter(([, b]) => b.for_each === '${toset(var.vm_service_accounts)}');
  const roles = vm.map(([k, b]) => [
    k.split('.')[0],
    b.role,
    k.startsWith('google_pubsub') ? topicsOf(tf, b.topic)[0] : b.bucket,
  ]);
  assert.equal(
    roles.sort(),
    [
      ['google_pubsub_topic_iam_member', 'roles/pubsub.publisher', settingTopics(tf, 'LOG_TOPIC')[0]],
      ['google_pubsub_topic_iam_member', 'roles/pubsub.viewer', settingTopics(tf, 'LOG_TOPIC')[0]],
      ['google_storage_bucket_iam_member', 'roles/storage.objectViewer', '${google_storage_bucket.config.name}'],
    ].sort(),
  );
  for (const [k, b] of vm) assert.is(b.member, 'serviceAccount:${each.value}', k);
});

t('Cloud Monitoring: a Pub/Sub channel on the incidents topic, per-VM osqueryd policies, function errors', ({ tf }) => {
  const channels = resourcesOf(tf, 'google_monitoring_notification_channel');
  assert.is(channels.length, 1);
  const [channelKey, channel] = channels[0]!;
  assert.is(channel.type, 'pubsub');
  assert.equal(topicsOf(tf, (channel.labels as Block).topic), settingTopics(tf, 'INCIDENT_TOPIC'));
  const agent = [...tf.resources].filter(
    ([k, b]) =>
      k.startsWith('google_pubsub_topic_iam_member.') &&
      text(b.member).includes('@gcp-sa-monitoring-notification.iam.gserviceaccount.com'),
  );
  assert.is(agent.length, 1, 'the notification service agent may publish');
  assert.is(agent[0]![1].role, 'roles/pubsub.publisher');
  assert.equal(topicsOf(tf, agent[0]![1].topic), settingTopics(tf, 'INCIDENT_TOPIC'));
  assert.match(
    text(agent[0]![1].member),
    /^serviceAccount:service-\$\{data\.google_project\.orchestrator\.number\}@gcp-sa-monitoring-notification/,
  );

  const policies = resourcesOf(tf, 'google_monitoring_alert_policy');
  const byMetric = (metric: string) => {
    const found = policies.filter(([, p]) =>
      text(one(one(p, 'conditions'), 'condition_threshold').filter).includes(metric),
    );
    assert.is(found.length, 1, `one policy on ${metric}`);
    return found[0]!;
  };
  for (const [key, p] of policies)
    assert.equal(p.notification_channels, [`\${${channelKey}.id}`], `${key} notifies the incidents channel`);
  for (const [metric, aligner, variable, def] of [
    ['agent.googleapis.com/processes/cpu_time', 'ALIGN_RATE', 'osqueryd_cpu_percent', 10],
    ['agent.googleapis.com/processes/rss_usage', 'ALIGN_MEAN', 'osqueryd_memory_mb', 300],
  ] as const) {
    const [key, p] = byMetric(metric);
    const c = one(one(p, 'conditions'), 'condition_threshold');
    // The Ops Agent's per-process label is `command`; its `process` label is the constant "all".
    assert.match(text(c.filter), /metric\.label\.command = "osqueryd"/, `${key} watches osqueryd`);
    assert.match(text(c.filter), /resource\.type = "gce_instance"/, `${key} on VMs`);
    const agg = one(c, 'aggregations', key);
    assert.is(agg.per_series_aligner, aligner, `${key} aligner`);
    const groupBy =
      typeof agg.group_by_fields === 'string' ? staticValue(tf, agg.group_by_fields) : agg.group_by_fields;
    assert.ok(
      Array.isArray(groupBy) && groupBy.includes('resource.label.instance_id'),
      `${key} keeps one series per VM`,
    );
    assert.ok(refsOf(tf, c.threshold_value).vars.has(variable), `${key} threshold from var.${variable}`);
    assert.is(tf.variables[variable]?.default, def, `var.${variable} defaults to ${def}`);
  }
  const [ekey, errors] = byMetric('run.googleapis.com/request_count');
  const filter = text(one(one(errors, 'conditions'), 'condition_threshold').filter);
  assert.match(filter, /response_code_class = one_of\("4xx", "5xx"\)/, `${ekey} counts failures only`);
  assert.ok(refsOf(tf, filter).locals.has('function_names'), `${ekey} watches the orchestrator's functions`);
});

t('HTTP functions: no trigger; only the listed viewers (or IAP) may invoke, never the public', ({ tf }) => {
  const byEntryPoint = functionsByEntryPoint(tf);
  for (const ep of HTTP_FUNCTIONS) {
    const [key, fn] = byEntryPoint.get(ep)!;
    assert.not.ok(fn.event_trigger || fn.dynamic, `${key} has no event trigger (and so no retry policy)`);
    // Who may invoke its Cloud Run service: the viewers (without IAP) or IAP's service agent (with it).
    const invokers = [...tf.resources]
      .filter(([k]) => /_iam_(member|binding|policy)\./.test(k))
      .filter(([, b]) => refsOf(tf, b.name ?? b.service).resources.has(key));
    assert.equal(
      invokers.map(([k, b]) => [k.split('.')[0], b.role, b.member, b.for_each ?? b.count]).sort(),
      [
        [
          'google_cloud_run_v2_service_iam_member',
          'roles/run.invoker',
          '${each.value}',
          '${var.status_page_iap ? toset([]) : toset(var.status_page_viewers)}',
        ],
        [
          'google_cloud_run_v2_service_iam_member',
          'roles/run.invoker',
          'serviceAccount:service-${data.google_project.orchestrator.number}@gcp-sa-iap.iam.gserviceaccount.com',
          '${var.status_page_iap ? 1 : 0}',
        ],
      ],
      `${key}: invoked by each listed viewer, or by IAP's agent alone`,
    );
  }
  // The viewers: nobody by default, and the variable refuses any member that is not a person, group,
  // service account or domain (so no tfvars can make the page public).
  const viewers = tf.variables.status_page_viewers!;
  assert.equal(viewers.default, []);
  const condition = text(one(viewers, 'validation').condition);
  const source = /regex\("((?:[^"\\]|\\.)*)"/.exec(condition)?.[1];
  assert.ok(source, 'the validation is a regular expression on each member');
  const member = new RegExp(source!.replace(/\\\\/g, '\\'));
  for (const bad of ['allUsers', 'allAuthenticatedUsers', 'user:', 'principalSet://goog/public:all', 'user:a b@c'])
    assert.not.ok(member.test(bad), `${bad} is refused`);
  for (const ok of ['user:ana@example.com', 'group:secops@example.com', 'serviceAccount:a@p.iam.gserviceaccount.com'])
    assert.ok(member.test(ok), `${ok} is accepted`);
  assert.match(
    condition,
    /^\$\{alltrue\(\[for m in var\.status_page_viewers : can\(regex\(/,
    'every member is checked',
  );
  // IAP (off by default): the load balancer's backend has IAP on, and only the viewers may pass it.
  assert.is(tf.variables.status_page_iap?.default, false);
  const backend = tf.resources.get('google_compute_backend_service.fleet_status')!;
  assert.is(backend.count, '${var.status_page_iap ? 1 : 0}');
  assert.is(one(backend, 'iap').enabled, true);
  assert.equal(
    resourcesOf(tf, 'google_iap_web_backend_service_iam_member').map(([, b]) => [b.role, b.member, b.for_each]),
    [
      [
        'roles/iap.httpsResourceAccessor',
        '${each.value}',
        '${var.status_page_iap ? toset(var.status_page_viewers) : toset([])}',
      ],
    ],
  );
});

/** A value with its `${local.x}` references replaced by the locals' values (for data written in HCL). */
function resolveLocals(tf: Tf, value: unknown): unknown {
  if (typeof value === 'string') {
    const whole = /^\$\{local\.([a-z0-9_]+)\}$/.exec(value);
    if (whole) return resolveLocals(tf, tf.locals[whole[1]!]);
    return value.replace(/(?<!\$)\$\{local\.([a-z0-9_]+)\}/g, (m, name: string) => {
      const v = resolveLocals(tf, tf.locals[name]);
      return typeof v === 'string' ? v : m;
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveLocals(tf, v));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveLocals(tf, v)]));
  return value;
}

interface DataSet {
  plotType: string;
  timeSeriesQuery: {
    timeSeriesFilter: {
      filter: string;
      aggregation: {
        alignmentPeriod: string;
        perSeriesAligner: string;
        crossSeriesReducer?: string;
        groupByFields?: string[];
      };
      pickTimeSeriesFilter?: Record<string, unknown>;
    };
  };
}
interface Widget {
  title: string;
  xyChart?: { dataSets: DataSet[] };
  text?: { content: string; format: string };
}

t('the Monitoring dashboard: top 10 VMs by osqueryd CPU, memory and disk IO; functions; coverage', ({ tf }) => {
  const dashboards = resourcesOf(tf, 'google_monitoring_dashboard');
  assert.is(dashboards.length, 1);
  assert.is(dashboards[0]![1].dashboard_json, '${jsonencode(local.fleet_dashboard)}');
  const board = resolveLocals(tf, tf.locals.fleet_dashboard) as {
    displayName: string;
    gridLayout: { columns: number; widgets: Widget[] };
  };
  // What jsonencode sends: JSON the Monitoring API reads (Terraform expressions become their values).
  const json = JSON.parse(JSON.stringify(board)) as typeof board;
  assert.ok(json.displayName && json.gridLayout.columns >= 1);
  const widgets = json.gridLayout.widgets;
  const ALIGNERS = ['ALIGN_RATE', 'ALIGN_MEAN', 'ALIGN_DELTA', 'ALIGN_SUM'];
  const REDUCERS = ['REDUCE_SUM', 'REDUCE_MEAN', 'REDUCE_PERCENTILE_99', 'REDUCE_PERCENTILE_50'];
  for (const w of widgets) {
    assert.ok(w.title, 'every widget has a title');
    assert.is(['xyChart', 'text'].filter((k) => k in w).length, 1, `${w.title}: one kind of widget`);
    for (const d of w.xyChart?.dataSets ?? []) {
      const f = d.timeSeriesQuery.timeSeriesFilter;
      assert.match(f.filter, /^metric\.type="[^"]+"/, `${w.title}: a metric filter`);
      assert.not.match(f.filter, /\$\{local\./, `${w.title}: every local resolved`);
      assert.ok(ALIGNERS.includes(f.aggregation.perSeriesAligner), `${w.title}: ${f.aggregation.perSeriesAligner}`);
      assert.ok(
        REDUCERS.includes(f.aggregation.crossSeriesReducer!),
        `${w.title}: ${f.aggregation.crossSeriesReducer}`,
      );
      assert.match(f.aggregation.alignmentPeriod, /^\d+s$/);
    }
  }
  const dataSetsOf = (metric: string) =>
    widgets.flatMap((w) =>
      (w.xyChart?.dataSets ?? []).filter((d) =>
        d.timeSeriesQuery.timeSeriesFilter.filter.includes(`metric.type="${metric}"`),
      ),
    );
  for (const [metric, aligner] of [
    ['agent.googleapis.com/processes/cpu_time', 'ALIGN_RATE'],
    ['agent.googleapis.com/processes/rss_usage', 'ALIGN_MEAN'],
    ['agent.googleapis.com/processes/disk/read_bytes_count', 'ALIGN_RATE'],
    ['agent.googleapis.com/processes/disk/write_bytes_count', 'ALIGN_RATE'],
  ] as const) {
    const sets = dataSetsOf(metric);
    assert.is(sets.length, 1, `one chart of ${metric}`);
    const f = sets[0]!.timeSeriesQuery.timeSeriesFilter;
    assert.match(f.filter, /metric\.label\.command="osqueryd"/, `${metric}: osqueryd's processes`);
    assert.match(f.filter, /resource\.type="gce_instance"/, `${metric}: on VMs`);
    assert.equal(
      f.pickTimeSeriesFilter,
      { rankingMethod: 'METHOD_MEAN', numTimeSeries: 10, direction: 'TOP' },
      `${metric}: top 10`,
    );
    assert.is(f.aggregation.perSeriesAligner, aligner, `${metric} aligner`);
    assert.is(f.aggregation.crossSeriesReducer, 'REDUCE_SUM', `${metric}: osqueryd's processes summed per VM`);
    assert.ok(f.aggregation.groupByFields?.includes('resource.label.instance_id'), `${metric}: one series per VM`);
  }
  const functions = refsOf(tf, tf.locals.functions_filter);
  assert.ok(functions.locals.has('function_names'), 'the function charts cover every function');
  const errors = dataSetsOf('run.googleapis.com/request_count');
  assert.is(errors.length, 1);
  assert.match(errors[0]!.timeSeriesQuery.timeSeriesFilter.filter, /response_code_class=one_of\("4xx", "5xx"\)/);
  const latency = dataSetsOf('run.googleapis.com/request_latencies');
  assert.equal(
    latency.map((d) => d.timeSeriesQuery.timeSeriesFilter.aggregation.crossSeriesReducer),
    ['REDUCE_PERCENTILE_99', 'REDUCE_PERCENTILE_50'],
  );
  // Coverage: a log-based metric on the line the code logs once per closed run.
  const metric = tf.resources.get('google_logging_metric.fleet_coverage')!;
  assert.ok(
    text(metric.filter).includes(`jsonPayload.message=\\"${RUN_CLOSED_MESSAGE}\\"`) ||
      text(metric.filter).includes(`jsonPayload.message="${RUN_CLOSED_MESSAGE}"`),
    'it matches the message the code logs',
  );
  assert.ok(refsOf(tf, metric.filter).locals.has('function_names'), 'on fleetAuditShard');
  assert.is(metric.value_extractor, 'EXTRACT(jsonPayload.coveragePercent)');
  const status = [...sources('shared').values()].join('\n');
  assert.match(status, /coveragePercent:/, 'the code logs coveragePercent');
  assert.equal(
    [one(metric, 'metric_descriptor').metric_kind, one(metric, 'metric_descriptor').value_type],
    ['DELTA', 'DISTRIBUTION'],
  );
  const coverage = dataSetsOf('logging.googleapis.com/user/${google_logging_metric.fleet_coverage.name}');
  assert.is(coverage.length, 1, 'coverage is charted');
  assert.equal(
    [
      coverage[0]!.timeSeriesQuery.timeSeriesFilter.aggregation.perSeriesAligner,
      coverage[0]!.timeSeriesQuery.timeSeriesFilter.aggregation.crossSeriesReducer,
    ],
    ['ALIGN_SUM', 'REDUCE_MEAN'],
    'the mean of a distribution (ALIGN_MEAN takes numbers only)',
  );
});

/** A Cloud Logging `jsonPayload.message=~"RE"` condition as a JavaScript regular expression (RE2 and JS agree on these). */
function messageRegex(filter: string): RegExp {
  const m = /jsonPayload\.message=~\\?"(.+?)\\?"(?: AND|$)/.exec(filter);
  assert.ok(m, `a message regex in ${filter}`);
  return new RegExp(m![1]!);
}

t(
  "the orchestrator's state as log-based metrics: hosts per state and rollout decisions, from lines the code logs",
  ({ tf }) => {
    // Hosts per state: one distribution per state of the code, from the run-closed line's counts.
    assert.equal(local(tf, 'host_states'), [...HOST_STATES], 'local.host_states is HOST_STATES');
    const hosts = tf.resources.get('google_logging_metric.fleet_hosts')!;
    assert.is(hosts.for_each, '${toset(local.host_states)}');
    assert.is(hosts.name, '${var.name_prefix}-fleet-hosts-${each.key}');
    const hostsFilter = String(resolveLocals(tf, hosts.filter));
    assert.ok(hostsFilter.includes(`jsonPayload.message="${RUN_CLOSED_MESSAGE}"`), 'on the run-closed line');
    assert.ok(hostsFilter.includes('jsonPayload.counts.${each.key}>=0'), 'only runs that counted the state');
    assert.ok(refsOf(tf, hosts.filter).locals.has('function_names'), 'logged by fleetAuditShard');
    assert.is(hosts.value_extractor, 'EXTRACT(jsonPayload.counts.${each.key})');
    assert.match([...sources('shared').values()].join('\n'), /counts: r\.counts,/, 'the run-closed line logs counts');
    assert.equal(
      [one(hosts, 'metric_descriptor').metric_kind, one(hosts, 'metric_descriptor').value_type],
      ['DELTA', 'DISTRIBUTION'],
    );

    // Rollout decisions: the controller's lines at a run's close, labelled by decision, stage and version.
    const decisions = tf.resources.get('google_logging_metric.rollout_decisions')!;
    const re = messageRegex(String(resolveLocals(tf, decisions.filter)));
    const halt = {
      at: new Date(0),
      stage: 'canary',
      gate: 'noncompliant' as const,
      value: 40,
      threshold: 5,
      unit: '%' as const,
      count: 2,
      hosts: [],
      queries: [],
      dedupKey: 'rollout.halted:v2:r3',
    };
    const logged = ['rollout: holding', 'rollout: promoted', 'rollout: completed', `rollout of v2 ${haltReason(halt)}`];
    for (const message of logged) assert.match(message, re, `the metric counts "${message}"`);
    for (const message of [
      'rollout: another controller decided first; nothing written',
      'rollout: zone not moved; the next audit moves it',
      'rollout: pause by hand',
      'rollout: rolled back to v1 by hand',
    ])
      assert.not.match(message, re, `the metric leaves out "${message}"`);
    // The controller still logs those messages (shared/usecases/rollout.ts).
    const rollout = readFileSync(path.join(root, 'shared/usecases/rollout.ts'), 'utf8');
    assert.ok(rollout.includes("'rollout: holding'"), 'rollout.ts logs "rollout: holding"');
    assert.ok(
      rollout.includes("`rollout: ${action === 'promote' ? 'promoted' : 'completed'}`"),
      'promoted / completed',
    );
    assert.ok(rollout.includes('`rollout of ${r.configVersion} ${haltReason('), 'the halt line');
    const labels = decisions.label_extractors as Record<string, string>;
    assert.equal(Object.keys(labels).sort(), ['decision', 'stage', 'version']);
    assert.is(labels.stage, 'EXTRACT(jsonPayload.stage)');
    assert.is(labels.version, 'EXTRACT(jsonPayload.version)');
    const decision = /^REGEXP_EXTRACT\(jsonPayload\.message, "(.+)"\)$/.exec(labels.decision!);
    assert.ok(decision, labels.decision);
    assert.equal(
      logged.map((message) => new RegExp(decision![1]!).exec(message)?.[1]),
      ['holding', 'promoted', 'completed', 'halted'],
      'the decision label of each line',
    );
    const descriptor = one(decisions, 'metric_descriptor');
    assert.equal([descriptor.metric_kind, descriptor.value_type], ['DELTA', 'INT64']);
    assert.equal(
      (descriptor.labels as Block[]).map((l) => l.key),
      ['decision', 'stage', 'version'],
      'every extracted label is declared',
    );
  },
);

t('APIs: everything the deployment uses is enabled', ({ tf }) => {
  const apis = local(tf, 'orchestrator_apis') as string[];
  for (const api of [
    'compute',
    'osconfig',
    'firestore',
    'pubsub',
    'cloudfunctions',
    'run',
    'eventarc',
    'cloudscheduler',
    'cloudbuild',
    'storage',
    'monitoring',
    'logging',
    'serviceusage',
    'artifactregistry',
    'iam',
  ]) {
    assert.ok(apis.includes(`${api}.googleapis.com`), `${api}.googleapis.com`);
  }
  assert.is(tf.resources.get('google_project_service.orchestrator')!.for_each, '${toset(local.orchestrator_apis)}');
});

t(
  'terraform.tfvars.example sets only declared variables and every required one Cloud Build does not pass',
  async ({ tf }) => {
    const example = (await parse(
      'terraform.tfvars.example',
      readFileSync(path.join(tfDir, 'terraform.tfvars.example'), 'utf8'),
    )) as Record<string, unknown>;
    for (const k of Object.keys(example)) assert.ok(k in tf.variables, `${k} is a variable`);
    const cloudbuild = readFileSync(path.join(root, 'cloudbuild.yaml'), 'utf8');
    for (const [name, v] of Object.entries(tf.variables)) {
      if ('default' in v) continue;
      if (cloudbuild.includes(`-var="${name}=`) || cloudbuild.includes(`-var=${name}=`)) continue;
      assert.ok(name in example, `required var.${name} is in the example`);
    }
    assert.match(cloudbuild, /-var-file=/, 'cloudbuild.yaml applies with a var file');
    assert.match(cloudbuild, /function_source_object=/, 'cloudbuild.yaml passes the uploaded source object');
  },
);

t('terraform fmt -check passes', () => {
  const result = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', tfDir], { encoding: 'utf8' });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    console.log('  note: terraform is not on PATH; `terraform fmt -check` skipped');
    return;
  }
  assert.is(result.status, 0, `terraform fmt -check:\n${result.stdout}${result.stderr}`);
});

t.run();
