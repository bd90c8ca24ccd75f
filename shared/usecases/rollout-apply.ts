// The one applier of rollout transitions (shared/domain/rollout-transition.ts): commits a transition against
// what it was computed from, then carries out its effects: the alert episodes it opened or ended are sent,
// and the zones it moves (or the whole fleet) are brought to what the new configuration gives them. Each
// effect is idempotent, and one that does not happen (an instance lost after the commit, a zone that failed)
// is done by the next audit: its heal stage brings every zone to its version, and owed alerts are resent.
import { config } from '../config.js';
import { log } from '../log.js';
import { perMinuteLimiter } from '../rate.js';
import type { ConfigurationState, RolloutTransition } from '../domain/rollout-transition.js';
import * as rollouts from '../adapters/rollouts.js';
import { bringZones, type ZonesBrought } from './assignments.js';
import { deliverAlerts } from './alerts.js';

/** config/current and the records it names, as read, with the state machine's view of them. */
export interface ConfigurationRead {
  current: rollouts.CurrentConfig;
  currentRecord: rollouts.RolloutRecord | null;
  rolloutRecord: rollouts.RolloutRecord | null;
  state: ConfigurationState;
}

export async function readConfigurationState(): Promise<ConfigurationRead> {
  const read = await rollouts.readConfiguration();
  return {
    ...read,
    state: {
      current: { configVersion: read.current.configVersion, rollout: read.current.rollout },
      rollout: read.rolloutRecord?.staged ?? null,
      currentRollout: read.currentRecord?.staged ?? null,
    },
  };
}

export interface ApplyOptions {
  /** What a publish records of its version besides the rollout. */
  published?: rollouts.PublishedFields;
  /** The fleet's zones (`project/zone`), for a transition that brings every zone. */
  fleet?: () => Promise<string[]>;
  /** Counts each OS Config write (publish reports them). */
  onWrite?: () => void;
}

/** Zones brought; `committed` false: another writer changed the configuration first, nothing was done. */
export type Applied = { committed: true; zones: ZonesBrought } | { committed: false };

export async function applyTransition(t: RolloutTransition, options: ApplyOptions = {}): Promise<Applied> {
  if (!(await rollouts.commitTransition(t, options.published ?? null))) return { committed: false };
  await deliverAlerts([...t.opens.map((o) => o.dedupKey), ...t.closes]);
  const keys = t.zones.kind === 'moved' ? t.zones.keys : options.fleet ? await options.fleet() : [];
  const writes = perMinuteLimiter(config().OSCONFIG_WRITES_PER_MINUTE);
  const zones = await bringZones(keys, async () => {
    await writes.take();
    options.onWrite?.();
  });
  for (const [zone, reason] of Object.entries(zones.failed))
    log.warn({ zone, reason }, 'rollout: zone not moved; the next audit moves it');
  return { committed: true, zones };
}
