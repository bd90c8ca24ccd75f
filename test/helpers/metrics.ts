// The metrics a rule or a dashboard panel may query, each as the managed service names it in PromQL: the
// product's own (every log-based metric in infra/terraform), and those of the stated lists below.
import { promqlName, type Terraform } from '../../infra/prometheus/rules.js';

/**
 * The Ops Agent's process metrics on the VMs (collected by default:
 * cpu_time cumulative µs, rss_usage bytes, disk bytes cumulative).
 */
export const OPS_AGENT_METRICS = [
  'agent.googleapis.com/processes/cpu_time',
  'agent.googleapis.com/processes/rss_usage',
  'agent.googleapis.com/processes/disk/read_bytes_count',
  'agent.googleapis.com/processes/disk/write_bytes_count',
] as const;

/** process-exporter's per-group metrics (ncabatoff/process-exporter, groupname="osqueryd"). */
export const PROCESS_EXPORTER_METRICS = [
  'namedprocess_namegroup_cpu_seconds_total',
  'namedprocess_namegroup_memory_bytes',
  'namedprocess_namegroup_read_bytes_total',
  'namedprocess_namegroup_write_bytes_total',
] as const;

const DISTRIBUTION_SUFFIXES = ['_sum', '_count', '_bucket'];

/**
 * A metric a query may name: who writes it, and the metric it
 * is part of (a distribution's _sum is its distribution's).
 */
export interface Known {
  from: string;
  metric: string;
}

function add(out: Map<string, Known>, name: string, from: string, distribution: boolean) {
  out.set(name, { from, metric: name });
  if (distribution) for (const s of DISTRIBUTION_SUFFIXES) out.set(name + s, { from, metric: name });
}

/**
 * The log-based metrics infra/terraform declares, by PromQL name (distributions with their _sum, _count
 * and _bucket), for_each expanded over its list and `${var.name_prefix}` at its default.
 */
export function productMetrics(tf: Terraform): Map<string, Known> {
  const prefix = tf.variables.name_prefix?.default as string;
  const out = new Map<string, Known>();
  for (const [key, r] of tf.resources) {
    if (!key.startsWith('google_logging_metric.')) continue;
    const each = /^\$\{toset\(local\.([a-z0-9_]+)\)\}$/.exec(String(r.for_each ?? ''));
    const keys = each ? (tf.locals[each[1]!] as string[]) : [undefined];
    const distribution = (r.metric_descriptor as Array<Record<string, unknown>>)[0]!.value_type === 'DISTRIBUTION';
    for (const k of keys) {
      const name = String(r.name)
        .replaceAll('${var.name_prefix}', prefix)
        .replaceAll('${each.key}', k ?? '');
      add(out, promqlName(`logging.googleapis.com/user/${name}`), `${key}${k ? `["${k}"]` : ''}`, distribution);
    }
  }
  return out;
}

/** Every metric name a query may use, by PromQL name. */
export function knownMetrics(tf: Terraform): Map<string, Known> {
  const out = productMetrics(tf);
  for (const m of OPS_AGENT_METRICS) add(out, promqlName(m), 'the Ops Agent', false);
  add(out, promqlName('run.googleapis.com/request_count'), 'Cloud Run', false);
  add(out, promqlName('run.googleapis.com/request_latencies'), 'Cloud Run', true);
  for (const m of PROCESS_EXPORTER_METRICS) add(out, m, 'process-exporter', false);
  return out;
}

/** The metric names a PromQL expression selects (`name{...}`). */
export function metricsIn(expr: string): string[] {
  return [...new Set([...expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{/g)].map((m) => m[1]!))];
}
