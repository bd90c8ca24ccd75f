// Contract tests of the Terraform deployment (infra/terraform) against the code: entry points,
// triggers, settings, topics, IAM, Firestore indexes, monitoring. The functions come from the function
// manifest (functions/manifest.ts) through functions.json, which one for_each block per kind of resource
// reads: what used to be checked function by function in the HCL is checked here as that block plus the
// manifest's entry (test/unit/manifest.test.ts checks the manifest and the file against the code).
// Offline: the HCL is parsed with @cdktf/hcl2json (no provider download); `terraform fmt -check` runs when
// the terraform binary is on PATH.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../shared/config.js';
import { RUN_CLOSED_MESSAGE, mergeFleetStatus, summarizeProject } from '../../shared/domain/status.js';
import { LOG_HEARTBEAT_FILTER } from '../../shared/osquery/log-routing.js';
import { LIFECYCLE_METHODS } from '../../shared/domain/audit-event.js';
import { HOST_STATES } from '../../shared/domain/host.js';
import { haltReason } from '../../shared/domain/rollout.js';
import { PUBLISHER_PERMISSIONS } from '../../functions/manifest.js';
import { COMPUTE_AUDIT_LOG_TOPIC } from '../../infra/local/functions.js';
import { parseFilter } from '../../infra/local/pubsub-filter.js';

const root = path.resolve(import.meta.dirname, '../..');
const tfDir = path.join(root, 'infra/terraform');

type Block = Record<string, unknown>;

/** One Terraform module's configuration. */
interface TfModule {
  resources: Map<string, Block>;
  data: Map<string, Block>;
  locals: Record<string, unknown>;
  variables: Record<string, Block>;
  modules: Map<string, Block>;
  texts: Map<string, string>;
}

/** A function of functions.json, as Terraform reads it. */
interface FunctionJson {
  resourceName: string;
  description: string;
  accountDescription: string;
  trigger: {
    kind: 'auditLog' | 'pubsub' | 'filteredPush' | 'http';
    eventType: string | null;
    topic: string | null;
    filter: string | null;
    methods: string[] | null;
    eventFilters: Record<string, string>;
  };
  ingress: 'internal' | 'browsers';
  peakMb: number;
  memory: string;
  timeoutSeconds: number;
  timeoutAfter: string | null;
  maxInstances: string;
  concurrency: string | null;
  cpu: string | null;
  delivery: 'push' | 'pull' | null;
  grantsInBothDeliveries: boolean;
  permissions: {
    target: string[];
    parent: string[];
    firestore: 'write' | 'read' | 'none';
    publishes: string[];
    subscribes: string[];
  };
}

interface Tf extends TfModule {
  /** functions.json. */
  manifest: { functions: Record<string, FunctionJson>; publisher: typeof PUBLISHER_PERMISSIONS };
  /** The target-roles module (./target-roles). */
  targetRoles: TfModule;
}

/** Settings the functions deliberately do not get: local simulator only, set by the runtime, CLI only. */
// COST_PRICES: the cost model's prices, read by osq-orch and the bench (no function prices anything yet).
const NOT_FOR_FUNCTIONS = ['GOOGLE_API_ENDPOINT', 'OSQUERY_SCHEMA', 'COST_PRICES'];

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

/**
 * Entry points fed by a filtered push subscription of their own
 * (an Eventarc trigger cannot filter): topic setting and filter.
 */
const FILTERED_PUSH: Record<string, { setting: string; filter: string }> = {
  logHeartbeat: { setting: 'LOG_TOPIC', filter: LOG_HEARTBEAT_FILTER },
};
/** var.log_heartbeat_delivery: logHeartbeat (push) or logHeartbeatDrain (pull), never both. */
const PULL_ONLY = '${local.log_heartbeat_pull ? 1 : 0}';
const DELIVERIES = ['push', 'pull'] as const;
const AUDIT_LOG_TYPE = 'google.cloud.audit.log.v1.written';
const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

/** The one block of each per-function resource, keyed by entry point (for_each over the manifest). */
const FUNCTION = 'google_cloudfunctions2_function.function';
const ACCOUNT = 'google_service_account.function';
const INVOKER = 'google_cloud_run_v2_service_iam_member.invoker';
const FILTERED_PUSH_SUBSCRIPTION = 'google_pubsub_subscription.filtered_push';
const FIRESTORE = 'google_project_iam_member.function_firestore';
const PUBLISHES = 'google_pubsub_topic_iam_member.function_publishes';
const PULLS = 'google_pubsub_subscription_iam_member.function_pulls';

// --- Loading -------------------------------------------------------------------------------------

async function loadModule(dir: string): Promise<TfModule> {
  const tf: TfModule = {
    resources: new Map(),
    data: new Map(),
    locals: {},
    variables: {},
    modules: new Map(),
    texts: new Map(),
  };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  for (const file of files) {
    const text = readFileSync(path.join(dir, file), 'utf8');
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
    for (const [name, blocks] of Object.entries((json.module ?? {}) as Record<string, Block[]>))
      tf.modules.set(`module.${name}`, blocks[0]!);
  }
  return tf;
}

async function loadTerraform(): Promise<Tf> {
  return {
    ...(await loadModule(tfDir)),
    manifest: JSON.parse(readFileSync(path.join(tfDir, 'functions.json'), 'utf8')) as Tf['manifest'],
    targetRoles: await loadModule(path.join(tfDir, 'target-roles')),
  };
}

/** Every .ts file under a directory of the repository. */
function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
    if (f.endsWith('.ts')) out.set(path.join(dir, f), readFileSync(path.join(root, dir, f), 'utf8'));
  }
  return out;
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

