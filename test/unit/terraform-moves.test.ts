// A deployment made before the function manifest keeps every resource: every resource address it has in
// its state (the Terraform of 9f964a8, recorded in test/fixtures/terraform-addresses-9f964a8.json) is
// either still declared as it was, or moved by infra/terraform/moved.tf to exactly one address the
// Terraform declares now, existing with the same log_heartbeat_delivery. Offline (terraform plan needs
// the provider); the rules Terraform applies to moved blocks (no source still declared, one destination
// per source, one source per destination, no cycle) are checked here too.
// `tsx test/unit/terraform-moves.test.ts --list` prints every address, before and after, and what is new
// (nothing, at this change); `--write-record` writes the record from git.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(import.meta.dirname, '../..');
const tfDir = path.join(root, 'infra/terraform');
const FIXTURE = path.join(root, 'test/fixtures/terraform-addresses-9f964a8.json');
const BEFORE = '9f964a8';

type Block = Record<string, unknown>;
/** A resource's address with what decides its instances (count or for_each, as written). */
interface Declared {
  count?: string;
  for_each?: string;
}
interface Config {
  resources: Record<string, Declared>;
  moved: Array<{ from: string; to: string }>;
}

const unwrap = (v: unknown) => String(v).replace(/^\$\{(.*)\}$/s, '$1');

/** The resources and moved blocks of a set of .tf files (name -> text). */
async function configOf(files: Map<string, string>, prefix = ''): Promise<Config> {
  const out: Config = { resources: {}, moved: [] };
  for (const [file, text] of files) {
    const json = (await parse(file, text)) as Record<string, unknown>;
    for (const [type, byName] of Object.entries((json.resource ?? {}) as Record<string, Record<string, Block[]>>))
      for (const [name, [b]] of Object.entries(byName)) {
        const declared: Declared = {};
        if (b!.count !== undefined) declared.count = unwrap(b!.count);
        if (b!.for_each !== undefined) declared.for_each = unwrap(b!.for_each);
        out.resources[`${prefix}${type}.${name}`] = declared;
      }
    for (const m of (json.moved ?? []) as Block[]) out.moved.push({ from: unwrap(m.from), to: unwrap(m.to) });
  }
  return out;
}

const tfFiles = (dir: string) =>
  new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.tf'))
      .sort()
      .map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]),
  );

