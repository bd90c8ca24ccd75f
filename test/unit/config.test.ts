import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, parseConfig } from '../../shared/config.js';

const t = suite('configuration');

t('defaults', () => {
  const c = parseConfig({});
  assert.equal(c.OPT_OUT_LABEL, { key: 'osquery-exempt', value: 'true' });
  assert.is(c.REMEDIATE_OSCONFIG_METADATA, false);
  assert.is(c.ASSIGNMENT_ID, 'osquery');
  assert.is(c.ROLLOUT_DISRUPTION_PERCENT, 10);
  assert.is(c.ROLLOUT_MIN_WAIT_SECONDS, 60);
  assert.is(c.GOOGLE_API_ENDPOINT, undefined);
});

t('values are parsed and empty strings mean unset', () => {
  const c = parseConfig({
    OPT_OUT_LABEL: 'compliance-skip=yes',
    REMEDIATE_OSCONFIG_METADATA: 'true',
    ROLLOUT_DISRUPTION_PERCENT: '25',
    GOOGLE_API_ENDPOINT: '',
  });
  assert.equal(c.OPT_OUT_LABEL, { key: 'compliance-skip', value: 'yes' });
  assert.is(c.REMEDIATE_OSCONFIG_METADATA, true);
  assert.is(c.ROLLOUT_DISRUPTION_PERCENT, 25);
  assert.is(c.GOOGLE_API_ENDPOINT, undefined);
});

t('every bad variable is named in one error', () => {
  try {
    parseConfig({
      OPT_OUT_LABEL: 'NoEquals',
      REMEDIATE_OSCONFIG_METADATA: 'maybe',
      ROLLOUT_DISRUPTION_PERCENT: '300',
      GOOGLE_API_ENDPOINT: 'not a url',
    });
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.instance(error, ConfigError);
    const message = (error as Error).message;
    for (const name of [
      'OPT_OUT_LABEL',
      'REMEDIATE_OSCONFIG_METADATA',
      'ROLLOUT_DISRUPTION_PERCENT',
      'GOOGLE_API_ENDPOINT',
    ])
      assert.match(message, name);
  }
});

t.run();
