// The log budget (pure): a version's verdict against LOG_BYTES_PER_HOST_DAY and the optional per-query budget,
// and the logs.overBudget episode per version: opened once, closed once, nothing on re-evaluation.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  budgetEpisodeKey,
  NO_LOG_BUDGET,
  overBudgetReason,
  planLogBudget,
  type LogBudget,
} from '../../shared/domain/log-budget.js';
import { versionVolumes, type QueryVolume } from '../../shared/domain/log-volume.js';

const t = suite('log budget');
const KiB = 1024;

const query = (name: string, bytesPerHostDay: number | null, version = 'v1'): QueryVolume => ({
  configVersion: version,
  query: name,
  hosts: 10,
  shippedBytesPerHostDay: bytesPerHostDay,
  shippedLinesPerHostDay: null,
  outputBytesPerHostDay: null,
  shippedBytesPerDay: bytesPerHostDay === null ? null : bytesPerHostDay * 10,
});
const volume = (...qs: QueryVolume[]) => versionVolumes(qs)[0]!;
const budget = (bytesPerHostDay: number | null, queryBytesPerHostDay: number | null = null): LogBudget => ({
  bytesPerHostDay,
  queryBytesPerHostDay,
});

t('a version over its budget by its total, or by one query over the per-query budget; none when unset', () => {
  const v = volume(query('pack_a', 600 * KiB), query('pack_b', 500 * KiB), query('pack_c', null));
  assert.is(overBudgetReason(v, NO_LOG_BUDGET), null, 'no budget: never over');
  assert.is(overBudgetReason(v, budget(1100 * KiB)), null, 'at the budget is not over it');
  assert.is(overBudgetReason(v, budget(1024 * KiB)), 'v1 ships 1,100 KiB per host a day (budget 1,024 KiB)');
  assert.is(
    overBudgetReason(v, budget(null, 550 * KiB)),
    'v1 pack_a 600 KiB per host a day (per-query budget 550 KiB)',
    'the query over the per-query budget is named',
  );
  assert.is(overBudgetReason(volume(query('pack_c', null)), budget(1)), null, 'nothing measured: not over');
});

t('one episode per version: opens once, nothing on re-evaluation, closes once', () => {
  const at = new Date('2026-12-07T06:00:00Z');
  const later = new Date('2026-12-07T07:00:00Z');
  const over = volume(query('pack_a', 2048 * KiB));
  const b = budget(1024 * KiB);

  const opened = planLogBudget('v1', null, over, b, at);
  assert.ok(opened.changed);
  assert.equal(opened.since, at);
  const o = opened.episodes[0]!.open!;
  assert.equal(
    [o.kind, o.severity, o.host, o.dedupKey, o.since],
    ['logs.overBudget', 'warning', null, budgetEpisodeKey('v1', at), at],
  );
  assert.equal(o.details, {
    configVersion: 'v1',
    value: 2048 * KiB,
    threshold: 1024 * KiB,
    queryThreshold: null,
    unit: 'bytes/host/day',
  });

  const again = planLogBudget('v1', at, over, b, later);
  assert.equal(again, { since: at, episodes: [], changed: false }, 'still over: nothing more');

  for (const why of [
    planLogBudget('v1', at, volume(query('pack_a', 512 * KiB)), b, later),
    planLogBudget('v1', at, null, b, later),
    planLogBudget('v1', at, over, NO_LOG_BUDGET, later),
  ]) {
    assert.is(why.since, null);
    assert.equal(why.episodes, [
      {
        close: {
          kind: 'logs.overBudget',
          instanceId: '',
          previousSince: at,
          at: later,
          dedupKey: budgetEpisodeKey('v1', at),
        },
      },
    ]);
  }
  assert.equal(planLogBudget('v1', null, volume(query('pack_a', 1)), b, later).changed, false, 'under, none open');
});

t("the episode key is a document id whatever the version's name", () => {
  assert.is(budgetEpisodeKey('a/b%c', new Date(1000)), 'logs.overBudget:a%2Fb%25c:1000');
});

t.run();
