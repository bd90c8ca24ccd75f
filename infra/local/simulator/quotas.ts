// Google's per-minute API quotas, as the simulator enforces them (docs/quotas.md): per quota family, per
// user (the caller: the strict reading of OS Config's quota page) and, for OS Config, per region too; Compute
// reads per project owning the VMs. A call over a limit is answered 429 with Google's RATE_LIMIT_EXCEEDED
// shape and not counted. Off until limits are set (PUT /control/quotas), so other tests see no quota.
import { z } from 'zod';
import { HttpError, route, type Route } from './http.js';

export const QUOTA_FAMILIES = [
  'osconfigReads',
  'osconfigWrites',
  'serviceUsage',
  'resourceManager',
  'computeReads',
] as const;
export type QuotaFamily = (typeof QUOTA_FAMILIES)[number];

/** Google's default quotas a minute (gcp-facts): what `PUT /control/quotas {"defaults": true}` sets. */
export const GOOGLE_DEFAULT_QUOTAS: QuotaLimits = {
  osconfigReads: { perUser: 60, perRegion: 100 },
  osconfigWrites: { perUser: 60, perRegion: 60 },
  serviceUsage: { perUser: 240 },
  resourceManager: { perUser: 600 },
  computeReads: { perProject: 1500 },
};

const limit = z.number().int().min(1).nullable().optional();
const familyLimits = z.object({ perUser: limit, perRegion: limit, perProject: limit });
export type QuotaLimits = Partial<Record<QuotaFamily, z.infer<typeof familyLimits>>>;

export const quotaSettings = z.object({
  /** Google's defaults, before `limits` (which override them family by family). */
  defaults: z.boolean().default(false),
  limits: z.partialRecord(z.enum(QUOTA_FAMILIES), familyLimits).default({}),
  /** Google counts per minute; a bench shortens the window to scale time. */
  windowMs: z.number().int().min(100).max(60_000).default(60_000),
});

const SERVICE: Record<QuotaFamily, string> = {
  osconfigReads: 'osconfig.googleapis.com',
  osconfigWrites: 'osconfig.googleapis.com',
  serviceUsage: 'serviceusage.googleapis.com',
  resourceManager: 'cloudresourcemanager.googleapis.com',
  computeReads: 'compute.googleapis.com',
};

/** The quota family a simulator route counts against, or null (Storage, Compute writes: not modelled). */
export function quotaFamilyOf(routeName: string): QuotaFamily | null {
  if (routeName.startsWith('serviceusage.')) return 'serviceUsage';
  if (routeName.startsWith('resourcemanager.')) return 'resourceManager';
  if (routeName.startsWith('osconfig.'))
    return /\.(create|patch|delete)$/.test(routeName) ? 'osconfigWrites' : 'osconfigReads';
  if (/^compute\.(instances\.(aggregatedList|list|get)|projects\.get)$/.test(routeName)) return 'computeReads';
  return null;
}

/** `us-central1-a` -> `us-central1`. */
const regionOf = (zone: string) => zone.replace(/-[a-z]$/, '');

export class Quotas {
  limits: QuotaLimits = {};
  windowMs = 60_000;
  /** Admitted calls' times per counter (`family|user|who`, `family|region|r`, `family|project|p`). */
  private calls = new Map<string, number[]>();
  /** 429s answered, per family. */
  rejected: Partial<Record<QuotaFamily, number>> = {};
  /** The most calls admitted inside one window, per family and scope (`osconfigReads.perUser`). */
  peaks: Record<string, number> = {};

  configure(settings: z.input<typeof quotaSettings>): void {
    const s = quotaSettings.parse(settings);
    this.limits = { ...(s.defaults ? GOOGLE_DEFAULT_QUOTAS : {}), ...s.limits };
    this.windowMs = s.windowMs;
    this.reset();
  }

  reset(): void {
    this.calls.clear();
    this.rejected = {};
    this.peaks = {};
  }

