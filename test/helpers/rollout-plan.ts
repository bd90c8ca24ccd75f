// The rollout plans tests are written against: one set of gates and observation thresholds (pure, so the
// pure rollout tests can use it without the stack).

export const TEST_GATES = {
  noncompliant: { maxPercent: 5 },
  silent: { maxPercent: 5 },
  incidents: { maxPercent: 5 },
  osquerydCpu: { cpuPercent: 25, maxPercent: 5 },
  osquerydMemory: { rssMiB: 512, maxPercent: 5 },
  denylistedQueries: { max: 0 },
  logVolume: { maxIncreasePercent: 50 },
};

/** A plan's JSON text: these stages, the tests' gates and observation, and any other fields. */
export const planText = (stages: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ stages, gates: TEST_GATES, observe: { minPercent: 50, minHosts: 1 }, ...extra });
