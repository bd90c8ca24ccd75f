import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isInstanceId, isProjectId } from '../../shared/domain/ids.js';

const t = suite('identifiers (pure)');

t('project ids: plain and domain-scoped; nothing that could escape a path or a field path', () => {
  for (const id of ['p1', 'fleet', 'acme-prod-123456', 'example.com:acme', 'corp.example.co.uk:web-1'])
    assert.ok(isProjectId(id), id);
  for (const id of ['', '..', '.', 'a/b', 'Acme', 'acme_', 'acme-', '-acme', 'a'.repeat(10_000), 'a.b', 'x:y:z', ' p1'])
    assert.not.ok(isProjectId(id), id);
});

t('a project id is a Firestore document id as it is (audits/{runId}/projects/{project}): no encoding', () => {
  // Firestore refuses ids holding `/`, `.` and `..`, ids matching __.*__ and ids over 1,500 bytes.
  const firestoreRefuses = (id: string) =>
    id.includes('/') || id === '.' || id === '..' || /^__.*__$/.test(id) || Buffer.byteLength(id) > 1_500;
  for (const id of ['__p__', '__example.com:p__', '.', '..', 'a/b', 'a'.repeat(1_501)])
    assert.ok(firestoreRefuses(id) && !isProjectId(id), id);
  for (const id of ['example.com:acme', 'a.b.c:p-1', `${'d'.repeat(63)}.${'e'.repeat(63)}:${'p'.repeat(30)}`])
    assert.ok(isProjectId(id) && !firestoreRefuses(id), id);
});

t('instance ids: unsigned 64-bit decimals in canonical form', () => {
  for (const id of ['1', '1795841099579001', '18446744073709551615']) assert.ok(isInstanceId(id), id);
  for (const id of ['', '0', '01', '-1', '18446744073709551616', '99999999999999999999', '1e5', '12a', '١٢٣'])
    assert.not.ok(isInstanceId(id), id);
});

t.run();
