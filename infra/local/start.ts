// `npm start`: the whole orchestrator on this machine. Firestore and Pub/Sub emulators, the simulator
// of Compute Engine / OS Config (with its Eventarc stand-in and agents), every function served by the
// Functions Framework, then a demo fleet; every host's state is printed as it changes. Ctrl-C stops it.
// Whatever ends it (Ctrl-C, a bad setting, a port in use, any failure), what it started is stopped.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulators, MissingPrerequisiteError, type Emulators } from './emulators.js';
import { startSimulator, type Simulator } from './simulator/server.js';
import { config, heartbeatTokenAudience, parseConfig, resetConfig } from '../../shared/config.js';
import type { OsqueryCostStatus } from '../../shared/domain/telemetry.js';
import { quietKnownWarnings } from '../../shared/warnings.js';

quietKnownWarnings();

const stamp = () => new Date().toISOString().slice(11, 19);
const say = (line: string) => process.stdout.write(`${stamp()}  ${line}\n`);
const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

let emulators: Emulators | undefined;
let sim: Simulator | undefined;
let stopping = false;
async function shutdown(code = 0): Promise<never> {
  if (!stopping) {
    stopping = true;
    say('stopping');
    setTimeout(() => process.exit(code), 10_000).unref();
    await sim?.close().catch(() => undefined);
    await emulators?.stop().catch(() => undefined);
  }
  process.exit(code);
}
/** Any failure: one message on stderr, then everything started is stopped and the exit code is 1. */
const fail = (error: unknown) => {
  console.error(`npm start: ${reasonOf(error)}`);
  return shutdown(1);
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('uncaughtException', (error) => void fail(error));
process.on('unhandledRejection', (error) => void fail(error));

let values: {
  'no-demo': boolean;
  'simulator-port': string;
  'functions-port': string;
  'agent-interval-ms': string;
  'audit-every': string;
  'log-every': string;
  'rollout-after': string;
  'backlog-after': string;
  'log-delivery': string;
  'drain-every': string;
};
try {
  ({ values } = parseArgs({
    options: {
      'no-demo': { type: 'boolean', default: false },
      'simulator-port': { type: 'string', default: process.env.SIMULATOR_PORT ?? '8090' },
      'functions-port': { type: 'string', default: process.env.FUNCTIONS_PORT ?? '8081' },
      'agent-interval-ms': { type: 'string', default: '3000' },
      'audit-every': { type: 'string', default: process.env.AUDIT_EVERY_SECONDS ?? '20' },
      'log-every': { type: 'string', default: process.env.LOG_EVERY_SECONDS ?? '10' },
      'rollout-after': { type: 'string', default: process.env.ROLLOUT_DEMO_AFTER_SECONDS ?? '300' },
      'backlog-after': { type: 'string', default: process.env.BACKLOG_DEMO_AFTER_SECONDS ?? '900' },
      // logHeartbeat's delivery, as Terraform's log_heartbeat_delivery: push, or pull (logHeartbeatDrain).
      'log-delivery': { type: 'string', default: process.env.LOG_DELIVERY ?? 'push' },
      'drain-every': { type: 'string', default: process.env.DRAIN_EVERY_SECONDS ?? '5' },
    },
  }));
  if (!['push', 'pull'].includes(values['log-delivery']))
    throw new Error(`--log-delivery must be push or pull, not ${values['log-delivery']}`);
} catch (error) {
  console.error(`npm start: ${reasonOf(error)}`);
  process.exit(2);
}

const PROJECT_ID = 'osquery-orchestrator-local';
/** The project whose audit logs Eventarc delivers (it stands for the orchestrator's own project). */
const EVENTARC_PROJECT = 'acme-prod';
Object.assign(process.env, {
  GOOGLE_CLOUD_PROJECT: PROJECT_ID,
  METADATA_SERVER_DETECTION: 'none',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  // acme-prod by name; folders/1001 (acme-data, acme-ml) resolved to its projects at every audit.
  TARGET_PROJECTS: process.env.TARGET_PROJECTS ?? 'acme-prod,folders/1001',
  CONFIG_BUCKET: process.env.CONFIG_BUCKET ?? 'osquery-config-local',
  OSCONFIG_WRITES_PER_MINUTE: process.env.OSCONFIG_WRITES_PER_MINUTE ?? '600',
  // Short local clocks, so a person sees grace periods end within a minute or two.
  GRACE_PERIOD_MINUTES: process.env.GRACE_PERIOD_MINUTES ?? '1',
  SILENCE_THRESHOLD_MINUTES: process.env.SILENCE_THRESHOLD_MINUTES ?? '1',
  // The demo's drifted host alerts a minute after its osqueryd keeps the old configuration.
  DRIFT_GRACE_MINUTES: process.env.DRIFT_GRACE_MINUTES ?? '1',
  HEARTBEAT_WRITE_WINDOW_SECONDS: process.env.HEARTBEAT_WRITE_WINDOW_SECONDS ?? '15',
  // osquery_schedule comes every 12 log rounds here (2 minutes): query statistics are written every 30 s.
  QUERY_STATS_WRITE_WINDOW_SECONDS: process.env.QUERY_STATS_WRITE_WINDOW_SECONDS ?? '30',
});
// Pull delivery: the subscription logHeartbeatDrain drains (functions.ts makes it); push: none, as in Terraform.
if (values['log-delivery'] === 'pull')
  process.env.LOG_HEARTBEAT_SUBSCRIPTION ??= `${process.env.LOG_TOPIC ?? 'osquery-logs'}-heartbeat-pull`;
else delete process.env.LOG_HEARTBEAT_SUBSCRIPTION;
// The simulator's URL is set once it listens; whatever the shell had is not used.
delete process.env.GOOGLE_API_ENDPOINT;
// A bad setting stops here, before anything is started (the functions would refuse to load anyway).
try {
  parseConfig(process.env);
} catch (error) {
  console.error(`npm start: ${reasonOf(error)}`);
  process.exit(1);
}

try {
  emulators = await startEmulators(PROJECT_ID);
} catch (error) {
  console.error(
    error instanceof MissingPrerequisiteError ? `npm start cannot start: ${error.message}` : reasonOf(error),
  );
  process.exit(2);
}
Object.assign(process.env, {
  FIRESTORE_EMULATOR_HOST: emulators.firestoreHost,
  PUBSUB_EMULATOR_HOST: emulators.pubsubHost,
});
say(`Firestore emulator  ${emulators.firestoreHost}`);
say(`Pub/Sub emulator    ${emulators.pubsubHost}`);
try {
  await run(emulators);
} catch (error) {
  await fail(error);
}

async function run(emulators: Emulators): Promise<void> {
  // Imported only now: the functions read (and validate) configuration as they load, after the
  // environment above is complete.
  const { COMPUTE_AUDIT_LOG_TOPIC, filteredLogTopic, serveFunctions } = await import('./functions.js');
  const { clients } = await import('../../shared/clients.js');

  // Each simulated VM ships a heartbeat every --log-every seconds: osquery's 5 minutes, accelerated.
  // Compute's audit entries reach vmLifecycle two ways, as on Google Cloud: Eventarc's trigger sees its own
  // project's (acme-prod stands for the orchestrator project here); the organisation log sink publishes
  // every project's to a topic whose push subscription delivers them (acme-data's come this way only).
  sim = await startSimulator({
    port: Number(values['simulator-port']),
    agentIntervalMs: Number(values['agent-interval-ms']),
    logTopic: { projectId: emulators.projectId, topic: process.env.LOG_TOPIC ?? 'osquery-logs' },
    logIntervalMs: Number(values['log-every']) * 1000,
    eventarcProject: EVENTARC_PROJECT,
    auditLogTopic: { projectId: emulators.projectId, topic: COMPUTE_AUDIT_LOG_TOPIC },
    tokenAudience: heartbeatTokenAudience(),
  });
  process.env.GOOGLE_API_ENDPOINT = sim.url;
  // The simulated metadata server signs the VMs' identity tokens; logHeartbeat checks them against its certificates.
  process.env.HEARTBEAT_TOKEN_CERTS_URL = `${sim.url}/oauth2/v1/certs`;
  resetConfig();

  const fleet = JSON.parse(readFileSync(path.join(import.meta.dirname, 'demo-fleet.json'), 'utf8')) as {
    organization: {
      folders: Array<{ id: string; parent: string; displayName: string }>;
      disabledApis: Record<string, string[]>;
    };
    projects: Array<{ id: string; parent?: string }>;
    vms: Array<{ name: string }>;
  };
  const control = async (method: string, p: string, body: unknown) => {
    const res = await fetch(`${sim!.url}/control${p}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  };
  // The organisation the targets are resolved in (before the first audit tick), with or without the demo fleet.
  for (const folder of fleet.organization.folders) await control('POST', '/folders', folder);
  for (const project of fleet.projects) await control('POST', '/projects', project);
  await control('POST', '/faults', { disabledApis: fleet.organization.disabledApis });

  const functions = await serveFunctions(Number(values['functions-port']));
  sim.eventarc.sinkUrl = functions.urls.vmLifecycle;
  await functions.wireTriggers();
  const { logRelay, sinkRelay } = functions;

  // A local consumer of the alert topic prints what lands there.
  const pubsub = await clients.pubsub();
  const [alertSubscription] = await pubsub
    .topic(config().ALERT_TOPIC)
    .subscription('local-alert-printer')
    .get({ autoCreate: true });
  alertSubscription.on('message', (m) => {
    const a = JSON.parse(m.data.toString()) as {
      kind: string;
      status: string;
      severity: string;
      host: { name: string; project: string; zone: string } | null;
      reason: string | null;
      source?: string;
      query?: { configVersion: string; name: string };
      /** host.spoofed: the VM the forged heartbeats' token was issued to. */
      sender?: { name: string | null; project: string; zone: string } | null;
    };
    const about = a.host
      ? `${a.host.project}/${a.host.zone}/${a.host.name}`
      : a.query
        ? `query ${a.query.name} (${a.query.configVersion})`
        : '(no host)';
    say(
      `ALERT ${a.status.toUpperCase().padEnd(8)} ${a.kind}${a.source ? ` (source ${a.source})` : ''} [${a.severity}] ` +
        `${about}${a.reason ? ` ${a.reason}` : ''}` +
        (a.sender ? ` (sent by ${a.sender.project}/${a.sender.zone}/${a.sender.name ?? '?'})` : ''),
    );
    m.ack();
  });

  say(`simulator           ${sim.url}   (control API: ${sim.url}/control)`);
  for (const [name, url] of Object.entries(functions.urls)) say(`${name.padEnd(19)} ${url}`);
  const pull = functions.logDelivery === 'pull';
  say(`log filter relay    ${logRelay.url}   (logHeartbeat's subscription filter: ${logRelay.filter})`);
  if (pull)
    say(
      `log delivery        pull: the lines the filter passes go to topic ${filteredLogTopic(config().LOG_TOPIC)}, ` +
        `subscription ${config().LOG_HEARTBEAT_SUBSCRIPTION}; every ${values['drain-every']} s a tick on ` +
        `${config().LOG_DRAIN_TICK_TOPIC} -> logHeartbeatDrain drains it (Cloud Scheduler: every minute)`,
    );
  say(`audit logs          ${EVENTARC_PROJECT}: Eventarc -> vmLifecycle (the orchestrator project's own trigger)`);
  say(
    `                    every project: organisation log sink -> topic ${COMPUTE_AUDIT_LOG_TOPIC} -> push ` +
      `-> vmLifecycle (counted by ${sinkRelay.url})`,
  );
  say(
    `targets             TARGET_PROJECTS=${config().TARGET_PROJECTS.join(',')}: folders resolved to their projects ` +
      `at every audit; ${Object.entries(fleet.organization.disabledApis)
        .map(([p, apis]) => `${p} has ${apis.join(', ')} off (skipped)`)
        .join('; ')}`,
  );
  say(
    `Cloud Scheduler     every ${values['audit-every']} s a tick on ${config().AUDIT_TICK_TOPIC} ` +
      '-> fleetAudit -> fleetAuditShard per project',
  );

  // Every host change, as it lands in Firestore.
  const seen = new Map<string, string>();
  clients
    .firestore()
    .collection('hosts')
    .onSnapshot(
      (snapshot) => {
        for (const change of snapshot.docChanges()) {
          const h = change.doc.data();
          const line = `${h.state}${h.reason ? ` (${h.reason})` : ''}`;
          if (seen.get(change.doc.id) === line) continue;
          // A host's first appearance: how long after its VM's creation, and which way its audit entries came.
          const created = seen.has(change.doc.id) ? undefined : sim!.world.vms.get(change.doc.id)?.creationTimestamp;
          const after = created ? (Date.now() - Date.parse(created)) / 1000 : undefined;
          const how =
            after === undefined
              ? ''
              : `   +${after.toFixed(1)} s after creation, ` +
                (h.project === EVENTARC_PROJECT ? 'Eventarc and the log sink' : 'through the log sink');
          seen.set(change.doc.id, line);
          say(`host ${String(h.name).padEnd(28)} ${`${h.project}/${h.zone}`.padEnd(30)} -> ${line}${how}`);
        }
      },
      (error) => say(`hosts listener failed: ${error.message}`),
    );

  // Audit runs, as they close.
  const reported = new Set<string>();
  clients
    .firestore()
    .collection('audits')
    .onSnapshot(
      (snapshot) => {
        for (const change of snapshot.docChanges()) {
          const run = change.doc.data();
          if (run.status === 'running' || reported.has(change.doc.id)) continue;
          reported.add(change.doc.id);
          const counts = Object.entries(run.counts ?? {})
            .map(([state, n]) => `${state} ${n}`)
            .join(', ');
          const coverage = run.coverage === null ? 'n/a' : `${(run.coverage * 100).toFixed(0)}%`;
          const skipped = Object.entries((run.skipped ?? {}) as Record<string, string>)
            .map(([p, reason]) => `; skipped ${p} (${reason})`)
            .join('');
          say(
            `audit ${change.doc.id} ${run.status}: ${counts}; coverage ${coverage}; ` +
              `${run.apiCalls} API calls, ${run.hostWrites} host writes${skipped}`,
          );
        }
      },
      (error) => say(`audits listener failed: ${error.message}`),
    );

  // osquery's own cost, as each audit run's close leaves it (status/osquery): the most expensive queries
  // and the hosts where osqueryd costs most, printed when they change (at most every 2 minutes).
  const { formatQueriesTable, formatHostsTable } = await import('../../cli/telemetry-tables.js');
  let lastCost = '';
  let lastCostAt = 0;
  clients
    .firestore()
    .collection('status')
    .doc('osquery')
    .onSnapshot(
      (doc) => {
        const cost = doc.data() as OsqueryCostStatus | undefined;
        if (!cost || cost.topQueries.length === 0) return;
        const hosts = cost.topHosts.cpu.filter((h) => h.cpuPercent !== null).map((h) => ({ ...h, at: new Date(h.at) }));
        const text =
          `top queries (run ${cost.runId}, ${cost.queries} with statistics):\n` +
          formatQueriesTable(cost.topQueries.slice(0, 8)) +
          (hosts.length ? `\nwhere osqueryd costs most (CPU):\n${formatHostsTable(hosts, 'cpu', 5)}` : '');
        const shape = JSON.stringify([cost.topQueries.map((q) => [q.query, q.class]), hosts.map((h) => h.name)]);
        if (shape === lastCost || (lastCost && Date.now() - lastCostAt < 120_000)) return;
        lastCost = shape;
        lastCostAt = Date.now();
        for (const line of text.split('\n')) say(line);
      },
      (error) => say(`osquery cost listener failed: ${error.message}`),
    );

  // The log path's cost: lines the VMs shipped, and what the subscription filter let through to logHeartbeat.
  let lastLogLine = '';
  let lastSinkLine = '';
  setInterval(() => {
    const c = logRelay.counts;
    const line =
      `logs: ${sim!.shipper?.shipped ?? 0} lines shipped (the SIEM gets all), ` +
      (pull
        ? `${c.forwarded} to logHeartbeatDrain's subscription, read in ${drainTicks} drains, `
        : `${c.forwarded} to logHeartbeat, `) +
      `${c.filtered} acknowledged by the filter`;
    if (line !== lastLogLine) say(line);
    lastLogLine = line;
    // The enrollment paths: what the organisation sink published, what vmLifecycle took from it and from Eventarc.
    const sink = sinkRelay.counts;
    const sinkLine =
      `audit log entries: ${sim!.logSink?.publishedTotal ?? 0} published by the log sink, ` +
      `${sink.forwarded - sink.failed} acknowledged by vmLifecycle (${sink.failed} redelivered); ` +
      `${sim!.eventarc.deliveries.length} delivered by Eventarc (${EVENTARC_PROJECT})`;
    if (sinkLine !== lastSinkLine) say(sinkLine);
    lastSinkLine = sinkLine;
  }, 60_000).unref();

  // Cloud Scheduler stand-in, pull delivery: the drain tick (every minute on Google Cloud).
  let drainTicks = 0;
  if (pull)
    setInterval(
      () => {
        drainTicks += 1;
        void pubsub
          .topic(config().LOG_DRAIN_TICK_TOPIC)
          .publishMessage({ json: { source: 'local-scheduler' } })
          .catch((error: Error) => say(`drain tick failed: ${error.message}`));
      },
      Number(values['drain-every']) * 1000,
    ).unref();

  // Cloud Scheduler stand-in: the audit tick.
  setInterval(
    () => {
      void pubsub
        .topic(config().AUDIT_TICK_TOPIC)
        .publishMessage({ json: { source: 'local-scheduler' } })
        .catch((error: Error) => say(`tick failed: ${error.message}`));
    },
    Number(values['audit-every']) * 1000,
  ).unref();

  // OS policy assignments and their rollouts, from the simulator's side.
  const rollouts = new Map<string, string>();
  setInterval(() => {
    for (const a of sim!.world.assignments.values()) {
      const line = `${a.rolloutState} revision ${a.revisionId}`;
      if (rollouts.get(a.name) === line) continue;
      rollouts.set(a.name, line);
      say(`policy ${a.name}: rollout ${line}`);
    }
  }, 1000).unref();

  // The configuration bundle in shared/osquery/bundle, linted and published as `osq-orch publish` would.
  {
    const { publish } = await import('../../shared/usecases/publish.js');
    const { loadSchema, schemaSource } = await import('../../shared/osquery/schema.js');
    const { LOCAL_PLAN } = await import('./rollout-demo.js');
    const report = await publish({
      schema: await loadSchema(schemaSource(process.env.OSQUERY_SCHEMA, config().OSQUERY_VERSION)),
      planFile: LOCAL_PLAN,
    });
    say(
      `configuration ${report.configVersion} published: ` +
        `${report.uploaded} file(s) to gs://${process.env.CONFIG_BUCKET}, ` +
        (report.rollout.note ? `${report.rollout.mode} (${report.rollout.note})` : `rollout started`),
    );
  }

  if (!values['no-demo']) {
    say(`creating the demo fleet: ${fleet.vms.length} VMs in 3 zones`);
    for (const vm of fleet.vms) {
      if (stopping) return;
      await control('POST', '/vms', vm);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  say('running. Add a VM (acme-prod: Eventarc and the sink; acme-data: the log sink only, within seconds too):');
  say(
    `  curl -s -XPOST ${sim.url}/control/vms -H 'content-type: application/json' ` +
      `-d '{"project":"acme-prod","zone":"us-central1-a","name":"web-3","os":"debian-12"}'`,
  );
  say(
    `  curl -s -XPOST ${sim.url}/control/vms -H 'content-type: application/json' ` +
      `-d '{"project":"acme-data","zone":"europe-west1-c","name":"etl-3","os":"debian-12"}'`,
  );
  say('Delete it:');
  say(`  curl -s -XDELETE ${sim.url}/control/vms/acme-prod/us-central1-a/web-3`);
  say('Make a host fail its policy, lose its agent, stop, or go quiet (then watch the next audits):');
  say(
    `  curl -s -XPATCH ${sim.url}/control/vms/INSTANCE_ID -H 'content-type: application/json' ` +
      `-d '{"policyFailure":"install-osquery"}'   (or {"logsStopped":true})`,
  );
  say("Make a host's osqueryd expensive (its heartbeats then report it), restart its worker, or denylist a query:");
  say(
    `  curl -s -XPATCH ${sim.url}/control/vms/INSTANCE_ID/osqueryd -H 'content-type: application/json' ` +
      `-d '{"cpuPercent":35}'`,
  );
  say(`  curl -s -XPOST ${sim.url}/control/vms/INSTANCE_ID/osqueryd/restart`);
  say(
    `  curl -s -XPOST ${sim.url}/control/vms/INSTANCE_ID/osqueryd/denylist -H 'content-type: application/json' ` +
      `-d '{"query":"pack_system_crontab"}'`,
  );
  const DEMO_INCIDENT = JSON.stringify({
    version: '1.2',
    incident: {
      incident_id: 'demo-1',
      state: 'open',
      started_at: 0,
      resource: { type: 'gce_instance', labels: { instance_id: 'INSTANCE_ID' } },
      policy_name: 'osqueryd CPU above 10%',
    },
  });
  say('Open a Cloud Monitoring incident for a VM (osqueryd CPU above 10%):');
  say(
    `  curl -s -XPOST http://${emulators.pubsubHost}/v1/projects/${emulators.projectId}` +
      `/topics/${config().INCIDENT_TOPIC}:publish -H 'content-type: application/json' ` +
      `-d "{\\"messages\\":[{\\"data\\":\\"$(echo '${DEMO_INCIDENT}' | base64 -w0)\\"}]}"`,
  );

  // The demo's story: web-2's logs stop after a minute (silent, then an alert), and resume two minutes later;
  // meanwhile worker-2 publishes its heartbeats again naming web-2 (its own identity token): they do not keep
  // web-2 reporting, and host.spoofed fires once; web-1's osqueryd goes above 10% of a core for a while
  // (host.performance from its own heartbeats).
  if (!values['no-demo']) {
    const web1 = [...sim.world.vms.values()].find((vm) => vm.name === 'web-1');
    if (web1) {
      setTimeout(() => {
        web1.osqueryd.cpuPercent = 35;
        say(
          "demo: web-1's osqueryd goes to 35% of a core (as the control call PATCH /control/vms/ID/osqueryd does); " +
            'host.performance (source osquery) fires after two heartbeats above 10%',
        );
      }, 90_000).unref();
      setTimeout(() => {
        web1.osqueryd.cpuPercent = null;
        say("demo: web-1's osqueryd is back to its usual cost; the alert resolves at its next heartbeat");
      }, 210_000).unref();
    }
    const web2 = [...sim.world.vms.values()].find((vm) => vm.name === 'web-2');
    if (web2) {
      setTimeout(() => {
        web2.faults.logsStopped = true;
        say('demo: web-2 stops shipping logs (osqueryd crashed); it goes silent after the threshold');
      }, 60_000).unref();
      setTimeout(() => {
        web2.faults.logsStopped = false;
        say('demo: web-2 ships logs again; it goes back to reporting and the alert resolves');
      }, 240_000).unref();
      const worker2 = [...sim.world.vms.values()].find((vm) => vm.name === 'worker-2');
      if (worker2) {
        setTimeout(() => {
          worker2.faults.spoofAs = web2.id;
          say(
            "demo: worker-2 publishes its heartbeats again naming web-2 (its own identity token, web-2's attributes; " +
              'as PATCH /control/vms/ID {"spoofAs": ID} does): web-2 still goes silent, host.spoofed fires once ' +
              'naming worker-2 as the sender',
          );
        }, 75_000).unref();
        setTimeout(() => {
          worker2.faults.spoofAs = null;
          say("demo: worker-2 stops forging web-2's heartbeats; host.spoofed resolves an hour after the last one");
        }, 240_000).unref();
      }
    }
  }
  // The backlog: the heartbeat path stops acknowledging (the relay paused) for three minutes, as when
  // logHeartbeat falls behind; Cloud Monitoring's incident on the subscription (what its policy would send)
  // raises pipeline.backlog, audits judge nobody silent meanwhile, and the backlog drains when it resumes.
  if (!values['no-demo']) {
    const backlogAfter = Number(values['backlog-after']);
    const incident = async (state: 'open' | 'closed') => {
      const seconds = Math.floor(Date.now() / 1000);
      const body = {
        version: '1.2',
        incident: {
          incident_id: 'demo-backlog',
          state,
          started_at: seconds,
          ended_at: state === 'closed' ? seconds : null,
          resource: { type: 'pubsub_subscription', labels: { subscription_id: `${config().LOG_TOPIC}-push` } },
          metric: { type: 'pubsub.googleapis.com/subscription/oldest_unacked_message_age' },
          policy_name: 'osquery log subscription behind: oldest unacked message',
          condition_name: 'oldest unacked message older than 600 s',
        },
      };
      await (await clients.pubsub()).topic(config().INCIDENT_TOPIC).publishMessage({ json: body });
    };
    setTimeout(() => {
      logRelay.paused = true;
      void incident('open').catch((error: unknown) => say(`backlog demo: ${reasonOf(error)}`));
      say(
        'demo: the heartbeat path falls behind (the log relay stops acknowledging): pipeline.backlog fires, ' +
          'no host is judged silent, the status page says the pipeline is behind',
      );
    }, backlogAfter * 1000).unref();
    setTimeout(
      () => {
        logRelay.paused = false;
        void incident('closed').catch((error: unknown) => say(`backlog demo: ${reasonOf(error)}`));
        say('demo: the heartbeat path catches up: the backlog drains, pipeline.backlog resolves');
      },
      (backlogAfter + 180) * 1000,
    ).unref();
  }
  // The progressive rollout: a good version through every stage, then a bad one halted in the canary
  // (after web-2's story, so its silence is not the rollout's doing).
  if (!values['no-demo']) {
    const after = Number(values['rollout-after']);
    say(`demo: in ${after} s a good configuration version rolls out stage by stage, then a bad one is halted`);
    setTimeout(() => {
      void import('./rollout-demo.js')
        .then(({ rolloutDemo }) => rolloutDemo(sim!, say, () => stopping))
        .catch((error: unknown) => say(`rollout demo failed: ${reasonOf(error)}`));
    }, after * 1000).unref();
  }
  const page = functions.urls.fleetStatus;
  say(`status page: ${page}?refresh=20   (JSON: ${page}api/status, evidence: ${page}evidence.csv)`);
  say('Ctrl-C stops everything.');
}
