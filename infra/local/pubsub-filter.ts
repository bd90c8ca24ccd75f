// Pub/Sub's subscription filter language, evaluated locally (pure). Google's Pub/Sub emulator stores a
// subscription's `filter` but delivers every message, so the local stack applies the filter itself
// (filter-relay.ts) the way the service does: a message the filter rejects is acknowledged unseen.
//
// Grammar (cloud.google.com/pubsub/docs/subscription-message-filter):
//   filter     := term (("AND" term)* | ("OR" term)*)     -- AND and OR together need parentheses
//   term       := ("NOT" | "-") term | "(" filter ")" | predicate
//   predicate  := "attributes" ":" key                    -- the attribute exists
//               | "attributes" "." key ("=" | "!=") string
//               | "hasPrefix" "(" "attributes" "." key "," string ")"
//   key        := [A-Za-z0-9_-]+ | string
//   string     := "..." with \" \\ \n \t \r \xHH \uHHHH \ooo escapes
// Operators are upper case; keys and values match exactly (case-sensitive). `!=` is the negation of
// `=`, so it also holds when the attribute is absent. A filter is at most 256 bytes.

export type Filter =
  | { op: 'all' }
  | { op: 'has'; key: string }
  | { op: 'eq' | 'ne' | 'prefix'; key: string; value: string }
  | { op: 'not'; term: Filter }
  | { op: 'and' | 'or'; terms: Filter[] };

export class FilterSyntaxError extends Error {
  override name = 'FilterSyntaxError';
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
  }
}

export const MAX_FILTER_BYTES = 256;

const KEY_CHAR = /[A-Za-z0-9_-]/;
const WORD_CHAR = /[A-Za-z0-9_]/;

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos += 1;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }

  peekChar(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }

  /** The next bare word (letters, digits, underscore), without consuming it. */
  peekWord(): string {
    this.skipSpace();
    let end = this.pos;
    while (end < this.text.length && WORD_CHAR.test(this.text[end]!)) end += 1;
    return this.text.slice(this.pos, end);
  }

  word(expected: string): void {
    if (this.peekWord() !== expected) this.fail(`expected ${expected}`);
    this.pos += expected.length;
  }

  char(expected: string): void {
    if (this.peekChar() !== expected) this.fail(`expected "${expected}"`);
    this.pos += 1;
  }

  /** An attribute key: a bare key or a string literal. */
  key(): string {
    this.skipSpace();
    if (this.text[this.pos] === '"') return this.string();
    const start = this.pos;
    while (this.pos < this.text.length && KEY_CHAR.test(this.text[this.pos]!)) this.pos += 1;
    if (this.pos === start) this.fail('expected an attribute key');
    return this.text.slice(start, this.pos);
  }

  string(): string {
    this.skipSpace();
    const start = this.pos;
    if (this.text[this.pos] !== '"') this.fail('expected a string literal');
    this.pos += 1;
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) throw new FilterSyntaxError('unterminated string literal', start);
      this.pos += 1;
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos];
      this.pos += 1;
      const simple: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r', "'": "'" };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'x' || e === 'u') {
        const digits = e === 'x' ? 2 : 4;
        const hex = this.text.slice(this.pos, this.pos + digits);
        if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) this.fail(`bad \\${e} escape`);
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += digits;
      } else if (e !== undefined && /[0-7]/.test(e)) {
        const oct = this.text.slice(this.pos - 1, this.pos + 2);
        if (!/^[0-7]{3}$/.test(oct)) this.fail('bad octal escape');
        out += String.fromCharCode(parseInt(oct, 8));
        this.pos += 2;
      } else this.fail(`unknown escape \\${e ?? ''}`);
    }
  }

  fail(message: string): never {
    throw new FilterSyntaxError(message, this.pos);
  }
}

function parseFilterAt(s: Scanner): Filter {
  const terms = [parseTerm(s)];
  let joiner: 'AND' | 'OR' | null = null;
  for (;;) {
    const word = s.peekWord();
    if (word !== 'AND' && word !== 'OR') break;
    if (joiner && word !== joiner) s.fail('AND and OR in one expression need parentheses');
    joiner = word;
    s.pos += word.length;
    terms.push(parseTerm(s));
  }
  if (!joiner) return terms[0]!;
  return { op: joiner === 'AND' ? 'and' : 'or', terms };
}

function parseTerm(s: Scanner): Filter {
  const c = s.peekChar();
  if (c === '-') {
    s.pos += 1;
    return { op: 'not', term: parseTerm(s) };
  }
  if (c === '(') {
    s.pos += 1;
    const inner = parseFilterAt(s);
    s.char(')');
    return inner;
  }
  const word = s.peekWord();
  if (word === 'NOT') {
    s.pos += 3;
    return { op: 'not', term: parseTerm(s) };
  }
  if (word === 'hasPrefix') {
    s.pos += word.length;
    s.char('(');
    s.word('attributes');
    s.char('.');
    const key = s.key();
    s.char(',');
    const value = s.string();
    s.char(')');
    return { op: 'prefix', key, value };
  }
  if (word !== 'attributes') s.fail('expected attributes, hasPrefix, NOT or "("');
  s.pos += word.length;
  if (s.peekChar() === ':') {
    s.pos += 1;
    return { op: 'has', key: s.key() };
  }
  s.char('.');
  const key = s.key();
  s.skipSpace();
  let op: 'eq' | 'ne';
  if (s.text.startsWith('!=', s.pos)) {
    op = 'ne';
    s.pos += 2;
  } else if (s.text[s.pos] === '=') {
    op = 'eq';
    s.pos += 1;
  } else s.fail('expected "=" or "!="');
  return { op, key, value: s.string() };
}

/** Parses a filter; an empty filter matches every message. Throws FilterSyntaxError. */
export function parseFilter(text: string): Filter {
  if (Buffer.byteLength(text, 'utf8') > MAX_FILTER_BYTES)
    throw new FilterSyntaxError(`a filter is at most ${MAX_FILTER_BYTES} bytes`, MAX_FILTER_BYTES);
  const s = new Scanner(text);
  if (s.atEnd()) return { op: 'all' };
  const filter = parseFilterAt(s);
  if (!s.atEnd()) s.fail('unexpected text');
  return filter;
}

/** Whether a message with these attributes passes the filter. */
export function matches(filter: Filter, attributes: Readonly<Record<string, string>>): boolean {
  const has = (key: string) => Object.prototype.hasOwnProperty.call(attributes, key);
  switch (filter.op) {
    case 'all':
      return true;
    case 'has':
      return has(filter.key);
    case 'eq':
      return has(filter.key) && attributes[filter.key] === filter.value;
    case 'ne':
      return !(has(filter.key) && attributes[filter.key] === filter.value);
    case 'prefix':
      return has(filter.key) && attributes[filter.key]!.startsWith(filter.value);
    case 'not':
      return !matches(filter.term, attributes);
    case 'and':
      return filter.terms.every((t) => matches(t, attributes));
    case 'or':
      return filter.terms.some((t) => matches(t, attributes));
  }
}

/** parseFilter then matches, as one predicate. */
export function compileFilter(text: string): (attributes: Readonly<Record<string, string>>) => boolean {
  const filter = parseFilter(text);
  return (attributes) => matches(filter, attributes);
}
