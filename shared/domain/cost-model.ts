// What logs and the orchestrator cost in money (pure): list prices (settings, shared/config.ts; their sources
// and dates in docs/log-cost.md) applied to measured volumes and operation counts. Estimates for comparing
// queries, versions and designs, not an invoice: no free tiers beyond Pub/Sub's, no committed-use discounts.

/** The prices used, USD. Every one is a setting. */
export interface Prices {
  /** Pub/Sub throughput (Message Delivery Basic): per TiB published or delivered. */
  pubsubUsdPerTiB: number;
  /** Pub/Sub's free throughput a month, GiB per billing account. */
  pubsubFreeGiB: number;
  /** Subscriptions each log message is delivered to (the SIEM's; logHeartbeat's filtered one is not counted). */
  logSubscriptions: number;
  /** The SIEM's ingestion, per GiB. */
  siemUsdPerGiB: number;
  /** Cloud Run functions (request-based billing, Tier 1): per million invocations, vCPU-second, GiB-second. */
  functionUsdPerMillionInvocations: number;
  functionUsdPerVcpuSecond: number;
  functionUsdPerGiBSecond: number;
  /** Firestore, per 100,000 document reads / writes. */
  firestoreUsdPer100kReads: number;
  firestoreUsdPer100kWrites: number;
}

/** The defaults (docs/log-cost.md: where each comes from and when it was read). */
export const DEFAULT_PRICES: Prices = {
  pubsubUsdPerTiB: 40,
  pubsubFreeGiB: 10,
  logSubscriptions: 1,
  siemUsdPerGiB: 0.5,
  functionUsdPerMillionInvocations: 0.4,
  functionUsdPerVcpuSecond: 0.000024,
  functionUsdPerGiBSecond: 0.0000025,
  firestoreUsdPer100kReads: 0.06,
  firestoreUsdPer100kWrites: 0.18,
};

const GiB = 2 ** 30;
const TiB = 2 ** 40;
/** A month as Google bills it: 730 hours. */
export const DAYS_PER_MONTH = 730 / 24;

/** A month of log bytes in money: Pub/Sub (published once, delivered to each subscription) and the SIEM. */
export interface LogCost {
  bytesPerMonth: number;
  pubsubUsd: number;
  siemUsd: number;
  usd: number;
}

/**
 * Pure: what `bytesPerDay` of log messages cost a month. `freeTier` false prices a share of a fleet (a
 * query, a version) at the marginal rate: the free 10 GiB is the billing account's once, not each query's.
 */
export function monthlyLogCost(bytesPerDay: number, prices: Prices, freeTier = false): LogCost {
  const bytesPerMonth = Math.max(0, bytesPerDay) * DAYS_PER_MONTH;
  const throughput = bytesPerMonth * (1 + prices.logSubscriptions);
  const billable = Math.max(0, throughput - (freeTier ? prices.pubsubFreeGiB * GiB : 0));
  const pubsubUsd = (billable / TiB) * prices.pubsubUsdPerTiB;
  const siemUsd = (bytesPerMonth / GiB) * prices.siemUsdPerGiB;
  return { bytesPerMonth, pubsubUsd, siemUsd, usd: pubsubUsd + siemUsd };
}

/** The orchestrator's own operations over some time, as the benches count them. */
export interface OperationCounts {
  invocations: number;
  /** Billable instance time: GiB-seconds of memory and vCPU-seconds (request-based billing). */
  gibSeconds: number;
  vcpuSeconds: number;
  firestoreReads: number;
  firestoreWrites: number;
  /** Pub/Sub bytes the orchestrator itself is billed for (the filtered log subscription's deliveries, alerts). */
  pubsubBytes: number;
  /** The time they cover, hours. */
  hours: number;
}

export interface OrchestratorCost {
  usdPerMonth: number;
  functionsUsd: number;
  firestoreUsd: number;
  pubsubUsd: number;
}

/** Pure: the operations scaled to a month, priced (no free tiers: a fleet's own bill, not a hobby project's). */
export function monthlyOrchestratorCost(ops: OperationCounts, prices: Prices): OrchestratorCost {
  const scale = ops.hours > 0 ? (DAYS_PER_MONTH * 24) / ops.hours : 0;
  const functionsUsd =
    scale *
    ((ops.invocations / 1e6) * prices.functionUsdPerMillionInvocations +
      ops.vcpuSeconds * prices.functionUsdPerVcpuSecond +
      ops.gibSeconds * prices.functionUsdPerGiBSecond);
  const firestoreUsd =
    scale *
    ((ops.firestoreReads / 1e5) * prices.firestoreUsdPer100kReads +
      (ops.firestoreWrites / 1e5) * prices.firestoreUsdPer100kWrites);
  const pubsubUsd = scale * (ops.pubsubBytes / TiB) * prices.pubsubUsdPerTiB;
  return { usdPerMonth: functionsUsd + firestoreUsd + pubsubUsd, functionsUsd, firestoreUsd, pubsubUsd };
}

/**
 * Pure: the budget's verdict for a version: its hosts' shipped bytes per host and day against
 * `bytesPerHostDay` (null: no budget), over when above.
 */
export function overBudget(shippedBytesPerHostDay: number, bytesPerHostDay: number | null): boolean {
  return bytesPerHostDay !== null && shippedBytesPerHostDay > bytesPerHostDay;
}