/** That an expression contains this HCL (white space folded). */
function assertHcl(value: unknown, hcl: string, message?: string) {
  const fold = (v: string) => v.replace(/\s+/g, ' ');
  assert.ok(fold(text(value)).includes(fold(hcl)), `${message ?? hcl}\n  in: ${fold(text(value))}`);
}

interface Refs {
  resources: Set<string>;
  vars: Set<string>;
  locals: Set<string>;
}

/** References of a value, following locals transitively. */
function refsOf(tf: TfModule, value: unknown): Refs {
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
function topicsOf(tf: TfModule, value: unknown): string[] {
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
function local(tf: TfModule, name: string): unknown {
  assert.ok(name in tf.locals, `local.${name} exists`);
  const v = tf.locals[name];
  const m = typeof v === 'string' ? /^\$\{local\.([a-z0-9_]+)\}$/.exec(v) : null;
  return m ? local(tf, m[1]!) : v;
}

/** A value of functions.json by its path (local.manifest.functions.vmLifecycle.trigger.filter). */
function manifestValue(tf: Tf, dotted: string): unknown {
  let v: unknown = tf.manifest;
  for (const part of dotted.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
  return v;
}

/**
 * A literal, or the default of the variable / the local it is (possibly through tostring or a resource's
 * name), or the value of functions.json it reads (local.manifest....).
 */
function staticValue(tf: TfModule, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const inner = /^\$\{(.*)\}$/s.exec(v)?.[1];
  if (inner === undefined) return v.includes('${') ? undefined : v;
  const fromManifest = /^local\.manifest\.([A-Za-z0-9_.]+)$/.exec(inner.trim())?.[1];
  if (fromManifest && 'manifest' in tf) return manifestValue(tf as Tf, fromManifest);
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

const resourcesOf = (tf: TfModule, type: string) => [...tf.resources].filter(([k]) => k.startsWith(`${type}.`));

/** A per-function resource's one block, for_each over the manifest. */
function block(tf: TfModule, key: string): Block {
  const b = tf.resources.get(key);
  assert.ok(b, `${key} is declared`);
  return b!;
}

/** The functions of the manifest, by entry point. */
const manifestFunctions = (tf: Tf) => Object.entries(tf.manifest.functions);

/**
 * The functions local.deployed_functions keeps with a delivery: those the manifest deploys with it (its
 * expression is checked below), and whose service accounts hold their grants (local.granted_functions).
 */
function deployedIn(tf: Tf, delivery: 'push' | 'pull'): string[] {
  return manifestFunctions(tf)
    .filter(([, f]) => f.delivery === null || f.delivery === delivery)
    .map(([name]) => name);
}
function grantedIn(tf: Tf, delivery: 'push' | 'pull'): string[] {
  const deployed = deployedIn(tf, delivery);
  return manifestFunctions(tf)
    .filter(([name, f]) => deployed.includes(name) || f.grantsInBothDeliveries)
    .map(([name]) => name);
}

/** The functions a per-function block's for_each keeps: `${{ for name, f in local.X : name => f if COND }}`. */
function forEachFilter(b: Block): { over: string; kind?: { op: '==' | '!='; value: string } } {
  const expr = text(b.for_each);
  const whole = /^\$\{local\.([a-z_]+)\}$/.exec(expr);
  if (whole) return { over: whole[1]! };
  const m = /^\$\{\{ for name, f in local\.([a-z_]+) : name => f if f\.trigger\.kind (==|!=) "([a-zA-Z]+)" \}\}$/.exec(
    expr,
  );
  assert.ok(m, `a for_each over the functions, by trigger kind: ${expr}`);
  return { over: m![1]!, kind: { op: m![2] as '==' | '!=', value: m![3]! } };
}

/** The entry points a per-function block makes, with each log_heartbeat_delivery. */
function instancesOf(tf: Tf, b: Block, delivery: 'push' | 'pull'): string[] {
  const { over, kind } = forEachFilter(b);
  const names =
    over === 'deployed_functions'
      ? deployedIn(tf, delivery)
      : over === 'granted_functions'
        ? grantedIn(tf, delivery)
        : over === 'manifest.functions'
          ? Object.keys(tf.manifest.functions)
          : assert.unreachable(`a for_each over local.${over}`)!;
  return names.filter((n) => {
    if (!kind) return true;
    const k = tf.manifest.functions[n]!.trigger.kind;
    return kind.op === '==' ? k === kind.value : k !== kind.value;
  });
}

/** The variable a `local.function_variables[...]` lookup reads, for a name the manifest gives. */
function functionVariable(tf: Tf, name: string): string {
  const variables = local(tf, 'function_variables') as Record<string, string>;
  assert.is(variables[name], `\${var.${name}}`, `local.function_variables.${name} is var.${name}`);
  return name;
}

/** The google_pubsub_topic (or the log topic) local.topics names for a setting, by its id or its name. */
function manifestTopic(tf: Tf, setting: string, by: 'id' | 'name' = 'id'): string[] {
  const topics = local(tf, 'topics') as Record<string, Block>;
  assert.ok(topics[setting], `local.topics names ${setting}`);
  return topicsOf(tf, topics[setting]![by]);
}

/** The service account resource key a value names (`${google_service_account.X.email}`). */
function serviceAccountOf(v: unknown): string | null {
  const m = /^\$\{(google_service_account\.[a-z0-9_]+)(\[each\.key\])?\.(?:email|id|name)\}$/.exec(text(v));
  return m ? m[1]! : null;
}

/** Every IAM member/binding resource whose member is the given (single) service account. */
function bindingsOf(tf: TfModule, saKey: string): Array<{ key: string; type: string; block: Block }> {
  const email = `\${${saKey}.email}`;
  return [...tf.resources]
    .filter(([k]) => /_iam_(member|binding|policy)\./.test(k))
    .filter(([, b]) =>
      [b.member, ...((b.members as unknown[]) ?? [])].some((m) => text(m) === `serviceAccount:${email}`),
    )
    .map(([key, block]) => ({ key, type: key.split('.')[0]!, block }));
}

/** The setting whose value designates a topic, per function_settings. */
function settingTopics(tf: TfModule, setting: string): string[] {
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  assert.ok(setting in settings, `${setting} is a function setting`);
  const topics = topicsOf(tf, settings[setting]);
  assert.is(topics.length, 1, `${setting} designates one google_pubsub_topic (got ${topics.join(', ') || 'none'})`);
  return topics;
}

/**
 * The custom roles the target-roles module makes for one holder and where it binds them: a role with
 * exactly the target permissions in every target project, and (only with folder or organisation targets)
 * one organisation-level role with those and the parent ones, bound on each target folder and organisation.
 */
function assertTargetRoles(tf: Tf) {
  const m = tf.targetRoles;
  const role = block(m, 'google_project_iam_custom_role.target');
  const member = block(m, 'google_project_iam_member.target');
  for (const [what, b] of [
    ['the project role', role],
    ['its binding', member],
  ] as const) {
    assert.is(b.for_each, '${toset(var.target_project_ids)}', `${what} is made in every listed target project`);
    assert.is(b.project, '${each.value}', `${what} lives in the target project`);
  }
  assert.is(role.permissions, '${var.permissions}', 'the project role has exactly the target permissions');
  assert.is(member.role, '${google_project_iam_custom_role.target[each.value].name}');
  assert.is(member.member, '${var.member}');
  const parent = block(m, 'google_organization_iam_custom_role.parent');
  assert.is(parent.count, '${local.has_target_parents ? 1 : 0}', 'only for folder or organisation targets');
  assert.is(
    m.locals.has_target_parents,
    '${length(var.target_folders) + length(var.target_organizations) > 0}',
    'a folder or organisation among the targets',
  );
  assert.is(parent.org_id, '${var.organization_id}', 'the parent role is defined in the organisation');
  assert.is(parent.permissions, '${concat(var.permissions, var.parent_permissions)}', 'target and parent permissions');
  const folder = block(m, 'google_folder_iam_member.parent');
  const org = block(m, 'google_organization_iam_member.parent');
  assert.equal(
    [folder.for_each, folder.folder, folder.role, folder.member],
    [
      '${toset(var.target_folders)}',
      '${each.value}',
      '${google_organization_iam_custom_role.parent[0].name}',
      '${var.member}',
    ],
    'bound on every target folder',
  );
  assert.equal(
    [org.for_each, org.org_id, org.role, org.member],
    [
      '${toset(var.target_organizations)}',
      '${each.value}',
      '${google_organization_iam_custom_role.parent[0].name}',
      '${var.member}',
    ],
    'bound on every target organisation',
  );
  assert.equal(
    [...m.resources.keys()].sort(),
    [
      'google_folder_iam_member.parent',
      'google_organization_iam_custom_role.parent',
      'google_organization_iam_member.parent',
      'google_project_iam_custom_role.target',
      'google_project_iam_member.target',
    ],
    'the module makes nothing else',
  );
  const call = tf.modules.get('module.target_roles')!;
  assert.ok(call, 'iam.tf calls the target-roles module');
  assert.equal(
    [call.for_each, call.member, call.permissions, call.parent_permissions],
    ['${local.target_role_holders}', '${each.value.member}', '${each.value.target}', '${each.value.parent}'],
  );
  for (const v of ['target_project_ids', 'target_folders', 'target_organizations'])
    assert.is(call[v], `\${local.${v}}`, `the module's ${v} are the deployment's`);
  assert.is(call.organization_id, '${var.organization_id}');
}

// --- Tests ---------------------------------------------------------------------------------------

const t = suite<{ tf: Tf }>('terraform');
t.before(async (ctx) => {
  ctx.tf = await loadTerraform();
});

t('every reference resolves: variables, locals, resources, data sources', ({ tf }) => {
  // The root module and the target-roles module, each in its own scope.
  for (const m of [tf, tf.targetRoles]) {
    const values: unknown[] = [
      ...m.resources.values(),
      ...m.data.values(),
      ...m.modules.values(),
      ...Object.values(m.locals),
    ];
    const all = values.map(text).join('\n');
    for (const r of all.matchAll(VAR_REF)) assert.ok(r[1]! in m.variables, `var.${r[1]} is declared`);
    for (const r of all.matchAll(LOCAL_REF)) assert.ok(r[1]! in m.locals, `local.${r[1]} is declared`);
    for (const r of all.matchAll(RESOURCE_REF))
      assert.ok(m.resources.has(`${r[1]}.${r[2]}`), `${r[1]}.${r[2]} is declared`);
    for (const r of all.matchAll(DATA_REF))
      assert.ok(m.data.has(`${r[1]}.${r[2]}`), `data.${r[1]}.${r[2]} is declared`);
  }
  // Every input of the module call is a variable of the module, and every variable without a default is set.
  const call = tf.modules.get('module.target_roles')!;
  const inputs = Object.keys(call).filter((k) => !['source', 'for_each'].includes(k));
  for (const k of inputs) assert.ok(k in tf.targetRoles.variables, `the target-roles module declares var.${k}`);
  for (const [k, v] of Object.entries(tf.targetRoles.variables))
    if (!('default' in v)) assert.ok(inputs.includes(k), `module.target_roles sets ${k}`);
  assert.ok(tf.resources.size > 50, `a full deployment (${tf.resources.size} resources)`);
});

t('the google provider is pinned to ~> 6 and state lives in a gcs backend', ({ tf }) => {
  const versions = tf.texts.get('versions.tf')!;
  assert.match(versions, /source\s*=\s*"hashicorp\/google"/);
  assert.match(versions, /version\s*=\s*"~> 6\.0"/);
  assert.match(versions, /backend\s+"gcs"/);
});

t(
  'every function of the manifest is registered by functions/index.ts and deployed from functions.json',
  async ({ tf }) => {
    // The entry points: functions/index.ts registers every function of the manifest (and nothing else).
    const { functionList } = await import('../../functions/manifest.js');
    const { getFunction } = await import('@google-cloud/functions-framework/testing');
    await import('../../functions/index.js');
    const registered = functionList().map((f) => f.name);
    assert.ok(registered.length >= 3, `functions/index.ts registers entry points (${registered.join(', ')})`);
    for (const ep of registered) assert.ok(getFunction(ep), `${ep} is registered`);
    assert.equal(registered, Object.keys(tf.manifest.functions), 'functions.json lists the same functions');
    // Deployed: the one function block makes every manifest function, each with one delivery or both.
    const fn = block(tf, FUNCTION);
    assert.is(fn.for_each, '${local.deployed_functions}');
    assertHcl(
      tf.locals.deployed_functions,
      'for name, f in local.manifest.functions : name => f ' +
        'if f.delivery == null || f.delivery == var.log_heartbeat_delivery',
      'deployed: every function but the other delivery',
    );
    assert.is(tf.locals.manifest, '${jsondecode(file("${path.module}/functions.json"))}');
    assert.equal(
      [...new Set(DELIVERIES.flatMap((d) => deployedIn(tf, d)))].sort(),
      [...registered].sort(),
      'every registered entry point is deployed',
    );
    assert.is(one(fn, 'build_config').entry_point, '${each.key}', 'the entry point is the manifest key');
    // The contract's entry points have the triggers it gives them (checked below); any other function a
    // trigger of a kind the blocks deploy (Pub/Sub ones are checked below too).
    const contract = { ...AUDIT_LOG_TRIGGERS, ...PUBSUB_TRIGGERS, ...FILTERED_PUSH };
    for (const [ep, f] of manifestFunctions(tf))
      assert.ok(
        ep in contract || HTTP_FUNCTIONS.includes(ep) || f.trigger.kind === 'pubsub',
        `${ep} has a known trigger or is a known HTTP function (${f.trigger.kind})`,
      );
    assert.equal(
      functionList()
        .filter((f) => f.trigger.kind === 'http')
        .map((f) => f.name),
      [...HTTP_FUNCTIONS],
      'the HTTP functions registered are the ones checked below',
    );
  },
);

t('each function: nodejs22, internal ingress, bounded instances, its own service account, every setting', ({ tf }) => {
  const fn = block(tf, FUNCTION);
  const build = one(fn, 'build_config', FUNCTION);
  const service = one(fn, 'service_config', FUNCTION);
  assert.is(build.runtime, 'nodejs22', `${FUNCTION} runtime`);
  const storage = one(one(build, 'source', FUNCTION), 'storage_source', FUNCTION);
  assert.equal(
    refsOf(tf, storage).vars,
    new Set(['function_source_bucket', 'function_source_object']),
    `${FUNCTION} builds the uploaded zip`,
  );
  assert.is(service.ingress_settings, '${local.function_ingress[each.value.ingress]}');
  const ingress = local(tf, 'function_ingress') as Record<string, string>;
  assert.is(ingress.internal, 'ALLOW_INTERNAL_ONLY');
  assert.is(
    ingress.browsers,
    '${var.status_page_iap ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"}',
    "browsers reach it directly (IAM) or through IAP's load balancer only",
  );
  assert.is(service.max_instance_count, '${local.function_variables[each.value.maxInstances]}');
  assert.is(service.service_account_email, `\${${ACCOUNT}[each.key].email}`, 'each its own service account');
  assert.is(service.environment_variables, '${local.function_environment}', 'each gets the shared settings');
  const account = block(tf, ACCOUNT);
  assert.is(account.for_each, '${local.manifest.functions}', 'a service account for every function');
  assert.is(account.account_id, '${local.function_names[each.key]}');
  for (const [ep, f] of manifestFunctions(tf)) {
    assert.is(f.ingress, HTTP_FUNCTIONS.includes(ep) ? 'browsers' : 'internal', `${ep} ingress`);
    const max = functionVariable(tf, f.maxInstances);
    const maxDefault = tf.variables[max]?.default;
    assert.ok(typeof maxDefault === 'number' && maxDefault >= 1, `${ep}: var.${max} defaults to a positive number`);
    if (f.concurrency) functionVariable(tf, f.concurrency);
  }
  assert.is(service.max_instance_request_concurrency, '${try(local.function_variables[each.value.concurrency], null)}');
  assert.is(service.available_cpu, '${each.value.cpu}');
  for (const shared of [
    'google_service_account.trigger',
    'google_service_account.publisher',
    'google_service_account.build',
  ]) {
    assert.not.ok(serviceAccountOf(service.service_account_email) === shared, `${shared} runs no function`);
  }
});

t('each function has the smallest Cloud Functions memory size of at least twice its measured peak', ({ tf }) => {
  // The peaks are `npm run bench` figures recorded in the manifest; this checks the sizes follow them.
  const SIZES_MIB = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
  const mib = (v: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(v);
    assert.ok(m, `${v} is a size in Mi or Gi`);
    return Number(m![1]) * (m![2] === 'Gi' ? 1024 : 1);
  };
  const service = one(block(tf, FUNCTION), 'service_config');
  assert.is(service.available_memory, '${each.value.memory}', 'each function takes its size from functions.json');
  for (const [ep, f] of manifestFunctions(tf)) {
    const peak = f.peakMb;
    assert.ok(typeof peak === 'number' && peak > 0, `${ep} has a measured peak`);
    const expected = SIZES_MIB.find((size) => size >= 2 * peak)!;
    assert.is(mib(f.memory), expected, `${ep}: peak ${peak} MB x 2 -> ${expected} MiB`);
  }
});

t('vmLifecycle: one audit-log trigger per method name the code acts on, retried, global', ({ tf }) => {
  const fn = block(tf, FUNCTION);
  // The function's own trigger: made for audit-log and Pub/Sub functions, from their manifest entry.
  const dynamic = one(fn.dynamic as Block, 'event_trigger', FUNCTION);
  assert.is(
    dynamic.for_each,
    '${contains(["auditLog", "pubsub"], each.value.trigger.kind) ? [each.value.trigger] : []}',
    'an Eventarc trigger for audit-log and Pub/Sub functions, whatever the deployment',
  );
  const trigger = one(dynamic, 'content', FUNCTION);
  assert.is(trigger.event_type, '${event_trigger.value.eventType}');
  assert.is(trigger.retry_policy, 'RETRY_POLICY_RETRY', `${FUNCTION} retries`);
  assert.is(trigger.trigger_region, '${event_trigger.value.kind == "auditLog" ? "global" : var.region}');
  assert.is(serviceAccountOf(trigger.service_account_email), 'google_service_account.trigger');
  const filters = one(trigger.dynamic as Block, 'event_filters', FUNCTION);
  assert.is(filters.for_each, '${event_trigger.value.eventFilters}');
  assert.equal(one(filters, 'content'), { attribute: '${event_filters.key}', value: '${event_filters.value}' });
  for (const [ep, methods] of Object.entries(AUDIT_LOG_TRIGGERS)) {
    const f = tf.manifest.functions[ep]!;
    assert.is(f.trigger.kind, 'auditLog', `${ep} always has its trigger`);
    assert.is(f.trigger.eventType, AUDIT_LOG_TYPE);
    // Audit logs of VMs in every region: the trigger region above is global for audit-log functions.
    assert.equal(Object.keys(f.trigger.eventFilters).sort(), ['methodName', 'serviceName'], `${ep} filters`);
    assert.is(f.trigger.eventFilters.serviceName, 'compute.googleapis.com');
    const seen = [f.trigger.eventFilters.methodName!];
    assert.is(seen[0], f.trigger.methods![0], "the function's own trigger takes the first method");
    // Further Eventarc triggers routed to the same Cloud Run service.
    for (const [tkey, tr] of resourcesOf(tf, 'google_eventarc_trigger')) {
      const dest = one(one(tr, 'destination', tkey), 'cloud_run_service', tkey);
      if (!text(dest.service).includes(`${FUNCTION}["${ep}"]`)) continue;
      assert.is(tr.location, 'global', `${tkey} location`);
      assert.is(serviceAccountOf(tr.service_account), 'google_service_account.trigger', `${tkey} service account`);
      if (tr.retry_policy) assert.is.not(one(tr, 'retry_policy').max_attempts, 1, `${tkey} must retry`);
      const criteria = Object.fromEntries(
        (tr.matching_criteria as Block[]).map((c) => [c.attribute, staticValue(tf, c.value) ?? c.value]),
      );
      assert.is(criteria.type, AUDIT_LOG_TYPE, `${tkey} type`);
      assert.is(criteria.serviceName, 'compute.googleapis.com', `${tkey} serviceName`);
      assert.is(Object.keys(criteria).length, 3, `${tkey} filters on type, serviceName, methodName`);
      assert.is(criteria.methodName, '${each.value}');
      assert.is(tr.for_each, '${toset(local.vm_lifecycle_other_methods)}', `${tkey}: one per other method`);
      assert.is(tf.locals.vm_lifecycle_methods, `\${local.manifest.functions.${ep}.trigger.methods}`);
      assert.is(
        tf.locals.vm_lifecycle_other_methods,
        '${slice(local.vm_lifecycle_methods, 1, length(local.vm_lifecycle_methods))}',
        'every method but the first',
      );
      seen.push(...f.trigger.methods!.slice(1));
    }
    assert.equal([...seen].sort(), [...methods].sort(), `${ep}: exactly one trigger per method name`);
  }
});

t('Pub/Sub functions: triggered by the topic of their setting, retried, as the trigger account', ({ tf }) => {
  const trigger = one(one(block(tf, FUNCTION).dynamic as Block, 'event_trigger'), 'content');
  assert.is(
    trigger.pubsub_topic,
    '${event_trigger.value.kind == "pubsub" ? local.topics[event_trigger.value.topic].id : null}',
  );
  // The contract's Pub/Sub entry points on the topics it names; every Pub/Sub function on its setting's topic.
  for (const [ep, setting] of Object.entries(PUBSUB_TRIGGERS)) {
    const f = tf.manifest.functions[ep]!;
    assert.is(f.trigger.kind, 'pubsub', `${ep}: an Eventarc Pub/Sub trigger (retried, as the trigger account: above)`);
    assert.is(f.trigger.topic, setting, `${ep} reads the ${setting} topic`);
  }
  for (const [ep, f] of manifestFunctions(tf).filter(([, fn]) => fn.trigger.kind === 'pubsub')) {
    const setting = f.trigger.topic!;
    assert.is(f.trigger.eventType, PUBSUB_TYPE, `${ep} event type`);
    assert.equal(manifestTopic(tf, setting), settingTopics(tf, setting), `${ep} reads the ${setting} topic`);
    assert.equal(f.trigger.eventFilters, {}, `${ep}: no further filters`);
  }
});

t(
  "logHeartbeat: a push subscription on the log topic with the code's filter, retried, as the trigger account",
  ({ tf }) => {
    const sub = block(tf, FILTERED_PUSH_SUBSCRIPTION);
    const skey = FILTERED_PUSH_SUBSCRIPTION;
    assert.equal(forEachFilter(sub), { over: 'deployed_functions', kind: { op: '==', value: 'filteredPush' } });
    for (const [ep, { setting, filter }] of Object.entries(FILTERED_PUSH)) {
      const f = tf.manifest.functions[ep]!;
      assert.is(f.trigger.kind, 'filteredPush', `${ep}: no trigger (it could not filter), a push subscription`);
      assert.equal(
        DELIVERIES.map((d) => instancesOf(tf, sub, d).includes(ep)),
        [true, false],
        `${skey}: exists with its function, in push delivery only`,
      );
      assert.equal(
        DELIVERIES.map((d) => deployedIn(tf, d).includes(ep)),
        [true, false],
        `${ep}: deployed in push delivery only`,
      );
      assert.is(sub.project, '${var.project_id}', `${skey} lives in the orchestrator project`);
      assert.is(sub.topic, '${local.topics[each.value.trigger.topic].id}');
      assert.is(f.trigger.topic, setting);
      assert.equal(manifestTopic(tf, setting), settingTopics(tf, setting), `${skey} reads the ${setting} topic`);
      assert.is(sub.filter, '${each.value.trigger.filter}');
      assert.is(f.trigger.filter, filter, `${skey}: the filter is the code's, character for character`);
      parseFilter(filter); // valid Pub/Sub filter syntax, at most 256 bytes
      const push = one(sub, 'push_config', skey);
      const topic = 'local.topics[each.value.trigger.topic]';
      assert.is(
        text(push.push_endpoint).replace(/\s+/g, ' '),
        `\${join("/", [ ${FUNCTION}[each.key].service_config[0].uri, ` +
          `"projects", ${topic}.project, "topics", ${topic}.name, ])}`,
        `${skey}: <function URL>/projects/P/topics/T (the Functions Framework learns the topic from the path)`,
      );
      const logTopic = (local(tf, 'topics') as Record<string, Block>)[setting]!;
      assert.equal(
        [logTopic.project, logTopic.name],
        ['${local.log_topic_project}', '${var.log_topic}'],
        `${setting}: its project and name`,
      );
      const oidc = one(push, 'oidc_token', skey);
      assert.is(serviceAccountOf(oidc.service_account_email), 'google_service_account.trigger');
      assert.is(
        oidc.audience,
        `\${${FUNCTION}[each.key].service_config[0].uri}`,
        `${skey}: the token is for the function`,
      );
      const retry = one(sub, 'retry_policy', skey);
      assert.ok(retry.minimum_backoff && retry.maximum_backoff, `${skey} retries with backoff`);
      assert.is(one(sub, 'expiration_policy', skey).ttl, '', `${skey} never expires`);
      assert.is(one(block(tf, FUNCTION), 'service_config').timeout_seconds, '${local.function_timeouts[each.key]}');
      assert.is(sub.ack_deadline_seconds, '${min(600, local.function_timeouts[each.key])}');
      assert.ok(
        f.timeoutAfter === null && f.timeoutSeconds <= 600,
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

    const drain = tf.manifest.functions.logHeartbeatDrain!;
    assert.equal(
      DELIVERIES.map((d) => instancesOf(tf, block(tf, FUNCTION), d).includes('logHeartbeatDrain')),
      [false, true],
      'logHeartbeatDrain: deployed in pull delivery only',
    );
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
    assert.equal([drain.timeoutSeconds, drain.timeoutAfter], [60, 'log_drain_budget_seconds']);
    functionVariable(tf, drain.timeoutAfter!);
    assert.match(
      text(tf.locals.function_timeouts),
      /name => f\.timeoutSeconds \+ \(f\.timeoutAfter == null \? 0 : local\.function_variables\[f\.timeoutAfter\]\)/,
      'the timeout: var.log_drain_budget_seconds + 60',
    );
    const budget = tf.variables.log_drain_budget_seconds!;
    assert.is(String(budget.default), String(parseConfig({}).LOG_DRAIN_BUDGET_SECONDS));
    assert.match(text(one(budget, 'validation').condition), />= 5 && var\.log_drain_budget_seconds <= 480/);
    for (const bad of ['4', '481'])
      assert.throws(() => parseConfig({ LOG_DRAIN_BUDGET_SECONDS: bad }), /LOG_DRAIN_BUDGET_SECONDS/);

    // Its service account pulls from that subscription, and only in pull mode has any binding at all.
    assert.equal(drain.permissions.subscribes, ['LOG_HEARTBEAT_SUBSCRIPTION']);
    const pulls = block(tf, PULLS);
    assert.is(pulls.for_each, '${local.function_pulls}');
    assert.equal(
      [pulls.role, pulls.subscription],
      ['roles/pubsub.subscriber', '${local.subscriptions[each.value.subscription]}'],
    );
    assert.is(
      (local(tf, 'subscriptions') as Record<string, string>).LOG_HEARTBEAT_SUBSCRIPTION,
      `\${one(${subKey}[*].name)}`,
    );
    assert.not.ok(drain.grantsInBothDeliveries, 'its grants follow the delivery');
    assert.equal(
      DELIVERIES.map((d) => grantedIn(tf, d).includes('logHeartbeatDrain')),
      [false, true],
      'logHeartbeatDrain: pull delivery only',
    );

    // Cloud Scheduler ticks every minute on the topic the drain is triggered by; both only in pull mode.
    const job = tf.resources.get('google_cloud_scheduler_job.log_drain_tick')!;
    assert.is(job.count, PULL_ONLY);
    assert.is(job.schedule, '* * * * *', 'every minute');
    const target = one(job, 'pubsub_target');
    assert.equal(topicsOf(tf, target.topic_name), settingTopics(tf, 'LOG_DRAIN_TICK_TOPIC'));
    assert.match(text(target.data), /^\$\{base64encode\(jsonencode\(\{.+\}\)\)\}$/s, 'a non-empty tick');
    assert.is(tf.resources.get(settingTopics(tf, 'LOG_DRAIN_TICK_TOPIC')[0]!)!.count, PULL_ONLY);
    assert.equal(
      DELIVERIES.map((d) => instancesOf(tf, block(tf, INVOKER), d).includes('logHeartbeatDrain')),
      [false, true],
      "the drain's invoker binding: pull delivery only",
    );
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
    const fnKey = `${FUNCTION}["vmLifecycle"]`;
    const subs = resourcesOf(tf, 'google_pubsub_subscription').filter(([, sub]) =>
      text((sub.push_config as Block[] | undefined)?.[0]?.push_endpoint).includes(`${fnKey}.service_config[0].uri`),
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
    const lifecycle = tf.manifest.functions.vmLifecycle!;
    assert.is(lifecycle.timeoutAfter, null);
    assert.ok(
      Number(sub.ack_deadline_seconds) >= lifecycle.timeoutSeconds,
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
  const manifest = readFileSync(path.join(tfDir, 'functions.json'), 'utf8');
  for (const [file, content] of [
    ...tf.texts,
    ...[...tf.targetRoles.texts].map(([f, c]) => [`target-roles/${f}`, c] as const),
    ['terraform.tfvars.example', example] as const,
    ['functions.json', manifest] as const,
  ]) {
    for (const bad of ['roles/owner', 'roles/editor', 'allUsers', 'allAuthenticatedUsers']) {
      assert.not.ok(content.includes(bad), `${file} mentions ${bad}`);
    }
  }
});

t("each function's service account holds exactly what its manifest entry lists", ({ tf }) => {
  // One block per kind of grant for all functions, each granting what the function's entry lists, while
  // the function is deployed (or in both deliveries, where the manifest says so).
  assertHcl(
    tf.locals.granted_functions,
    'for name, f in local.manifest.functions : name => f ' +
      'if contains(keys(local.deployed_functions), name) || f.grantsInBothDeliveries',
  );
  const member = (key: string) => `serviceAccount:\${${ACCOUNT}[${key}].email}`;
  const firestore = block(tf, FIRESTORE);
  assert.is(
    firestore.for_each,
    '${{ for name, f in local.granted_functions : name => f if f.permissions.firestore != "none" }}',
  );
  assert.equal(
    [firestore.project, firestore.role, firestore.member],
    ['${var.project_id}', '${local.firestore_roles[each.value.permissions.firestore]}', member('each.key')],
  );
  assert.equal(local(tf, 'firestore_roles'), { write: 'roles/datastore.user', read: 'roles/datastore.viewer' });
  const publishes = block(tf, PUBLISHES);
  const pulls = block(tf, PULLS);
  assert.equal([publishes.for_each, pulls.for_each], ['${local.function_publishes}', '${local.function_pulls}']);
  for (const [grants, list, item] of [
    ['function_publishes', 'publishes', 'topic = topic'],
    ['function_pulls', 'subscribes', 'subscription = sub'],
  ] as const) {
    const v = list === 'publishes' ? 'topic' : 'sub';
    assertHcl(
      tf.locals[grants],
      `for name, f in local.granted_functions : { for ${v} in f.permissions.${list} : ` +
        `"\${name}/\${${v}}" => { function = name, ${item} } }`,
    );
  }
  assert.equal(
    [publishes.project, publishes.topic, publishes.role, publishes.member],
    [
      '${var.project_id}',
      '${local.topics[each.value.topic].name}',
      'roles/pubsub.publisher',
      member('each.value.function'),
    ],
    'publisher on the one topic, never project-wide',
  );
  assert.is(pulls.member, member('each.value.function'));
  // In the targets: the module, for every function that calls something there, with its own permissions.
  assertTargetRoles(tf);
  for (const hcl of [
    'for name, f in local.granted_functions : name => { ' +
      'member = "serviceAccount:${google_service_account.function[name].email}"',
    'target = f.permissions.target parent = f.permissions.parent } if length(f.permissions.target) > 0',
  ])
    assertHcl(tf.locals.target_role_holders, hcl);
  // Nothing else is granted to a function's service account.
  const granting = [...tf.resources].filter(([, b]) => text(b.member).includes(`${ACCOUNT}[`)).map(([k]) => k);
  assert.equal(granting.sort(), [FIRESTORE, PULLS, PUBLISHES].sort(), 'no other bindings');
  // The settings the manifest names grants by are the topics and subscriptions Terraform gives the code.
  const settings = local(tf, 'function_settings') as Record<string, unknown>;
  for (const [ep, f] of manifestFunctions(tf)) {
    for (const s of f.permissions.publishes)
      assert.equal(manifestTopic(tf, s, 'name'), settingTopics(tf, s), `${ep} publishes to the ${s} topic`);
    for (const s of f.permissions.subscribes)
      assert.equal(
        [...refsOf(tf, (local(tf, 'subscriptions') as Record<string, string>)[s]).resources],
        [...refsOf(tf, settings[s]).resources],
        `${ep} pulls from the ${s} subscription`,
      );
  }
});

t('the publisher service account holds exactly PUBLISHER_PERMISSIONS (plus its build logs)', ({ tf }) => {
  assert.equal(tf.manifest.publisher, JSON.parse(JSON.stringify(PUBLISHER_PERMISSIONS)), 'functions.json carries them');
  assertHcl(
    tf.locals.target_role_holders,
    'publisher = { member = "serviceAccount:${google_service_account.publisher.email}" caller = "osq-orch publish" ' +
      'title = "publisher" role_id = "${local.role_prefix}Publisher" ' +
      'target = local.manifest.publisher.target parent = local.manifest.publisher.parent }',
    'the publisher holds its target and parent permissions through the target-roles module',
  );
  const bindings = bindingsOf(tf, 'google_service_account.publisher');
  const firestore = bindings.filter((b) => b.key === 'google_project_iam_member.publisher_firestore');
  assert.equal(
    firestore.map((b) => b.block.role),
    ['${local.firestore_roles[local.manifest.publisher.firestore]}'],
    'publisher: Firestore (writes)',
  );
  assert.not.ok(
    bindings.some((b) => b.type === 'google_pubsub_topic_iam_member'),
    'the publisher publishes to no topic',
  );
  const bucket = bindings.filter((b) => b.type === 'google_storage_bucket_iam_member');
  assert.is(bucket.length, 1, 'one binding on a bucket');
  assert.is(bucket[0]!.block.bucket, '${google_storage_bucket.config.name}', 'on the configuration bucket');
  const roleKey = /^\$\{(google_project_iam_custom_role\.[a-z0-9_]+)\.name\}$/.exec(text(bucket[0]!.block.role))?.[1];
  assert.ok(roleKey, 'the bucket role is a custom role');
  assert.is(tf.resources.get(roleKey!)!.permissions, '${local.manifest.publisher.bucket}', 'bucket permissions');
  const rest = bindings.filter((b) => b !== bucket[0] && b !== firestore[0]);
  assert.equal(
    rest.map((b) => [b.type, b.block.role]),
    [['google_project_iam_member', 'roles/logging.logWriter']],
    'besides: only Cloud Build log writing',
  );
});

t("the trigger account may invoke each function's service and receive events, nothing else", ({ tf }) => {
  const bindings = bindingsOf(tf, 'google_service_account.trigger');
  const invokers = bindings.filter((b) => b.type === 'google_cloud_run_v2_service_iam_member');
  assert.equal(
    invokers.map((b) => b.key),
    [INVOKER],
    'one invoker block for all functions',
  );
  const invoker = invokers[0]!.block;
  assert.is(invoker.role, 'roles/run.invoker');
  assert.is(invoker.name, `\${${FUNCTION}[each.key].service_config[0].service}`, "each function's own service");
  assert.equal(forEachFilter(invoker), { over: 'deployed_functions', kind: { op: '!=', value: 'http' } });
  for (const delivery of DELIVERIES)
    assert.equal(
      instancesOf(tf, invoker, delivery),
      instancesOf(tf, block(tf, FUNCTION), delivery).filter((ep) => !HTTP_FUNCTIONS.includes(ep)),
      `one invoker binding per event-driven function (${delivery} delivery)`,
    );
  const rest = bindings.filter((b) => !invokers.includes(b)).map((b) => [b.type, b.block.role]);
  assert.equal(rest, [['google_project_iam_member', 'roles/eventarc.eventReceiver']]);
  for (const [key, b] of resourcesOf(tf, 'google_cloud_run_v2_service_iam_member')) {
    // An HTTP function's viewers: the next test.
    if (HTTP_FUNCTIONS.some((ep) => text(b.name).includes(`${FUNCTION}["${ep}"]`))) continue;
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
  const fn = block(tf, FUNCTION);
  assert.not.ok(fn.event_trigger, `${FUNCTION}: a trigger only where the manifest gives one`);
  for (const ep of HTTP_FUNCTIONS) {
    const key = `${FUNCTION}["${ep}"]`;
    // The Eventarc trigger is made for audit-log and Pub/Sub functions only (and so no retry policy).
    assert.is(tf.manifest.functions[ep]!.trigger.kind, 'http', `${key} has no event trigger`);
    assert.match(
      text(one(fn.dynamic as Block, 'event_trigger').for_each),
      /contains\(\["auditLog", "pubsub"\], each\.value\.trigger\.kind\)/,
    );
    // Who may invoke its Cloud Run service: the viewers (without IAP) or IAP's service agent (with it);
    // the trigger account's invoker block leaves HTTP functions out (checked with the trigger account).
    const invokers = [...tf.resources]
      .filter(([k]) => /_iam_(member|binding|policy)\./.test(k))
      .filter(([, b]) => text(b.name ?? b.service).includes(key));
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

/**
 * A Cloud Logging `jsonPayload.message=~"RE"` condition as a
 * JavaScript regular expression (RE2 and JS agree on these).
 */
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
