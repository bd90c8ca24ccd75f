// logHeartbeat's engine against the Firestore emulator, each object as one function instance keeps it: what
// the host write coalescer remembers, what the batcher sends together (its reads and commits counted on the
// real adapters), what the query statistics buffer holds and writes (a transient fault injected, seeded, on
// top of the real writer; a document Firestore refuses, for real).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clearFirestore, requireEmulators } from './helpers/stack.js';
import { clients } from '../shared/clients.js';
import { TransientError } from '../shared/errors.js';
import * as hosts from '../shared/adapters/hosts.js';
import { writeQueryStats, type QueryStatsWrite } from '../shared/adapters/telemetry.js';
import type { PubSubMessage } from '../shared/adapters/pubsub.js';
import type { QueryStatsIncrement } from '../shared/domain/telemetry/query-stats.js';
import { deliverAlerts } from '../shared/usecases/alerts.js';
import { HeartbeatEngine, recordLogMessage, type HeartbeatIo } from '../shared/usecases/heartbeat.js';
import { QueryStatsBuffer } from '../shared/usecases/heartbeat/query-stats-buffer.js';

const t = suite('the heartbeat engine, one instance at a time (Firestore emulator)');
const MIN = 60_000;
const now = new Date(Date.now() - 10 * MIN);
const s = (ms: number) => Math.floor(ms / 1000);

t.before(() => requireEmulators());
t.before.each(() => clearFirestore());

/** Hosts on the emulator, as the audit leaves them. */
async function hostsOf(ids: string[]) {
  const db = clients.firestore();
  const since = new Date(now.getTime() - 60 * MIN);
  for (const instanceId of ids)
    await db
      .collection('hosts')
      .doc(instanceId)
      .set({
        instanceId,
        name: `vm-${instanceId}`,
        project: 'p',
        zone: 'us-central1-a',
        state: 'reporting',
        reason: null,
        stateSince: since,
        inScope: true,
        lastLogAt: null,
        osqueryVersion: '5.23.1',
        configVersion: 'v1',
        updatedAt: since,
      });
}

/** The engine's real I/O (Firestore, the alert topic), with its calls counted. */
function countedIo() {
  const calls = { reads: 0, commits: 0, written: [] as string[][] };
  const io: HeartbeatIo = {
    readHosts: (ids) => {
      calls.reads += 1;
      return hosts.readHosts(ids);
    },
    writeHeartbeats: (writes) => {
      calls.commits += 1;
      calls.written.push(writes.map((w) => w.instanceId));
      return hosts.writeHeartbeats(writes);
    },
    recordHeartbeat: (instanceId, plan) => hosts.recordHeartbeat(instanceId, plan),
    deliverAlerts,
    writeQueryStats: (increments) => writeQueryStats(increments),
  };
  return { io, calls };
}

const line = (instanceId: string, at: number, messageId: string): PubSubMessage => ({
  data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime: s(at), snapshot: [] })),
  attributes: { gce_instance_id: instanceId, gce_project_id: 'p', gce_zone: 'us-central1-a' },
  messageId,
  publishTime: new Date(at),
});

t(
  'an engine is one instance: within its window a host costs nothing more; a new engine remembers nothing',
  async () => {
    await hostsOf(['101']);
    const { io, calls } = countedIo();
    const engine = new HeartbeatEngine(io);
    const first = await recordLogMessage(engine, line('101', now.getTime() - 5000, 'a'), now);
    const later = new Date(now.getTime() + 1000);
    const again = await recordLogMessage(engine, line('101', now.getTime() - 1000, 'b'), later);
    assert.equal([first.outcome, again.outcome], ['recorded', 'coalesced']);
    assert.equal([calls.reads, calls.commits], [1, 1], 'the coalesced line cost no read and no write');
    assert.is((await hosts.getHost('101'))!.lastLogAt?.getTime(), s(now.getTime() - 5000) * 1000);

    const other = new HeartbeatEngine(io);
    const fresh = await recordLogMessage(other, line('101', now.getTime() - 1000, 'b'), later);
    assert.is(fresh.outcome, 'recorded', 'another instance has not seen the host: it reads and writes');
    assert.equal([calls.reads, calls.commits], [2, 2]);
    assert.is((await hosts.getHost('101'))!.lastLogAt?.getTime(), s(now.getTime() - 1000) * 1000);
  },
);

t('messages handled at once: one read and one commit for their hosts, one write per host', async () => {
  await hostsOf(['1', '2', '3']);
  const { io, calls } = countedIo();
  const engine = new HeartbeatEngine(io);
  const results = await Promise.all(
    ['1', '2', '3', '1', '2', '9'].map((id, i) =>
      recordLogMessage(engine, line(id, now.getTime() - i * 1000, `m${i}`), now),
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
const snapshots = async (id: string) =>
  (await clients.firestore().collection('queryStats').doc(id).get()).get('windows.h2026112712.snapshots') as
    number | undefined;

t('the query statistics buffer: one write per document when its window ends, whatever it was given', async () => {
  const writes: string[][] = [];
  const buffer = new QueryStatsBuffer(async (increments) => {
    writes.push(increments.map((i) => i.id));
    return writeQueryStats(increments);
  });
  await buffer.add([increment('v1~a'), increment('v1~b')], 0);
  await buffer.add([increment('v1~a', 2)], 60_000);
  assert.is(buffer.size, 2);
  assert.equal(writes, [], 'nothing written inside the window (300 s by default)');
  await buffer.add([], 300_000);
  assert.equal(writes, [['v1~a', 'v1~b']], 'one write per document');
  assert.equal([await snapshots('v1~a'), await snapshots('v1~b')], [3, 1]);
  assert.is(buffer.size, 0);
  assert.is(await buffer.flush(), 0, 'nothing left');
});

t('the buffer is bounded; what fails transiently is kept, what can never be written is dropped', async () => {
  // A transient fault on one document (injected); a document id Firestore refuses (reserved: __x__).
  let unavailable = new Set<string>(['v1~a']);
  const buffer = new QueryStatsBuffer(async (increments): Promise<QueryStatsWrite> => {
    const faulted = increments.filter((i) => unavailable.has(i.id));
    const written = await writeQueryStats(increments.filter((i) => !unavailable.has(i.id)));
    return {
      written: written.written,
      failed: [
        ...faulted.map((increment) => ({ increment, error: new TransientError('unavailable') })),
        ...written.failed,
      ],
    };
  }, 2);
  await buffer.add([increment('v1~a'), increment('__poison__'), increment('v1~c')], 0);
  assert.is(buffer.size, 2, 'a third document is refused');
  try {
    await buffer.flush();
    assert.unreachable('a transient failure fails the flush');
  } catch (error) {
    assert.is((error as Error).message, 'unavailable');
  }
  assert.is(buffer.size, 1, 'v1~a kept for the next flush, __poison__ dropped');
  assert.is(await snapshots('v1~a'), undefined);
  unavailable = new Set();
  assert.is(await buffer.flush(), 1);
  assert.is(buffer.size, 0);
  assert.is(await snapshots('v1~a'), 1, 'applied once');
});

t.run();
