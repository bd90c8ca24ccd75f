// HTTP: the fleet status page. Private by deployment (Cloud Run invoker IAM for the viewers listed in
// Terraform, optionally IAP); this handler only serves GET and HEAD of three paths:
//   /              the page (server-rendered HTML, filters in the query string)
//   /api/status    the same data as JSON
//   /evidence.csv  the compliance evidence: every in-scope and exempt host, from the hosts collection
import type { Request, Response } from '@google-cloud/functions-framework';
import { httpHandler, httpStatusOf } from './invocation.js';
import { log } from '../shared/log.js';
import { parseFilters } from '../shared/domain/status-view.js';
import { loadStatusView, writeEvidence } from '../shared/usecases/status.js';
import { CONTENT_TYPES, EVIDENCE_WRITERS } from '../shared/views/evidence.js';
import { API_PATH, CONTENT_SECURITY_POLICY, EVIDENCE_PATH, renderStatusPage } from '../shared/views/status-page.js';

function common(res: Response): void {
  // Fleet data: never cached by a browser or proxy, never sniffed, never sent on as a referrer.
  res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
}

async function page(req: Request, res: Response, json: boolean): Promise<void> {
  const parsed = parseFilters(req.query as Record<string, unknown>);
  if (!parsed.ok) {
    res.status(400);
    if (json) res.json({ error: `bad filter: ${parsed.reason}` });
    else res.type('text/plain').send(`bad filter: ${parsed.reason}\n`);
    return;
  }
  const started = performance.now();
  const { view, firestoreReads } = await loadStatusView(parsed.filters);
  const loadMs = Math.round(performance.now() - started);
  log.debug({ path: req.path, firestoreReads, loadMs }, 'fleetStatus: served');
  res.set('Server-Timing', `firestore;desc="${firestoreReads} reads";dur=${loadMs}`);
  if (json) {
    res.json({ ...view, links: { page: './', evidenceCsv: EVIDENCE_PATH } });
    return;
  }
  // ?refresh=N (10..3600 s) reloads the page by itself: a wall display, or the local demo.
  const refresh = Number(req.query.refresh);
  const refreshSeconds = Number.isInteger(refresh) && refresh >= 10 && refresh <= 3600 ? refresh : undefined;
  res
    .set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    .type('html')
    .send(renderStatusPage(view, { refreshSeconds }));
}

async function evidence(req: Request, res: Response): Promise<void> {
  const parsed = parseFilters(req.query as Record<string, unknown>);
  if (!parsed.ok) {
    res.status(400).type('text/plain').send(`bad filter: ${parsed.reason}\n`);
    return;
  }
  const project = parsed.filters.project;
  res.type(CONTENT_TYPES.csv);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let gone = false;
  res.once('close', () => (gone = true));
  const sink = (chunk: string) =>
    new Promise<void>((resolve, reject) => {
      if (gone) return reject(new Error('the client went away'));
      if (res.write(chunk)) return resolve();
      const onDrain = () => (res.off('close', onClose), resolve());
      const onClose = () => (res.off('drain', onDrain), reject(new Error('the client went away')));
      res.once('drain', onDrain).once('close', onClose);
    });
  const result = await writeEvidence(EVIDENCE_WRITERS.csv, sink, {
    project,
    onRun: (run) =>
      res.set(
        'Content-Disposition',
        `attachment; filename="osquery-evidence-${run?.runId ?? 'no-run'}${project ? `-${project}` : ''}.csv"`,
      ),
  });
  res.end();
  log.info(
    {
      project,
      runId: result.run?.runId ?? null,
      inScope: result.inScope,
      exempt: result.exempt,
      invalid: result.invalid,
    },
    'fleetStatus: evidence served',
  );
}

export const fleetStatus = httpHandler('fleetStatus', async (req: Request, res: Response): Promise<void> => {
  common(res);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.set('Allow', 'GET, HEAD').status(405).type('text/plain').send('method not allowed\n');
    return;
  }
  const path = req.path.replace(/\/+$/, '') || '/';
  try {
    if (path === '/') return await page(req, res, false);
    if (path === `/${API_PATH}`) return await page(req, res, true);
    if (path === `/${EVIDENCE_PATH}`) return await evidence(req, res);
    res.status(404).type('text/plain').send('not found\n');
  } catch (error) {
    // As the event handlers map failures: transient -> 503 (worth a retry), the rest -> 500.
    const { status, mapped } = httpStatusOf(error);
    log[status === 503 ? 'warn' : 'error']({ path, status, reason: mapped.message }, 'fleetStatus: failed');
    // A download already under way is cut off rather than ended, so it cannot pass for complete.
    if (res.headersSent) res.destroy(error instanceof Error ? error : undefined);
    else res.status(status).type('text/plain').send('the fleet status could not be read; try again\n');
  }
});
