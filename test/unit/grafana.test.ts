// The Grafana dashboard (infra/grafana/osquery-fleet.json): Grafana's published dashboard model accepts it
// (the @grafana/schema types, checked by the TypeScript compiler with no key left unchecked), its panels
// are the Cloud Monitoring dashboard's widgets one for one (infra/terraform/dashboard.tf), and every query
// names a metric the product (a log-based metric in infra/terraform) or Google (the Ops Agent, Cloud Run)
// really writes. Provisionable: no data source uid of one Grafana, no numeric id.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { promqlName, readTerraform, type Terraform } from '../../infra/prometheus/rules.js';
import { knownMetrics, metricsIn } from '../helpers/metrics.js';
import { LOG_VOLUME_MESSAGE } from '../../shared/domain/log-volume.js';

const root = path.resolve(import.meta.dirname, '../..');
const DASHBOARD = path.join(root, 'infra/grafana/osquery-fleet.json');

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  options?: Record<string, unknown>;
}
interface GrafanaDashboard {
  id: null;
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string }> };
}

/**
 * Type errors of a dashboard JSON checked against @grafana/schema's
 * Dashboard, as an object literal (excess keys are errors).
 */
function schemaErrors(json: string): string[] {
  const file = path.join(root, 'test/grafana-dashboard.check.ts');
  const source =
    "import type { Dashboard } from '@grafana/schema';\n" +
    `export const dashboard = ${json.trim()} satisfies Dashboard;\n`;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === file || ts.sys.fileExists(name);
  host.readFile = (name) => (name === file ? source : ts.sys.readFile(name));
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    .filter(Boolean);
}

/** The Cloud Monitoring dashboard's widgets: title, kind and the metrics each chart reads, in order. */
function cloudMonitoringWidgets(tf: Terraform) {
  const prefix = tf.variables.name_prefix!.default as string;
  const board = tf.locals.fleet_dashboard as {
    gridLayout: { widgets: Array<{ title: string; text?: unknown; xyChart?: { dataSets: unknown[] } }> };
  };
  return board.gridLayout.widgets.map((w) => {
    const filters = (w.xyChart?.dataSets ?? []).map(
      (d) =>
        (d as { timeSeriesQuery: { timeSeriesFilter: { filter: string } } }).timeSeriesQuery.timeSeriesFilter.filter,
    );
    const metrics = filters.map((f) => {
      const type = /metric\.type="([^"]+)"/
        .exec(f)![1]!
        .replace(/\$\{google_logging_metric\.([a-z0-9_]+)\.name\}/, (_, r: string) =>
          String(tf.resources.get(`google_logging_metric.${r}`)!.name).replace('${var.name_prefix}', prefix),
        );
      assert.not.match(type, /\$\{/, `${w.title}: every reference resolved`);
      return promqlName(type);
    });
    return {
      title: w.title,
      kind: w.text ? 'text' : 'chart',
      metrics: [...new Set(metrics)].sort(),
      series: filters.length,
    };
  });
}

const t = suite<{ tf: Terraform; text: string; board: GrafanaDashboard; prefix: string }>('grafana dashboard');
t.before(async (ctx) => {
  ctx.tf = await readTerraform();
  ctx.text = readFileSync(DASHBOARD, 'utf8');
  ctx.board = JSON.parse(ctx.text) as GrafanaDashboard;
  ctx.prefix = ctx.board.templating.list.find((v) => v.name === 'prefix')!.query;
});

/** A panel's queries with the dashboard's `${prefix}` at its default. */
const exprs = (p: Panel, prefix: string) => (p.targets ?? []).map((q) => q.expr.replaceAll('${prefix}', prefix));

t("Grafana's dashboard model (@grafana/schema) accepts it, and rejects a copy with a misspelt key", ({ text }) => {
  assert.equal(schemaErrors(text), []);
  const broken = JSON.parse(text) as { panels: Array<Record<string, unknown>> };
  broken.panels[0]!.gridpos = broken.panels[0]!.gridPos;
  delete broken.panels[0]!.gridPos;
  const errors = schemaErrors(JSON.stringify(broken));
  assert.ok(
    errors.some((e) => e.includes('"gridpos"') && e.includes('does not exist')),
    `the check sees the misspelt key: ${errors.join('; ')}`,
  );
});

