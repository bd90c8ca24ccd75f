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

t('instance ids: unsigned 64-bit decimals in canonical form', () => {
  for (const id of ['1', '1795841099579001', '18446744073709551615']) assert.ok(isInstanceId(id), id);
  for (const id of ['', '0', '01', '-1', '18446744073709551616', '99999999999999999999', '1e5', '12a', '١٢٣'])
    assert.not.ok(isInstanceId(id), id);
});

t.run();
