// The shape of shared/, read from its imports (TypeScript's own parser; nothing is run): dependencies point
// one way, views -> usecases -> adapters -> clients, and domain and osquery are pure (they import nothing
// above them). A loop, between two files or between two parts of shared/ (its folders, and each file at its
// top), would let a change at one end reach back round to itself.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(import.meta.dirname, '../..');

/** shared/ as files (paths from the repository root) -> the files of shared/ each imports, type imports too. */
function importGraph(dir = 'shared'): Map<string, Set<string>> {
  const files = readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')))
    .sort();
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    // import, import type, export ... from, import() and require: every module specifier the file names.
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => path.posix.normalize(path.posix.join(path.posix.dirname(file), name)).replace(/\.js$/, '.ts'))
      .filter((target) => target.startsWith(`${dir}/`));
    graph.set(file, new Set(targets));
  }
  return graph;
}

/** The loops of a graph: its strongly connected components of more than one node (Tarjan), each sorted. */
function loopsOf(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    for (let member; member !== node;) {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    }
    if (component.length > 1) loops.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return loops;
}

/** The part of shared/ a file belongs to: its folder right under shared/, or the file itself at the top. */
const partOf = (file: string) => {
  const [top, second, ...rest] = file.split('/');
  return rest.length > 0 ? `${top}/${second}/` : file;
};

/** The graph between parts: an edge wherever a file of one imports a file of another. */
function partGraph(graph: ReadonlyMap<string, ReadonlySet<string>>): Map<string, Set<string>> {
  const parts = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = parts.get(partOf(file)) ?? new Set<string>();
    parts.set(partOf(file), from);
    for (const target of targets) if (partOf(target) !== partOf(file)) from.add(partOf(target));
  }
  return parts;
}

/** The imports that tie a loop: `a.ts -> b.ts` for each edge between two of its members (files, or parts by `key`). */
const edgesAmong = (members: string[], key: (file: string) => string = (file) => file) =>
  [...graph].flatMap(([file, targets]) =>
    [...targets]
      .filter((t) => key(t) !== key(file) && members.includes(key(file)) && members.includes(key(t)))
      .map((t) => `${file} -> ${t}`),
  );

/** What stands above each part, which it may not import: views -> usecases -> adapters -> clients, domain pure. */
const ABOVE: Array<[part: RegExp, above: RegExp]> = [
  [/^shared\/(domain|osquery)\//, /^shared\/(clients\.ts|adapters\/|usecases\/|views\/)/],
  [/^shared\/clients\.ts$/, /^shared\/(adapters|usecases|views)\//],
  [/^shared\/adapters\//, /^shared\/(usecases|views)\//],
  [/^shared\/usecases\//, /^shared\/views\//],
];
/** The imports from a file matching `from` to one matching `to`, as `a.ts -> b.ts`. */
const edgesUp = (from: RegExp, to: RegExp) =>
  [...graph].flatMap(([file, targets]) =>
    from.test(file) ? [...targets].filter((t) => to.test(t)).map((t) => `${file} -> ${t}`) : [],
  );

const t = suite('the import graph of shared/');
const graph = importGraph();

t('it is read: every part of shared/ is there, and the known edges are found', () => {
  assert.ok(graph.size > 50, `${graph.size} files`);
  assert.ok(graph.get('shared/usecases/heartbeat.ts')?.has('shared/domain/heartbeat.ts'));
  assert.ok(graph.get('shared/adapters/hosts.ts')?.has('shared/clients.ts'));
  assert.equal(
    loopsOf(
      new Map([
        ['a', new Set(['b'])],
        ['b', new Set(['c'])],
        ['c', new Set(['a'])],
      ]),
    ),
    [['a', 'b', 'c']],
  );
  assert.equal(
    loopsOf(
      new Map([
        ['a', new Set(['b'])],
        ['b', new Set<string>()],
      ]),
    ),
    [],
  );
});

t('no loop between files of shared/', () => {
  const loops = loopsOf(graph);
  const found = loops.map((files) => edgesAmong(files));
  assert.equal(loops, [], `files that import each other in a loop:\n${JSON.stringify(found, null, 2)}`);
});

t('no loop between the parts of shared/ (its folders, and the files at its top)', () => {
  const loops = loopsOf(partGraph(graph));
  const found = loops.map((parts) => ({ parts, through: edgesAmong(parts, partOf) }));
  assert.equal(loops, [], `parts that import each other in a loop:\n${JSON.stringify(found, null, 2)}`);
});

t('clients, domain and osquery import nothing from adapters, use cases or views', () => {
  const upward = edgesUp(/^shared\/(clients\.ts$|domain\/|osquery\/)/, /^shared\/(adapters|usecases|views)\//);
  assert.equal(upward, [], `edges that run up:\n${upward.join('\n')}`);
});

t('every part imports only what stands below it (domain and osquery import no client either)', () => {
  const upward = ABOVE.flatMap(([part, above]) => edgesUp(part, above));
  assert.equal(upward, [], `edges that run up:\n${upward.join('\n')}`);
});

t.run();
