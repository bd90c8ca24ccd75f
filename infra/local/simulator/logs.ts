// The log path of every simulated VM: osqueryd's heartbeat and result lines, shipped by "fluentd" to
// the Pub/Sub emulator's log topic with the host identity attributes (README: Host identity).
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { OSQUERY_VERSION, SIM_OS, type SimVm, type World } from './world.js';

/** A VM ships logs once its OS policy placed the configuration, started osqueryd, wrote its identity and started the shipper. */
export function shipsLogs(vm: SimVm): boolean {
  return (
    vm.status === 'RUNNING' &&
    !vm.faults.agentMissing &&
    !vm.faults.logsStopped &&
    Boolean(vm.installed.osquery) &&
    Boolean(vm.applied['osqueryd-running']) &&
    Boolean(vm.applied['host-identity']) &&
    Boolean(vm.applied['shipper-running'])
  );
}

export function heartbeatLine(vm: SimVm, now: Date) {
  const unixTime = Math.floor(now.getTime() / 1000);
  return {
    name: 'heartbeat',
    hostIdentifier: vm.name,
    calendarTime: now.toUTCString(),
    unixTime,
    epoch: 0,
    counter: 0,
    numerics: false,
    decorations: { host_uuid: `uuid-${vm.id}`, hostname: vm.name },
    action: 'snapshot',
    snapshot: [
      {
        heartbeat_at: String(unixTime),
        osquery_version: OSQUERY_VERSION,
        config_hash: 'sim',
        pid: '4242',
        uuid: `uuid-${vm.id}`,
      },
    ],
  };
}

function resultLine(vm: SimVm, now: Date) {
  return {
    name: 'pack_network_listening_ports',
    hostIdentifier: vm.name,
    calendarTime: now.toUTCString(),
    unixTime: String(Math.floor(now.getTime() / 1000)),
    epoch: 0,
    counter: 1,
    numerics: false,
    decorations: { hostname: vm.name },
    action: 'added',
    columns: {
      port: '22',
      protocol: '6',
      address: '0.0.0.0',
      name: 'sshd',
      path: '/usr/sbin/sshd',
      os: SIM_OS[vm.os].shortName,
    },
  };
}

export class LogShipper {
  private topic: Topic | undefined;
  shipped = 0;

  constructor(
    private readonly world: World,
    private readonly target: { projectId: string; topic: string },
  ) {}

  private topicHandle(): Topic {
    this.topic ??= new PubSub({ projectId: this.target.projectId }).topic(this.target.topic, {
      batching: { maxMessages: 500, maxMilliseconds: 50 },
    });
    return this.topic;
  }

  /** One round: every shipping VM sends its heartbeat (and, now and then, a result line). */
  async shipRound(now = new Date()): Promise<number> {
    const sends: Array<Promise<string>> = [];
    for (const vm of this.world.vms.values()) {
      if (!shipsLogs(vm)) continue;
      const lines = [heartbeatLine(vm, now), ...(Math.random() < 0.3 ? [resultLine(vm, now)] : [])];
      sends.push(
        this.topicHandle().publishMessage({
          data: Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n')),
          attributes: { gce_instance_id: vm.id, gce_project_id: vm.project, gce_zone: vm.zone, log_type: 'snapshot' },
        }),
      );
    }
    await Promise.all(sends);
    this.shipped += sends.length;
    return sends.length;
  }

  async close(): Promise<void> {
    await this.topic?.flush().catch(() => undefined);
  }
}