/** The Terraform of a commit, from git (for checking the fixture where the history is at hand). */
function filesAt(commit: string): Map<string, string> | null {
  try {
    const names = execFileSync('git', ['ls-tree', '--name-only', `${commit}:infra/terraform`], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\n')
      .filter((f) => f.endsWith('.tf'));
    return new Map(
      names.map((f) => [
        f,
        execFileSync('git', ['show', `${commit}:infra/terraform/${f}`], { cwd: root, encoding: 'utf8' }),
      ]),
    );
  } catch {
    return null; // a shallow clone or a source upload without history
  }
}

// --- The configuration now, per delivery -----------------------------------------------------------

interface Manifest {
  functions: Record<
    string,
    {
      trigger: { kind: string };
      delivery: 'push' | 'pull' | null;
      grantsInBothDeliveries: boolean;
      permissions: { target: string[]; publishes: string[]; subscribes: string[]; firestore: string };
    }
  >;
}
type Delivery = 'push' | 'pull';
const DELIVERIES: Delivery[] = ['push', 'pull'];

/**
 * The instance keys of a for_each over the manifest, as locals.tf and iam.tf write them (terraform.test.ts
 * checks those expressions); null for any other for_each.
 */
function manifestKeys(manifest: Manifest, forEach: string, delivery: Delivery): string[] | null {
  const fns = Object.entries(manifest.functions);
  const deployed = fns.filter(([, f]) => f.delivery === null || f.delivery === delivery).map(([n]) => n);
  const granted = fns.filter(([n, f]) => deployed.includes(n) || f.grantsInBothDeliveries);
  const byKind =
    /^\{ for name, f in local\.deployed_functions : name => f if f\.trigger\.kind (==|!=) "(\w+)" \}$/.exec(forEach);
  if (forEach === 'local.manifest.functions') return fns.map(([n]) => n);
  if (forEach === 'local.deployed_functions') return deployed;
  if (byKind)
    return deployed.filter((n) => (manifest.functions[n]!.trigger.kind === byKind[2]) === (byKind[1] === '=='));
  if (forEach === '{ for name, f in local.granted_functions : name => f if f.permissions.firestore != "none" }')
    return granted.filter(([, f]) => f.permissions.firestore !== 'none').map(([n]) => n);
  if (forEach === 'local.function_publishes')
    return granted.flatMap(([n, f]) => f.permissions.publishes.map((s) => `${n}/${s}`));
  if (forEach === 'local.function_pulls')
    return granted.flatMap(([n, f]) => f.permissions.subscribes.map((s) => `${n}/${s}`));
  if (forEach === 'local.target_role_holders')
    return [...granted.filter(([, f]) => f.permissions.target.length > 0).map(([n]) => n), 'publisher'];
  return null;
}

/** Whether an old resource with this count exists with a delivery (only the delivery's counts depend on it). */
function countExists(count: string | undefined, delivery: Delivery): boolean {
  if (count === 'local.log_heartbeat_push ? 1 : 0') return delivery === 'push';
  if (count === 'local.log_heartbeat_pull ? 1 : 0') return delivery === 'pull';
  return true;
}

interface Now {
  config: Config;
  manifest: Manifest;
  /** Per delivery: every declared per-function instance address, and each moved whole resource. */
  instances: Record<Delivery, Set<string>>;
}

async function now(): Promise<Now> {
  const manifest = JSON.parse(readFileSync(path.join(tfDir, 'functions.json'), 'utf8')) as Manifest;
  const config = await configOf(tfFiles(tfDir));
  const inModule = await configOf(tfFiles(path.join(tfDir, 'target-roles')));
  const instances = { push: new Set<string>(), pull: new Set<string>() };
  for (const delivery of DELIVERIES) {
    for (const [address, d] of Object.entries(config.resources)) {
      const keys = d.for_each ? manifestKeys(manifest, d.for_each, delivery) : null;
      for (const k of keys ?? []) instances[delivery].add(`${address}["${k}"]`);
    }
    // The module's resources, whole, in each of its instances.
    const holders = manifestKeys(manifest, 'local.target_role_holders', delivery)!;
    for (const k of holders)
      for (const address of Object.keys(inModule.resources))
        instances[delivery].add(`module.target_roles["${k}"].${address}`);
  }
  // A module resource keeps the count or for_each its old resource had (checked below by expression).
  for (const [address, d] of Object.entries(inModule.resources))
    config.resources[`module.target_roles[*].${address}`] = d;
  return { config, manifest, instances };
}

/** Where an address ends up: the chain of moved blocks from it. */
function destination(moved: Config['moved'], address: string): string[] {
  const chain = [address];
  for (;;) {
    const at = chain[chain.length - 1]!;
    const next = moved.find((m) => m.from === at);
    if (!next) return chain;
    assert.not.ok(chain.includes(next.to), `a cycle of moved blocks through ${next.to}`);
    chain.push(next.to);
  }
}

interface Row {
  /** The old address: a resource (every instance it has), or the one instance of a count. */
  before: string;
  after: string;
  how: 'unchanged' | 'moved';
  /** The log_heartbeat_delivery values it exists with. */
  deliveries: Delivery[];
}

/** Every old resource with where it is now. */
function rows(before: Config, n: Now): Row[] {
  const out: Row[] = [];
  for (const [address, d] of Object.entries(before.resources)) {
    const deliveries = DELIVERIES.filter((x) => countExists(d.count, x));
    const declared = n.config.resources[address];
    if (declared) {
      assert.equal(declared, d, `${address}: still declared, with the same count or for_each`);
      out.push({ before: address, after: address, how: 'unchanged', deliveries });
      continue;
    }
    // A count's one instance moves by its [0]; a whole resource (its every instance) by its name.
    const instance = `${address}[0]`;
    const from = n.config.moved.some((m) => m.from === instance) ? instance : address;
    const chain = destination(n.config.moved, from);
    assert.ok(chain.length > 1, `${address} is no longer declared: a moved block takes it somewhere`);
    out.push({ before: from, after: chain[chain.length - 1]!, how: 'moved', deliveries });
  }
  return out;
}

/**
 * What a deployment of 9f964a8 would get that it did not have: per-function instances no old address
 * moves to, and resources neither declared before nor moved into. None at this change; a function or a
 * grant added later is new, as it should be, so this is listed (--list), not asserted.
 */
function newAddresses(rows: Row[], n: Now): string[] {
  const ends = new Set(rows.map((r) => r.after));
  const kept = new Set(rows.filter((r) => r.how === 'unchanged').map((r) => r.after));
  const movedInto = new Set([...ends].map(resourceOf));
  return [
    ...DELIVERIES.flatMap((d) => [...n.instances[d]].filter((a) => !ends.has(a)).map((a) => `${a} (${d})`)),
    ...Object.keys(n.config.resources).filter((a) => !kept.has(a) && !movedInto.has(a)),
  ];
}

/** The resource an address is an instance of, with module keys as [*]: function["x"] -> function. */
const resourceOf = (address: string) => address.replace(/\["[^"]+"\]$/, '').replace(/\["[^"]+"\]/g, '[*]');
const typeOf = (address: string) => /(google_[a-z0-9_]+)\.[a-z0-9_]+(\[[^\]]*\])?$/.exec(address)?.[1];

