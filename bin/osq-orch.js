#!/usr/bin/env node
// `npx osq-orch ...` (package.json's bin) and `./dev osq-orch ...`: runs cli/osq-orch.ts through tsx's
// loader, so the CLI works from the repository as soon as dependencies are installed, with nothing
// to build first and no dist/ to go stale.
import { register } from 'tsx/esm/api';

register();
await import('../cli/osq-orch.ts');
