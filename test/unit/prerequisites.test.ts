// npm test and npm start stop at once, naming what is missing.
import { mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkEmulatorPrerequisites, MissingPrerequisiteError } from '../../infra/local/emulators.js';

const t = suite('emulator prerequisites');
const which = (cmd: string) =>
  realpathSync(spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim());

function expectMissing(env: NodeJS.ProcessEnv, named: RegExp) {
  try {
    checkEmulatorPrerequisites(env);
    assert.unreachable('should have failed');
  } catch (error) {
    assert.instance(error, MissingPrerequisiteError);
    assert.match((error as Error).message, named);
  }
}

t('this machine has everything', () => {
  checkEmulatorPrerequisites();
});

t('no gcloud on PATH -> names gcloud', () => {
  expectMissing({ PATH: mkdtempSync(path.join(tmpdir(), 'nopath-')) }, /gcloud/);
});

t('gcloud but no java -> names java', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gcloud-only-'));
  symlinkSync(which('gcloud'), path.join(dir, 'gcloud'));
  expectMissing({ PATH: dir }, /java/);
});

t('an SDK without the emulator components -> names the component', () => {
  // A fake SDK root: bin/gcloud exists, platform/ has no emulators.
  const root = mkdtempSync(path.join(tmpdir(), 'sdk-'));
  const bin = path.join(root, 'bin');
  spawnSync('mkdir', ['-p', bin, path.join(root, 'platform')]);
  spawnSync('sh', ['-c', `printf '#!/bin/sh\\n' > ${bin}/gcloud && chmod +x ${bin}/gcloud`]);
  symlinkSync(which('java'), path.join(bin, 'java'));
  expectMissing({ PATH: bin }, /cloud-firestore-emulator/);
});

t.run();
