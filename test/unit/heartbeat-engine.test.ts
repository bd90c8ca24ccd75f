// logHeartbeat's engine, each object with a store of the test's own in place of Firestore (no emulator):
// what the host write coalescer remembers, what the batcher sends together, what the query statistics buffer
// holds and writes. Against Firestore: test/heartbeat*.test.ts, test/log-drain*.test.ts, test/telemetry*.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Timestamp } from '@google-cloud/firestore';
import type { HeartbeatHost, HeartbeatWrite } from '../../shared/domain/heartbeat.js';
import type { QueryStatsIncrement } from '../../shared/domain/telemetry/query-stats.js';
import { TransientError } from '../../shared/errors.js';
import type { PubSubMessage } from '../../shared/adapters/pubsub.js';
import type { QueryStatsWrite } from '../../shared/adapters/telemetry.js';
import { HeartbeatEngine, recordLogMessage, type HeartbeatIo } from '../../shared/usecases/heartbeat.js';
import { QueryStatsBuffer } from '../../shared/usecases/heartbeat/query-stats-buffer.js';

const t = suite('the heartbeat engine (pure, a store of its own)');
const now = new Date('2026-11-27T12:00:00Z');
const s = (ms: number) => Math.floor(ms / 1000);
const MIN = 60_000;

/** Hosts in memory, and what the engine asked of them: reads (getAll calls) and commits. */
function memoryStore(ids: string[]) {
  const hosts = new Map<string, HeartbeatHost>(
    ids.map((instanceId) => [
      instanceId,
      {
        instanceId,
        name: `vm-${instanceId}`,
        project: 'p',
        zone: 'z',
        state: 'reporting',
        reason: null,
        stateSince: new Date(now.getTime() - 60 * MIN),
        inScope: true,
        lastLogAt: null,
        osqueryVersion: '5.12.1',
        configVersion: 'v1',
        updatedAt: new Date(now.getTime() - 60 * MIN),
        osqueryd: null,
        querySchedule: null,
      },
    ]),
  );
  const calls = { reads: 0, commits: 0, written: [] as string[][], stats: [] as QueryStatsIncrement[][] };
  const apply = (instanceId: string, planned: Extract<HeartbeatWrite, { write: 'update' }>) =>
    hosts.set(instanceId, { ...hosts.get(instanceId)!, ...planned.fields });
  const io: HeartbeatIo = {
    readHosts: async (instanceIds) => {
      calls.reads += 1;
      return new Map(
        instanceIds
          .filter((id) => hosts.has(id))
          .map((id) => [id, { host: hosts.get(id)!, updateTime: {} as Timestamp }] as const),
      );
    },
    writeHeartbeats: async (writes) => {
      calls.commits += 1;
      calls.written.push(writes.map((w) => w.instanceId));
      for (const w of writes) apply(w.instanceId, w.planned);
      return { committed: true, alertKeys: [] };
    },
    recordHeartbeat: async (instanceId, plan) => {
      const host = hosts.get(instanceId);
      if (!host) return { known: false, written: null, alertKeys: [] };
      const planned = plan(host);
      if (planned.write === 'nothing') return { known: true, written: null, alertKeys: [] };
      apply(instanceId, planned);
      return { known: true, written: planned, alertKeys: [] };
    },
    deliverAlerts: async () => 0,
    writeQueryStats: async (increments): Promise<QueryStatsWrite> => {
      calls.stats.push(increments);
      return { written: increments, failed: [] };
    },
  };
  return { io, hosts, calls };
}

const line = (instanceId: string, at: number, messageId: string): PubSubMessage => ({
  data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: s(at), snapshot: [] })),
  attributes: { gce_instance_id: instanceId, gce_project_id: 'p', gce_zone: 'z' },
  messageId,
  publishTime: new Date(at),
});