const t = suite<{ before: Config; now: Now; rows: Row[] }>(
  'terraform: moved blocks keep every address of a 9f964a8 deployment',
);
t.before(async (ctx) => {
  ctx.before = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Config;
  ctx.now = await now();
});

t(`the recorded addresses are those of ${BEFORE} (when the history is at hand)`, async ({ before }) => {
  const files = filesAt(BEFORE);
  if (!files) {
    console.log(`  note: ${BEFORE} is not in this clone's history; the record is taken as it is`);
    return;
  }
  assert.equal(await configOf(files), before);
});

t('Terraform accepts the moved blocks: no source still declared, one destination each, one source each', ({ now }) => {
  const { moved, resources } = now.config;
  for (const m of moved) {
    assert.not.ok(resourceOf(m.from.replace(/\[0\]$/, '')) in resources, `${m.from}: its resource is still declared`);
    assert.is(typeOf(m.from), typeOf(m.to), `${m.from} -> ${m.to}: the same resource type`);
  }
  const froms = moved.map((m) => m.from);
  const tos = moved.map((m) => m.to);
  assert.is(new Set(froms).size, froms.length, 'each source moves to one destination');
  assert.is(new Set(tos).size, tos.length, 'each destination has one source');
  for (const m of moved) destination(moved, m.from); // no cycle
});

t('every old address is unchanged or moved to one declared address that exists in the same deliveries', (ctx) => {
  ctx.rows = rows(ctx.before, ctx.now);
  const ends = new Map<string, string>();
  for (const r of ctx.rows) {
    if (r.how === 'unchanged') continue;
    assert.not.ok(ends.has(r.after), `${r.before} and ${ends.get(r.after)} both end at ${r.after}`);
    ends.set(r.after, r.before);
    if (r.after.startsWith('module.')) {
      // A whole resource moved into the module: the same count or for_each, over the deployment's targets
      // (the module's inputs: terraform.test.ts).
      const declared = ctx.now.config.resources[resourceOf(r.after)];
      assert.ok(declared, `${r.after} is declared in the target-roles module`);
      const old = ctx.before.resources[r.before]!;
      const fromInputs = (e: string | undefined) => e?.replace('local.target_', 'var.target_');
      assert.equal(declared, { ...old, ...(old.for_each ? { for_each: fromInputs(old.for_each) } : {}) }, r.after);
    }
    for (const delivery of DELIVERIES)
      assert.is(
        ctx.now.instances[delivery].has(r.after),
        r.deliveries.includes(delivery),
        `${r.after} exists with ${delivery} delivery as ${r.before} did`,
      );
  }
});

t(
  'deployments older than log_heartbeat_delivery (no count on its resources) land at the same places',
  ({ before, now }) => {
    for (const address of [
      'google_cloudfunctions2_function.log_heartbeat',
      'google_pubsub_subscription.log_heartbeat_push',
      'google_cloud_run_v2_service_iam_member.log_heartbeat_invoker',
    ]) {
      assert.is(before.resources[address]?.count, 'local.log_heartbeat_push ? 1 : 0');
      const chain = destination(now.config.moved, address);
      assert.is(chain[1], `${address}[0]`, `${address}: first to its count's instance, as ${BEFORE} moved it`);
      assert.equal(chain.slice(1), destination(now.config.moved, `${address}[0]`));
    }
  },
);

if (process.argv.includes('--write-record')) {
  const files = filesAt(BEFORE);
  if (!files) throw new Error(`${BEFORE} is not in this clone's history`);
  writeFileSync(FIXTURE, `${JSON.stringify(await configOf(files), null, 2)}\n`);
  console.log(`wrote ${path.relative(root, FIXTURE)}`);
} else t.run();

if (process.argv.includes('--list')) {
  const before = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Config;
  const n = await now();
  const list = rows(before, n);
  const added = newAddresses(list, n);
  for (const r of list)
    console.log(
      `${r.how.padEnd(9)} ${r.before}${r.how === 'moved' ? `  ->  ${r.after}` : ''}  (${r.deliveries.join(', ')})`,
    );
  for (const a of added) console.log(`new       ${a}`);
  console.log(
    `${list.length} addresses of ${BEFORE}: ${list.filter((r) => r.how === 'unchanged').length} unchanged, ` +
      `${list.filter((r) => r.how === 'moved').length} moved; ${added.length} new`,
  );
}
