// The Prometheus rules (infra/prometheus): written from the Terraform and not stale, the Cloud Monitoring
// policies' thresholds and durations in both flavours, every metric one that something writes, and
// Prometheus's own checker: `promtool check rules`, `promtool test rules` (every alert fires, stays quiet and
// resolves), and a copy with a broken threshold fails. promtool comes from Debian's prometheus package
// (test/helpers/promtool.ts); the tests that need it fail when it is missing.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ORCHESTRATOR_ALERTS,
  PROMETHEUS_DIR,
  RULE_FILES,
  allRules,
  promDuration,
  readTerraform,
  type Flavour,
  type Terraform,
} from '../../infra/prometheus/rules.js';
import { knownMetrics, metricsIn, PROCESS_EXPORTER_METRICS } from '../helpers/metrics.js';
import { promtool } from '../helpers/promtool.js';

interface Alert {
  name: string;
  expr: string;
  for: string | null;
  labels: Record<string, string>;
}

/** The alerts of a rules file as rules.ts writes them (one `- alert:` block each). */
function alertsOf(text: string): Alert[] {
  return text
    .split(/\n\s+- alert: /)
    .slice(1)
    .map((block) => {
      const lines = block.split('\n');
      const at = (key: string) => lines.findIndex((l) => l.trim().startsWith(`${key}:`));
      const labels: Record<string, string> = {};
      for (const l of lines.slice(at('labels') + 1)) {
        const m = /^ {10}([a-z_]+): (.+)$/.exec(l);
        if (!m) break;
        labels[m[1]!] = m[2]!.replace(/^"|"$/g, '');
      }
      return {
        name: lines[0]!.trim(),
        expr: lines[at('expr') + 1]!.trim(),
        for: at('for') >= 0 ? lines[at('for')]!.split(': ')[1]!.trim() : null,
        labels,
      };
    });
}

const read = (file: string) => readFileSync(path.join(PROMETHEUS_DIR, file), 'utf8');
const testFile = (flavour: Flavour) => RULE_FILES[flavour].replace(/\.yml$/, '.test.yml');
const FLAVOURS = Object.keys(RULE_FILES) as Flavour[];

/** A policy's condition in the Terraform: its duration, and the default of the variable its threshold uses. */
function policy(tf: Terraform, key: string, variable: string) {
  const p = tf.resources.get(`google_monitoring_alert_policy.${key}`)!;
  const c = (
    (p.conditions as Array<Record<string, unknown>>)[0]!.condition_threshold as Array<Record<string, unknown>>
  )[0]!;
  assert.match(String(c.threshold_value), `var.${variable}`, `${key}: threshold from var.${variable}`);
  return {
    seconds: Number(/^(\d+)s$/.exec(String(c.duration))![1]),
    threshold: tf.variables[variable]!.default as number,
  };
}

const t = suite<{ tf: Terraform }>('prometheus rules');
t.before(async (ctx) => {
  ctx.tf = await readTerraform();
});

t('the checked-in rules files are what `npm run prometheus-rules` writes from the Terraform', async () => {
  for (const [file, text] of await allRules())
    assert.fixture(read(file), text, `infra/prometheus/${file} is stale: run npm run prometheus-rules`);
});

t("both flavours: the same osqueryd alerts, with the Cloud Monitoring policies' thresholds and durations", ({ tf }) => {
  const cpu = policy(tf, 'osqueryd_cpu', 'osqueryd_cpu_percent');
  const memory = policy(tf, 'osqueryd_memory', 'osqueryd_memory_mb');
  assert.is(cpu.threshold, 10, 'the readiness review: 10% of a core');
  const osqueryd = FLAVOURS.map((f) => alertsOf(read(RULE_FILES[f])).filter((a) => a.name.startsWith('Osqueryd')));
  for (const alerts of osqueryd) {
    const byName = new Map(alerts.map((a) => [a.name, a]));
    assert.equal([...byName.keys()].sort(), ['OsquerydHighCpu', 'OsquerydHighMemory']);
    const c = byName.get('OsquerydHighCpu')!;
    assert.ok(c.expr.endsWith(` > ${cpu.threshold}`), `${c.expr}: above ${cpu.threshold}% of a core`);
    assert.is(c.for, promDuration(cpu.seconds), 'for: the policy duration');
    const m = byName.get('OsquerydHighMemory')!;
    assert.ok(m.expr.endsWith(`/ 1048576 > ${memory.threshold}`), `${m.expr}: above ${memory.threshold} MiB`);
    assert.is(m.for, promDuration(memory.seconds), 'for: the policy duration');
    for (const a of alerts) assert.equal(a.labels, { severity: 'warning', alert_kind: 'host-performance' });
  }
  // The same alerts, label for label, whichever flavour fires them.
  assert.equal(
    osqueryd[0]!.map((a) => [a.name, a.for, a.labels]),
    osqueryd[1]!.map((a) => [a.name, a.for, a.labels]),
  );
});