t('provisionable: a uid, no numeric id, every query on the data source variable (the managed service)', ({ board }) => {
  assert.is(board.id, null);
  assert.is(board.uid, 'osquery-fleet');
  const ds = board.templating.list.find((v) => v.type === 'datasource')!;
  assert.equal([ds.name, ds.query], ['datasource', 'prometheus']);
  const ids = board.panels.map((p) => p.id);
  assert.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of board.panels.filter((x) => x.type !== 'text')) {
    assert.equal(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
    for (const q of p.targets!) assert.equal(q.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
  }
});

t(
  "its panels are the Cloud Monitoring dashboard's widgets, one for one, on the same metrics",
  ({ tf, board, prefix }) => {
    assert.is(prefix, tf.variables.name_prefix!.default, "the prefix variable defaults to Terraform's name_prefix");
    const known = knownMetrics(tf);
    const grafana = board.panels.map((p) => ({
      title: p.title,
      kind: p.type === 'text' ? 'text' : 'chart',
      metrics: [
        ...new Set(
          exprs(p, prefix)
            .flatMap(metricsIn)
            .map((m) => known.get(m)?.metric ?? m),
        ),
      ].sort(),
      series: (p.targets ?? []).length,
    }));
    assert.equal(grafana, cloudMonitoringWidgets(tf));
  },
);

t('every query names a metric the product or Google writes, narrowed to its resource type', ({ tf, board, prefix }) => {
  const known = knownMetrics(tf);
  for (const p of board.panels) {
    for (const expr of exprs(p, prefix)) {
      assert.not.match(expr, /\$\{(?!datasource)/, `${p.title}: no variable but the data source left`);
      const metrics = metricsIn(expr);
      assert.ok(metrics.length > 0, `${p.title}: a metric`);
      for (const m of metrics) {
        assert.ok(known.has(m), `${p.title}: ${m} is written by the product, the Ops Agent or Cloud Run`);
        assert.match(expr, `${m}{monitored_resource="`, `${p.title}: ${m} names its resource type`);
      }
    }
  }
});

t('top 10 VMs by osqueryd use, per VM; the functions are exactly the Terraform functions', ({ tf, board, prefix }) => {
  for (const p of board.panels.filter((x) => x.title.startsWith('Top 10 VMs'))) {
    const [expr] = exprs(p, prefix);
    assert.match(expr!, /^topk\(10, sum by \(project_id, zone, instance_id\) /, p.title);
    assert.match(expr!, /command="osqueryd"/, p.title);
  }
  // Terraform's function names: <prefix>-<name> for every function of functions.json (the manifest).
  assert.is(
    tf.locals.function_names,
    '${{ for name, f in local.manifest.functions : name => "${var.name_prefix}-${f.resourceName}" }}',
  );
  const manifest = JSON.parse(readFileSync(path.join(root, 'infra/terraform/functions.json'), 'utf8')) as {
    functions: Record<string, { resourceName: string }>;
  };
  const names = Object.values(manifest.functions).map((f) => `${prefix}-${f.resourceName}`);
  for (const p of board.panels.filter((x) => x.title.startsWith('Orchestrator functions'))) {
    for (const expr of exprs(p, prefix)) {
      const re = /service_name=~"([^"]+)"/.exec(expr)![1]!;
      const alternatives = /^([a-z0-9]+)-\(([^)]+)\)$/.exec(re)!;
      assert.equal(
        alternatives[2]!
          .split('|')
          .map((n) => `${alternatives[1]}-${n}`)
          .sort(),
        [...names].sort(),
        `${p.title}: every function, nothing else`,
      );
    }
  }
});

t("the log-volume panel reads the line the run's close logs per version, by version", ({ tf, board }) => {
  const metric = tf.resources.get('google_logging_metric.log_volume')!;
  assert.ok(String(metric.filter).includes(`jsonPayload.message="${LOG_VOLUME_MESSAGE}"`), String(metric.filter));
  assert.is(metric.value_extractor, 'EXTRACT(jsonPayload.shippedBytesPerDay)');
  assert.equal(metric.label_extractors, { config_version: 'EXTRACT(jsonPayload.configVersion)' });
  const panel = board.panels.find((p) => p.title.startsWith('Log volume'))!;
  assert.match(panel.targets![0]!.expr, /^sum by \(config_version\) /);
});

t.run();
