// The query statistics buffer: the queryStats increments of the hosts an instance wrote, one entry per
// document, until the stats window ends; then one write per query document (increments commute, so
// instances need not agree on anything).
import { config } from '../../config.js';
import { isTransient } from '../../errors.js';
import { log } from '../../log.js';
import { addIncrements, type QueryStatsIncrement } from '../../domain/telemetry/query-stats.js';
import type { QueryStatsWrite } from '../../adapters/telemetry.js';

/**
 * The buffer's bound: far above a fleet's versions x queries (a few thousand), so only a buffer that
 * cannot be written for hours reaches it. Increments for further documents are dropped and counted.
 */
export const MAX_BUFFERED_STATS_DOCUMENTS = 10_000;

/** Adds increments to their documents, one write each: what was committed, what failed and why. */
export type WriteQueryStats = (increments: QueryStatsIncrement[]) => Promise<QueryStatsWrite>;

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class QueryStatsBuffer {
  private readonly increments = new Map<string, QueryStatsIncrement>();
  /** When the oldest increment not yet written was buffered (ms), or null when there is none. */
  private since: number | null = null;
  private flushing: Promise<number> | null = null;
  /** Increments refused since the last flush because the buffer was full: logged by the next flush. */
  private refused = 0;

  constructor(
    private readonly write: WriteQueryStats,
    private readonly maxDocuments = MAX_BUFFERED_STATS_DOCUMENTS,
  ) {}

  /** Documents with increments not yet written. */
  get size(): number {
    return this.increments.size;
  }

  /**
   * Writes the buffered increments now (one write per query document); the number written. Increments
   * apply once: what was committed is done; what failed transiently is kept for the next flush (the hosts'
   * baselines have moved on, a redelivery would not bring them back) and the flush fails; a document that
   * failed for any other reason can never be written and is dropped with a logged reason.
   */
  async flush(): Promise<number> {
    if (this.flushing) await this.flushing.catch(() => 0);
    if (this.refused > 0) {
      log.warn(
        { refused: this.refused, documents: this.increments.size, maxDocuments: this.maxDocuments },
        'logHeartbeat: queryStats buffer full, increments for further documents dropped',
      );
      this.refused = 0;
    }
    if (this.increments.size === 0) return 0;
    const increments = [...this.increments.values()];
    this.increments.clear();
    this.since = null;
    this.flushing = this.write(increments).then((written) => this.settle(written));
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /** Buffers a committed write's statistics; flushes when the buffer is older than the stats window. */
  async add(increments: QueryStatsIncrement[], now: number): Promise<void> {
    if (increments.length > 0) {
      this.refused += addIncrements(this.increments, increments, this.maxDocuments);
      this.since ??= now;
    }
    if (this.since === null || now - this.since < config().QUERY_STATS_WRITE_WINDOW_SECONDS * 1000) return;
    try {
      await this.flush();
    } catch (error) {
      log.warn(
        { err: error, documents: this.increments.size },
        'logHeartbeat: queryStats write failed, kept for the next window',
      );
    }
  }

  private settle({ written, failed }: QueryStatsWrite): number {
    const again = failed.filter((f) => isTransient(f.error));
    const poison = failed.filter((f) => !isTransient(f.error));
    if (poison.length > 0)
      log.warn(
        {
          documents: poison.length,
          ids: poison.slice(0, 5).map((f) => f.increment.id.slice(0, 200)),
          reason: reasonOf(poison[0]!.error),
        },
        'logHeartbeat: queryStats documents that cannot be written, their increments dropped',
      );
    if (again.length === 0) return written.length;
    this.refused += addIncrements(
      this.increments,
      again.map((f) => f.increment),
      this.maxDocuments,
    );
    this.since ??= Date.now();
    throw again[0]!.error;
  }
}