t("the orchestrator's own signals: coverage below target, silent hosts, a halted rollout (managed flavour)", () => {
  const alerts = new Map(alertsOf(read(RULE_FILES.managed)).map((a) => [a.name, a]));
  const coverage = alerts.get('OsqueryFleetCoverageLow')!;
  assert.ok(coverage.expr.endsWith(` < ${ORCHESTRATOR_ALERTS.coverageTargetPercent}`), coverage.expr);
  assert.match(alerts.get('OsqueryHostsSilent')!.expr, /fleet_hosts_silent_sum/);
  assert.match(alerts.get('OsqueryRolloutHalted')!.expr, /decision="halted"/);
  // process-exporter's Prometheus cannot see Cloud Monitoring's metrics: those alerts are the managed flavour's.
  assert.equal(
    alertsOf(read(RULE_FILES['process-exporter'])).map((a) => a.name),
    ['OsquerydHighCpu', 'OsquerydHighMemory'],
  );
});

t(
  'every metric a rule reads is one the Ops Agent, process-exporter or the product (infra/terraform) writes',
  ({ tf }) => {
    const known = knownMetrics(tf);
    for (const flavour of FLAVOURS) {
      for (const a of alertsOf(read(RULE_FILES[flavour]))) {
        const metrics = metricsIn(a.expr);
        assert.ok(metrics.length > 0, `${a.name} reads a metric`);
        for (const m of metrics) {
          assert.ok(known.has(m), `${flavour} ${a.name}: ${m} is a metric something writes`);
          const processExporter = (PROCESS_EXPORTER_METRICS as readonly string[]).includes(m);
          assert.is(
            processExporter,
            flavour === 'process-exporter',
            `${a.name}: ${m} belongs to the ${flavour} flavour`,
          );
          // The managed service serves Cloud Monitoring metrics by resource type: narrow each one.
          if (!processExporter) assert.match(a.expr, `${m}{monitored_resource="`, `${a.name}: ${m} names its resource`);
        }
      }
    }
    assert.ok(known.has('logging_googleapis_com:user_osq_fleet_coverage_sum'), 'the coverage metric is known');
    assert.ok(known.has('logging_googleapis_com:user_osq_rollout_decisions'), 'the rollout counter is known');
    assert.not.ok(known.has('logging_googleapis_com:user_osq_rollout_decisions_sum'), 'a counter has no _sum');
  },
);

t('promtool check rules: both files are valid rules', () => {
  const r = promtool(['check', 'rules', ...Object.values(RULE_FILES)], PROMETHEUS_DIR);
  assert.is(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS: 2 rules found/);
  assert.match(r.output, /SUCCESS: 5 rules found/);
});

t('promtool test rules: every alert of both flavours fires, stays quiet below its threshold and resolves', () => {
  for (const flavour of FLAVOURS) {
    const tests = read(testFile(flavour));
    for (const a of alertsOf(read(RULE_FILES[flavour]))) {
      const cases = tests.split(`alertname: ${a.name}\n`).slice(1);
      assert.ok(cases.length >= 2, `${testFile(flavour)} tests ${a.name} at least twice`);
      assert.ok(
        cases.some((c) => /^\s+exp_alerts: \[\]/.test(c)),
        `${testFile(flavour)}: ${a.name} quiet at some time`,
      );
      assert.ok(
        cases.some((c) => /^\s+exp_alerts:\n\s+- exp_labels/.test(c)),
        `${testFile(flavour)}: ${a.name} fires`,
      );
    }
    const r = promtool(['test', 'rules', testFile(flavour)], PROMETHEUS_DIR);
    assert.is(r.status, 0, `promtool test rules ${testFile(flavour)}:\n${r.output}`);
    assert.match(r.output, /SUCCESS/);
  }
});

t("a copy with a broken threshold fails promtool test rules, whichever alert's threshold it is", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'osquery-rules-'));
  try {
    for (const flavour of FLAVOURS) {
      const rules = read(RULE_FILES[flavour]);
      for (const a of alertsOf(rules)) {
        const m = /^(.*[<>]) (\d+(?:\.\d+)?)$/.exec(a.expr);
        assert.ok(m, `${a.name}: ends with its threshold`);
        // Past the test series either way: a high threshold silences what should fire, a low one the reverse.
        const broken = `${m![1]} ${a.expr.includes(' < ') ? 50 : Number(m![2]) * 5 || 5}`;
        cpSync(path.join(PROMETHEUS_DIR, testFile(flavour)), path.join(dir, testFile(flavour)));
        writeFileSync(path.join(dir, RULE_FILES[flavour]), rules.replace(a.expr, broken));
        const r = promtool(['test', 'rules', testFile(flavour)], dir);
        assert.is.not(r.status, 0, `${a.name} with threshold ${broken.split(' ').pop()} should fail:\n${r.output}`);
        assert.match(r.output, `alertname: ${a.name}`, `promtool names ${a.name}:\n${r.output}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
