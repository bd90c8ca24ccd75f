// osquery's own telemetry, pure: the worker's CPU and memory from the 5-minute heartbeat, the cost of
// every scheduled query from the hourly osquery_schedule snapshot, and the decisions taken on them. One
// module per concern, under telemetry/; this file names them all at once, for callers that span several.
// Nothing under telemetry/ imports it (test/unit/import-graph.test.ts would find the loop).
export * from './telemetry/log-lines.js'; // reading log lines: heartbeat samples, schedule snapshots
export * from './telemetry/osqueryd.js'; // osqueryd CPU and memory per host, host.performance (source osquery)
export * from './telemetry/query-cost.js'; // query cost per host: osquery_schedule deltas
export * from './telemetry/query-stats.js'; // fleet statistics per query: windows, histograms, percentiles
export * from './telemetry/query-alerts.js'; // query.expensive and query.denylisted
export * from './telemetry/cost-status.js'; // where osqueryd costs most: the status page's snapshot
