// The log shipper's count (what production's fluentd keeps with the bundle's filter plugin,
// shared/osquery/bundle/fluentd/plugin/filter_osquery_shipped.rb): per osquery_name, the lines and message
// bytes it shipped since it started, stamped on each osquery_schedule snapshot line as it passes
// (shared/domain/log-volume.ts says why there). The counts are the shipped messages' own sizes, so what
// logHeartbeat derives from them is checked against what the simulator really published; the plugin's
// counts are checked against these (test/unit/fluentd-shipped.test.ts).
import { messageBytes, SHIPPED_FIELD, type ShippedCounts } from '../../../shared/domain/log-volume.js';
import { HEARTBEAT_QUERY, SCHEDULE_QUERY } from '../../../shared/osquery/log-routing.js';
import { IDENTITY_TOKEN_FIELD } from '../../../shared/domain/heartbeat-identity.js';
import type { ShippedLine } from './osqueryd.js';

/** One Pub/Sub message as the shipper publishes it. */
export interface OutgoingMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/** A shipper's counts since it started (`since`, seconds since the epoch). */
export const newShipperCount = (now: Date): ShippedCounts => ({
  since: Math.floor(now.getTime() / 1000),
  queries: {},
});

/**
 * One round's lines, in order, as messages: each with the host's identity attributes; the schedule
 * snapshot stamped with the counts of everything shipped before it; the heartbeat (only it: log volume)
 * with the VM's identity token when it has one, as fluentd's filter adds it. Every message is counted. The
 * data is what fluentd's json formatter writes for the Pub/Sub output: one JSON object and a newline.
 */
export function shipLines(
  count: ShippedCounts,
  lines: readonly ShippedLine[],
  identity: Record<string, string>,
  token: string | null = null,
): OutgoingMessage[] {
  return lines.map(({ line, attributes }) => {
    const name = attributes.osquery_name;
    const body =
      name === SCHEDULE_QUERY
        ? {
            ...line,
            [SHIPPED_FIELD]: {
              since: count.since,
              queries: Object.fromEntries(Object.entries(count.queries).map(([q, c]) => [q, { ...c }])),
            },
          }
        : name === HEARTBEAT_QUERY && token
          ? { ...line, [IDENTITY_TOKEN_FIELD]: token }
          : line;
    const data = Buffer.from(`${JSON.stringify(body)}\n`);
    const all = { ...identity, ...attributes };
    const c = (count.queries[name] ??= { lines: 0, bytes: 0 });
    c.lines += 1;
    c.bytes += messageBytes(data, all);
    return { data, attributes: all };
  });
}
