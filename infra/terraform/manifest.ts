// `npm run manifest`: writes infra/terraform/functions.json from the function manifest (functions/manifest.ts),
// the one thing Terraform reads about the functions (locals.tf: jsondecode, then for_each), and the list of
// functions in the Grafana dashboard's queries (infra/grafana/osquery-fleet.json). Terraform cannot run
// TypeScript, so both are checked in; test/unit/manifest.test.ts fails when either is stale. Every function
// gets every field (null where the manifest leaves it out): Terraform reads them as one shape.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PUBSUB_MESSAGE_EVENT_TYPE } from '../../shared/domain/pubsub-message.js';
import { AUDIT_LOG_EVENT_TYPE } from '../../shared/domain/audit-event.js';
import { PUBLISHER_PERMISSIONS, functionList, memorySize, type Trigger } from '../../functions/manifest.js';

export const FUNCTIONS_JSON = path.join(import.meta.dirname, 'functions.json');
export const GRAFANA_DASHBOARD = path.join(import.meta.dirname, '../grafana/osquery-fleet.json');

/** fleetAuditShard -> fleet-audit-shard: the function, service account and Cloud Run service name after the prefix. */
export const resourceName = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function triggerJson(trigger: Trigger) {
  return {
    kind: trigger.kind,
    // The Eventarc trigger's event type (none for a push subscription or HTTP).
    eventType:
      trigger.kind === 'auditLog' ? AUDIT_LOG_EVENT_TYPE : trigger.kind === 'pubsub' ? PUBSUB_MESSAGE_EVENT_TYPE : null,
    topic: 'topic' in trigger ? trigger.topic : null,
    // The push subscription's Pub/Sub filter.
    filter: 'filter' in trigger ? trigger.filter : null,
    methods: 'methods' in trigger ? [...trigger.methods] : null,
    // The function's own Eventarc trigger matches these (attribute: value); an audit-log function's other
    // methods get triggers of their own.
    eventFilters: trigger.kind === 'auditLog' ? { serviceName: trigger.service, methodName: trigger.methods[0] } : {},
  };
}

/** The file's content. */
export function functionsJson(): string {
  const functions = Object.fromEntries(
    functionList().map((f) => [
      f.name,
      {
        resourceName: resourceName(f.name),
        description: f.description,
        accountDescription: `Runs ${f.name}: ${f.duty}.`,
        trigger: triggerJson(f.trigger),
        // Browsers reach an HTTP function; everything else is invoked by Google's own deliveries.
        ingress: f.trigger.kind === 'http' ? 'browsers' : 'internal',
        peakMb: f.peakMb,
        memory: memorySize(f.peakMb),
        timeoutSeconds: f.timeoutSeconds,
        timeoutAfter: f.timeoutAfter ?? null,
        maxInstances: f.maxInstances,
        concurrency: f.concurrency ?? null,
        cpu: f.cpu ?? null,
        delivery: f.delivery ?? null,
        grantsInBothDeliveries: f.grantsInBothDeliveries ?? false,
        permissions: {
          target: [...f.permissions.target],
          parent: [...f.permissions.parent],
          firestore: f.permissions.firestore,
          publishes: [...f.permissions.publishes],
          subscribes: [...f.permissions.subscribes],
        },
      },
    ]),
  );
  const publisher = {
    target: [...PUBLISHER_PERMISSIONS.target],
    parent: [...PUBLISHER_PERMISSIONS.parent],
    bucket: [...PUBLISHER_PERMISSIONS.bucket],
    firestore: PUBLISHER_PERMISSIONS.firestore,
  };
  const note = 'Written by `npm run manifest` from functions/manifest.ts: edit that file, then run it.';
  return `${JSON.stringify({ '//': note, functions, publisher }, null, 2)}\n`;
}

/** A Grafana dashboard whose queries select the functions' Cloud Run services as `${prefix}-(a|b|...)`. */
export function grafanaDashboard(text: string): string {
  const names = functionList().map((f) => resourceName(f.name));
  return text.replace(/\$\{prefix\}-\([a-z0-9|-]+\)/g, `\${prefix}-(${names.join('|')})`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  writeFileSync(FUNCTIONS_JSON, functionsJson());
  writeFileSync(GRAFANA_DASHBOARD, grafanaDashboard(readFileSync(GRAFANA_DASHBOARD, 'utf8')));
  for (const file of [FUNCTIONS_JSON, GRAFANA_DASHBOARD]) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
