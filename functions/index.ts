// Entry points (docs/contracts.md), as the function manifest lists them (functions/manifest.ts). Each is a
// thin handler: parse, call a use case, map errors.
//
// Configuration is validated as this module loads: with a bad setting the instance does not start
// (a deploy does not go live), so Pub/Sub and Eventarc keep redelivering instead of an event being
// acknowledged and dropped; the one error names every bad variable.
//
// Cloud Functions loads this module for every function, so it imports no handler up front: each
// function imports its own handler (and the client libraries that one uses) on its first event.
import * as functions from '@google-cloud/functions-framework';
import { config } from '../shared/config.js';
import { log } from '../shared/log.js';
import { eventFunction } from './invocation.js';
import { eventTypesOf, functionList, isHttp } from './manifest.js';

try {
  config();
} catch (error) {
  log.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'functions cannot start');
  throw error;
}

// Every function of the manifest, each importing its handler on its first event. Event functions are
// registered (as HTTP) by eventFunction, which reads the CloudEvent itself: each refuses (400, with the
// reason) a request that carries no event of the types its trigger brings. An HTTP function (the status
// page) has no trigger: it is private by Cloud Run invoker IAM (infra/terraform/status.tf).
for (const fn of functionList()) {
  if (isHttp(fn)) functions.http(fn.name, async (req, res) => (await fn.load())(req, res));
  else eventFunction(fn.name, eventTypesOf(fn.trigger), async (event) => (await fn.load())(event));
}
