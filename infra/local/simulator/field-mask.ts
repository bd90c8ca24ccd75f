// Partial responses: the `fields` system parameter / X-Goog-FieldMask header of Google REST APIs,
// e.g. `nextPageToken,items(name,status(code))`.

type Tree = Map<string, Tree | null>;

export function parseFieldMask(mask: string): Tree {
  let i = 0;
  const parse = (): Tree => {
    const tree: Tree = new Map();
    let name = '';
    const flush = (sub: Tree | null) => {
      if (name.trim()) {
        // a.b.c is shorthand for a(b(c))
        const parts = name.trim().split('.');
        let node = tree;
        for (const [k, part] of parts.entries()) {
          if (k === parts.length - 1) node.set(part, sub);
          else {
            const next = (node.get(part) as Tree | undefined) ?? new Map();
            node.set(part, next);
            node = next;
          }
        }
      }
      name = '';
    };
    while (i < mask.length) {
      const c = mask[i++]!;
      if (c === ',') flush(null);
      else if (c === '(') {
        const sub = parse();
        flush(sub);
        if (mask[i] === ',') i++;
      } else if (c === ')') break;
      else name += c;
    }
    flush(null);
    return tree;
  };
  return parse();
}

/** Keeps only the masked fields of a JSON value (arrays are filtered element by element). */
export function applyFieldMask(value: unknown, tree: Tree | null): unknown {
  if (tree === null || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => applyFieldMask(v, tree));
  const out: Record<string, unknown> = {};
  if (tree.has('*')) return value;
  for (const [key, sub] of tree)
    if (key in (value as Record<string, unknown>))
      out[key] = applyFieldMask((value as Record<string, unknown>)[key], sub);
  return out;
}
