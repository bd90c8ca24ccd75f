// `osq-orch render` prints the assignment in Google's REST JSON form: converted through the OS Config
// proto's JSON mapping (proto3-json-serializer, as google-gax uses it, with the client library's own
// descriptors) and back, it is unchanged: gcloud's --file and the REST API read it as it is.
import { createRequire } from 'node:module';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { serializer } from 'google-gax';
import protobuf from 'protobufjs';
import { DEFAULT_BUNDLE_DIR, loadBundle } from '../../shared/osquery/bundle.js';
import { renderBundle } from '../../shared/osquery/render.js';
import { buildOsqueryAssignment, policyConfigOf } from '../../shared/domain/policy.js';
import { assignmentRestJson } from '../../shared/domain/assignment-json.js';

const t = suite('render: the assignment in REST JSON form');
const require = createRequire(import.meta.url);
const root = protobuf.Root.fromJSON(require('@google-cloud/os-config/build/protos/protos.json'));
const AssignmentType = root.lookupType('google.cloud.osconfig.v1.OSPolicyAssignment');

t(
  'durations are "60s", int64 values strings, and the proto JSON mapping reads it and writes it back unchanged',
  async () => {
    const rendered = renderBundle(await loadBundle(DEFAULT_BUNDLE_DIR), {
      logTopic: 'osquery-logs',
      logTopicProject: 'p',
    });
    const generations = Object.fromEntries(rendered.files.map((f) => [f.source, '1733500000123456']));
    const assignment = buildOsqueryAssignment(
      { optOutLabel: { key: 'osquery-exempt', value: 'true' }, disruptionPercent: 10, minWaitSeconds: 60 },
      policyConfigOf(rendered, 'cfg', generations),
    );
    // As the client library may hold them: a generation as a number-like Long, nanos on a duration.
    const json = assignmentRestJson({
      name: 'projects/p/locations/us-central1-a/osPolicyAssignments/osquery',
      ...assignment,
      rollout: { ...assignment.rollout, minWaitDuration: { seconds: 90, nanos: 500_000_000 } },
    });
    const rollout = json.rollout as Record<string, unknown>;
    assert.is(rollout.minWaitDuration, '90.500s');
    const text = JSON.stringify(json);
    assert.match(text, /"generation":"1733500000123456"/);
    assert.not.match(text, /"seconds"/, 'no duration left in object form');
    const message = serializer.fromProto3JSON(AssignmentType, json as never);
    assert.ok(message, 'the proto JSON mapping reads it');
    const back = serializer.toProto3JSON(message as never);
    assert.equal(back, json, 'and writes back exactly what render printed');
    assert.equal(assignmentRestJson(assignment).rollout, { disruptionBudget: { percent: 10 }, minWaitDuration: '60s' });
  },
);

t.run();
