// One osquery heartbeat line as the Pub/Sub push delivers it to logHeartbeat (one line per message, as the
// shipper publishes): the benches that feed logHeartbeat directly build their events here.
export function heartbeatEvent(messageId: string, instanceId: string, project: string, unixTime: number) {
  return {
    id: messageId,
    type: 'google.cloud.pubsub.topic.v1.messagePublished',
    source: '//pubsub.googleapis.com/projects/p/topics/osquery-logs',
    specversion: '1.0',
    data: {
      message: {
        data: Buffer.from(JSON.stringify({ name: 'heartbeat', unixTime, action: 'snapshot', snapshot: [] })).toString(
          'base64',
        ),
        attributes: { gce_instance_id: instanceId, gce_project_id: project, gce_zone: 'z', log_type: 'snapshot' },
        messageId,
      },
    },
  };
}