t(
  'an engine is one instance: within its window a host costs nothing more; a new engine remembers nothing',
  async () => {
    const { io, calls, hosts } = memoryStore(['101']);
    const engine = new HeartbeatEngine(io);
    const first = await recordLogMessage(engine, line('101', now.getTime() - 5000, 'a'), now);
    const again = await recordLogMessage(
      engine,
      line('101', now.getTime() - 1000, 'b'),
      new Date(now.getTime() + 1000),
    );
    assert.equal([first.outcome, again.outcome], ['recorded', 'coalesced']);
    assert.equal([calls.reads, calls.commits], [1, 1], 'the coalesced line cost no read and no write');
    assert.is(hosts.get('101')!.lastLogAt?.getTime(), s(now.getTime() - 5000) * 1000);

    const other = new HeartbeatEngine(io);
    const fresh = await recordLogMessage(other, line('101', now.getTime() - 1000, 'b'), new Date(now.getTime() + 1000));
    assert.is(fresh.outcome, 'recorded', 'another instance has not seen the host: it reads and writes');
    assert.equal([calls.reads, calls.commits], [2, 2]);
    assert.is(hosts.get('101')!.lastLogAt?.getTime(), s(now.getTime() - 1000) * 1000);
  },
);

t('messages handled at once: one read and one commit for their hosts, one write per host', async () => {
  const { io, calls } = memoryStore(['1', '2', '3']);
  const engine = new HeartbeatEngine(io);
  const results = await Promise.all(
    ['1', '2', '3', '1', '2', '9'].map((id, i) =>
      recordLogMessage(engine, line(id, now.getTime() - i * 1000, `m${i}`)),
    ),
  );
  assert.equal(
    results.map((r) => r.outcome),
    ['recorded', 'recorded', 'recorded', 'coalesced', 'coalesced', 'unknown-host'],
  );
  assert.equal([calls.reads, calls.commits], [1, 1]);
  assert.equal(calls.written, [['1', '2', '3']]);
});

const increment = (id: string, n = 1): QueryStatsIncrement => ({
  id,
  configVersion: 'v1',
  query: id,
  interval: 3600,
  increments: { 'windows.h2026112712.snapshots': n },
});

t('the query statistics buffer: one write per document when its window ends, whatever it was given', async () => {
  const writes: QueryStatsIncrement[][] = [];
  const buffer = new QueryStatsBuffer(async (increments) => {
    writes.push(increments);
    return { written: increments, failed: [] };
  });
  await buffer.add([increment('a'), increment('b')], 0);
  await buffer.add([increment('a', 2)], 60_000);
  assert.is(buffer.size, 2);
  assert.equal(writes, [], 'nothing written inside the window (300 s by default)');
  await buffer.add([], 300_000);
  assert.equal(
    writes.map((w) => w.map((i) => [i.id, i.increments['windows.h2026112712.snapshots']])),
    [
      [
        ['a', 3],
        ['b', 1],
      ],
    ],
  );
  assert.is(buffer.size, 0);
  assert.is(await buffer.flush(), 0, 'nothing left');
});

t('the buffer is bounded; what fails transiently is kept, what can never be written is dropped', async () => {
  let fail: (i: QueryStatsIncrement) => unknown = () => null;
  const buffer = new QueryStatsBuffer(async (increments) => {
    const failed = increments.flatMap((increment) => (fail(increment) ? [{ increment, error: fail(increment) }] : []));
    return { written: increments.filter((i) => !fail(i)), failed };
  }, 2);
  await buffer.add([increment('a'), increment('b'), increment('c')], 0);
  assert.is(buffer.size, 2, 'a third document is refused');
  fail = (i) => (i.id === 'a' ? new TransientError('unavailable') : i.id === 'b' ? new Error('too big') : null);
  try {
    await buffer.flush();
    assert.unreachable('a transient failure fails the flush');
  } catch (error) {
    assert.is((error as Error).message, 'unavailable');
  }
  assert.is(buffer.size, 1, 'a kept for the next flush, b dropped');
  fail = () => null;
  assert.is(await buffer.flush(), 1);
  assert.is(buffer.size, 0);
});

t.run();
