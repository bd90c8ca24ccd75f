// The README is the front door and docs/ the reference: every relative link in them resolves, to a file or
// folder of the repository, and to a heading of the page when it names one (GitHub's anchors).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const t = suite('documentation links');
const root = path.resolve(import.meta.dirname, '../..');
const pages = [
  'README.md',
  ...readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
}

/** Markdown links outside code: [text](target). */
function linksOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

t('README.md is the front door: about 200 lines at most, and it links every page of docs/', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.ok(readme.split('\n').length <= 210, `README.md has ${readme.split('\n').length} lines`);
  for (const page of pages.filter((p) => p.startsWith('docs/')))
    assert.ok(readme.includes(`](${page})`), `README.md links ${page}`);
});

t('every relative link in README.md and docs/ resolves, anchors included', () => {
  let checked = 0;
  for (const page of pages) {
    for (const link of linksOf(path.join(root, page))) {
      if (/^[a-z]+:/.test(link)) continue; // https:, mailto:
      const [target, anchor] = link.split('#') as [string, string | undefined];
      const file = target ? path.resolve(path.dirname(path.join(root, page)), target) : path.join(root, page);
      assert.ok(existsSync(file), `${page}: ${link} points to nothing`);
      if (anchor && statSync(file).isFile() && file.endsWith('.md'))
        assert.ok(anchorsOf(file).has(anchor), `${page}: ${link}: no heading #${anchor}`);
      checked += 1;
    }
  }
  assert.ok(checked > 20, `links were found (${checked})`);
});

t.run();
