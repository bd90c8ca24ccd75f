// The metrics a rule or a dashboard panel may query, each as the managed service names it in PromQL: the
// product's own (every log-based metric in infra/terraform), and those of the stated lists below.
import { promqlName, type Terraform } from '../../infra/prometheus/rules.js';

/** The Ops Agent's process metrics on the VMs (collected by default: cpu_time cumulative µs, rss_usage bytes, disk bytes cumulative). */
export const OPS_AGENT_METRICS = [
  'agent.googleapis.com/processes/cpu_time',
  'agent.googleapis.com/processes/rss_usage',
  'agent.googleapis.com/processes/disk/read_bytes_count',
  'agent.googleapis.com/processes/disk/write_bytes_count',
] as const;

/** Cloud Run's request metrics of the functions' services (run.googleapis.com); request_latencies is a distribution. */
export const CLOUD_RUN_METRICS = ['run.googleapis.com/request_count', 'run.googleapis.com/request_latencies'] as const;

/** process-exporter's per-group metrics (ncabatoff/process-exporter, groupname="osqueryd"). */
export const PROCESS_EXPORTER_METRICS = [
  'namedprocess_namegroup_cpu_seconds_total',
  'namedprocess_namegroup_memory_bytes',
  'namedprocess_namegroup_read_bytes_total',
  'namedprocess_namegroup_write_bytes_total',
] as const;

const DISTRIBUTION_SUFFIXES = ['_sum', '_count', '_bucket'];

/**
 * The log-based metrics infra/terraform declares, by PromQL name (distributions with their _sum, _count
 * and _bucket), for_each expanded over its list and `${var.name_prefix}` at its default.
 */
export function productMetrics(tf: Terraform): Map<string, string> {
  const prefix = tf.variables.name_prefix?.default as string;
  const out = new Map<string, string>();
  for (const [key, r] of tf.resources) {
    if (!key.startsWith('google_logging_metric.')) continue;
    const each = /^\$\{toset\(local\.([a-z0-9_]+)\)\}$/.exec(String(r.for_each ?? ''));
    const keys = each ? (tf.locals[each[1]!] as string[]) : [undefined];
    const distribution = (r.metric_descriptor as Array<Record<string, unknown>>)[0]!.value_type === 'DISTRIBUTION';
    for (const k of keys) {
      const name = String(r.name)
        .replaceAll('${var.name_prefix}', prefix)
        .replaceAll('${each.key}', k ?? '');
      const base = promqlName(`logging.googleapis.com/user/${name}`);
      for (const s of distribution ? DISTRIBUTION_SUFFIXES : ['']) out.set(base + s, `${key}${k ? `["${k}"]` : ''}`);
    }
  }
  return out;
}

/** Every metric name a query may use: PromQL name -> where it comes from. */
export function knownMetrics(tf: Terraform): Map<string, string> {
  const out = productMetrics(tf);
  for (const m of OPS_AGENT_METRICS) out.set(promqlName(m), 'the Ops Agent');
  for (const m of CLOUD_RUN_METRICS) {
    out.set(promqlName(m), 'Cloud Run');
    for (const s of DISTRIBUTION_SUFFIXES) out.set(promqlName(m) + s, 'Cloud Run');
  }
  for (const m of PROCESS_EXPORTER_METRICS) out.set(m, 'process-exporter');
  return out;
}

/** The metric names a PromQL expression selects (`name{...}`). */
export function metricsIn(expr: string): string[] {
  return [...new Set([...expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{/g)].map((m) => m[1]!))];
}

/** A metric name without a distribution's suffix. */
export const baseName = (name: string) => name.replace(/_(sum|count|bucket)$/, '');
