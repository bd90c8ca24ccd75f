// Entry points (contracts.md). Each is a thin handler: parse, call a use case, map errors.
import * as functions from '@google-cloud/functions-framework';
import { vmLifecycle } from './vm-lifecycle.js';

functions.cloudEvent('vmLifecycle', vmLifecycle);

export { vmLifecycle };
