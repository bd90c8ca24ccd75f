// docs/contracts.md, the repository's own copy of the contracts: its tables of the stored documents are what
// `npm run contracts` writes from their definitions (not stale), every field says what it is, and the
// entry points, host states and alert kinds of the code each have their row.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { CONTRACTS_FILE, documentRows, renderDocuments, withDocuments } from '../../infra/contracts.js';
import { STORED_DOCUMENTS } from '../../shared/documents/index.js';
import { ALERT_KINDS } from '../../shared/documents/alerts.js';
import { HOST_STATES } from '../../shared/domain/host.js';
import { FUNCTION_NAMES } from '../../functions/manifest.js';

const t = suite('docs/contracts.md');
const page = readFileSync(CONTRACTS_FILE, 'utf8');

/** The page's section under a `## ` heading, up to the next one. */
const section = (heading: string) => {
  const start = page.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `no section ${heading}`);
  const end = page.indexOf('\n## ', start + 1);
  return page.slice(start, end < 0 ? undefined : end);
};
/** The first column of a section's table rows. */
const firstColumn = (text: string) =>
  text
    .split('\n')
    .filter((l) => /^\| `/.test(l))
    .map((l) => /^\| `([^`]+)`/.exec(l)![1]!);

t('the stored documents are written from their definitions: npm run contracts leaves the page as it is', () => {
  assert.fixture(withDocuments(page), page, 'docs/contracts.md is stale: run npm run contracts');
  for (const d of STORED_DOCUMENTS) assert.ok(page.includes(`\n### \`${d.path}\`\n`), `${d.path} has a section`);
  assert.ok(renderDocuments().includes('| `osqueryd.cpuPercent` | number or null |'), 'nested fields by their path');
});

t('every field of every stored document says what it is', () => {
  for (const d of STORED_DOCUMENTS)
    for (const row of documentRows(d)) {
      const said = row.meaning.replace(/\((may be absent|read as absent when[^)]*)\)/g, '').trim();
      assert.ok(said, `${d.path}: ${row.field} has no description`);
    }
});

t('every entry point, host state and alert kind of the code has its row', () => {
  assert.equal(firstColumn(section('Function entry points')).sort(), [...FUNCTION_NAMES].sort());
  assert.equal(firstColumn(section('Host states')), [...HOST_STATES]);
  assert.equal(firstColumn(section('Alert messages')), [...ALERT_KINDS]);
});

t.run();
