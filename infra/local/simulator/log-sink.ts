// An aggregated log sink stand-in: the Compute audit entries of every project, published as LogEntry JSON
// to a Pub/Sub (emulator) topic, one message per entry, as a non-intercepting organisation or folder sink
// with include_children routes them (infra/terraform/sink.tf). A push subscription on that topic delivers
// them to vmLifecycle (infra/local/functions.ts). The sink's filter lets only insert, bulkInsert and delete
// entries through; those are the only ones the simulator writes.
import { PubSub, type Topic } from '@google-cloud/pubsub';
import type { AuditEntry, AuditLogRoute } from './eventarc.js';

export interface SinkPublication {
  messageId: string;
  method: string;
  resourceName: string;
  position: 'first' | 'last';
}

export class LogSink implements AuditLogRoute {
  private topic: Topic | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Messages published (cleared by a reset). */
  readonly published: SinkPublication[] = [];
  /** Messages published since the simulator started, never reset: what a delivery count is compared with. */
  publishedTotal = 0;
  /** Publishes that failed (the emulator unreachable): lost, as a sink's undeliverable entries are. */
  failed = 0;

  constructor(readonly target: { projectId: string; topic: string }) {}

  /** Every project: the sink sits on the organisation (or folder) and includes its children. */
  accepts(): boolean {
    return true;
  }

  enqueue(entries: AuditEntry[]): void {
    this.queue = this.queue.then(async () => {
      for (const entry of entries) await this.publish(entry);
    });
  }

  idle(): Promise<void> {
    return this.queue;
  }

  private topicHandle(): Topic {
    // Entries leave at once: batching would only add latency for a handful of messages.
    this.topic ??= new PubSub({ projectId: this.target.projectId }).topic(this.target.topic, {
      batching: { maxMessages: 100, maxMilliseconds: 5 },
    });
    return this.topic;
  }

  private async publish({ event, spec, position }: AuditEntry): Promise<void> {
    const entry = JSON.parse(event.body) as { timestamp: string };
    try {
      const messageId = await this.topicHandle().publishMessage({
        data: Buffer.from(event.body),
        // What Cloud Logging sets on the messages of a Pub/Sub sink.
        attributes: { 'logging.googleapis.com/timestamp': entry.timestamp },
      });
      this.published.push({ messageId, method: spec.method, resourceName: spec.resourceName, position });
      this.publishedTotal += 1;
    } catch {
      this.failed += 1;
    }
  }

  async close(): Promise<void> {
    await this.topic?.flush().catch(() => undefined);
  }
}