  /**
   * Admits the call or throws Google's 429. `user` is the caller (its credentials), `path` the request's
   * path (the project and zone it names).
   */
  admit(routeName: string, path: string, user: string, now = Date.now()): void {
    const family = quotaFamilyOf(routeName);
    const limits = family ? this.limits[family] : undefined;
    if (!family || !limits) return;
    const project = /\/projects\/([^/]+)/.exec(path)?.[1];
    const zone = /\/(?:locations|zones)\/([^/]+)/.exec(path)?.[1];
    const counters: Array<[scope: 'perUser' | 'perRegion' | 'perProject', key: string, max: number]> = [];
    if (limits.perUser) counters.push(['perUser', `${family}|user|${user}`, limits.perUser]);
    if (limits.perRegion && zone) counters.push(['perRegion', `${family}|region|${regionOf(zone)}`, limits.perRegion]);
    if (limits.perProject && project) counters.push(['perProject', `${family}|project|${project}`, limits.perProject]);
    const windows = counters.map(([scope, key, max]) => {
      const live = (this.calls.get(key) ?? []).filter((t) => t > now - this.windowMs);
      this.calls.set(key, live);
      return { scope, key, max, live };
    });
    const over = windows.find((w) => w.live.length + 1 > w.max);
    if (over) {
      this.rejected[family] = (this.rejected[family] ?? 0) + 1;
      throw rateLimitExceeded(family, over.scope, over.max, project);
    }
    for (const w of windows) {
      w.live.push(now);
      const peak = `${family}.${w.scope}`;
      this.peaks[peak] = Math.max(this.peaks[peak] ?? 0, w.live.length);
    }
  }

  report() {
    return { limits: this.limits, windowMs: this.windowMs, rejected: this.rejected, peaks: this.peaks };
  }
}

const LIMIT_NAMES = { perUser: 'per user', perRegion: 'per region', perProject: 'per project' } as const;

/** Google's answer to a call over a rate quota: 429 RESOURCE_EXHAUSTED with an ErrorInfo RATE_LIMIT_EXCEEDED. */
export function rateLimitExceeded(
  family: QuotaFamily,
  scope: keyof typeof LIMIT_NAMES,
  max: number,
  project: string | undefined,
): HttpError {
  const service = SERVICE[family];
  const metric = family.endsWith('Writes') ? 'Write requests' : 'Read requests';
  const quotaLimit = `${family.endsWith('Writes') ? 'Write' : 'Read'}RequestsPerMinutePer${scope.slice(3)}`;
  const message =
    `Quota exceeded for quota metric '${metric}' and limit '${metric} per minute ${LIMIT_NAMES[scope]}' ` +
    `of service '${service}' for consumer '${project ? `project:${project}` : 'unknown'}' (limit ${max}).`;
  return new HttpError(429, message, {
    error: {
      code: 429,
      message,
      status: 'RESOURCE_EXHAUSTED',
      errors: [{ domain: 'global', reason: 'rateLimitExceeded', message }],
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'RATE_LIMIT_EXCEEDED',
          domain: 'googleapis.com',
          metadata: {
            service,
            quota_metric: `${service}/${metric.toLowerCase().replace(' ', '_')}`,
            quota_limit: quotaLimit,
            quota_limit_value: String(max),
            ...(project ? { consumer: `projects/${project}` } : {}),
          },
        },
      ],
    },
  });
}

/** GET /control/quotas: limits, 429s and peaks; PUT sets the limits (and forgets counts); DELETE turns them off. */
export function quotaRoutes(quotas: Quotas): Route[] {
  return [
    route('GET', /^\/control\/quotas$/, 'control', () => quotas.report()),
    route('PUT', /^\/control\/quotas$/, 'control', ({ body }) => {
      const parsed = quotaSettings.safeParse(body ?? {});
      if (!parsed.success) throw new HttpError(400, `bad quota settings: ${parsed.error.message}`);
      quotas.configure(parsed.data);
      return quotas.report();
    }),
    route('DELETE', /^\/control\/quotas$/, 'control', () => {
      quotas.configure({});
      return quotas.report();
    }),
  ];
}
