import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const labelPair = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$/, 'expected key=value with Compute label characters')
  .transform((v) => {
    const [key, value] = v.split('=') as [string, string];
    return { key, value };
  });

/** Every setting the code reads, with its default. The README's configuration table mirrors this. */
const schema = z.object({
  /** Points the Compute, OS Config and Storage clients at the local simulator (http://127.0.0.1:PORT). Unset in production. */
  GOOGLE_API_ENDPOINT: z.url().optional(),
  /** VMs carrying this label are out of scope (and the OS policy excludes them). */
  OPT_OUT_LABEL: labelPair.prefault('osquery-exempt=true'),
  /** Set instance metadata enable-osconfig=TRUE on in-scope VMs that lack it, instead of only reporting them blocked. */
  REMEDIATE_OSCONFIG_METADATA: bool.default(false),
  /** The id of the one OS policy assignment the orchestrator owns in each zone. */
  ASSIGNMENT_ID: z.string().regex(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, 'expected an OS Config assignment id').default('osquery'),
  /** OS Config rollout: at most this percentage of a zone's VMs are changed at once. */
  ROLLOUT_DISRUPTION_PERCENT: z.coerce.number().int().min(1).max(100).default(10),
  /** OS Config rollout: how long a VM must stay compliant before the rollout moves on. */
  ROLLOUT_MIN_WAIT_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
  /** Firestore database id. */
  FIRESTORE_DATABASE: z.string().min(1).default('(default)'),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses settings from an environment; throws one error listing every bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

let cached: Config | undefined;

/** The process's configuration, read once on first use. */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}

/** Forget the cached configuration (tests and the local stack change the environment). */
export function resetConfig(): void {
  cached = undefined;
}
