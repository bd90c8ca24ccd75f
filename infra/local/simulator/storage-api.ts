// Cloud Storage JSON API, the subset publishing and the agents use: multipart/media uploads with
// ifGenerationMatch, object metadata and downloads by generation, listing. Buckets are versioned.
import { createHash } from 'node:crypto';
import { HttpError, MediaResponse, route, type Request, type Route } from './http.js';
import type { World } from './world.js';

export interface SimObject {
  bucket: string;
  name: string;
  generation: string;
  data: Buffer;
  contentType: string;
  md5Hash: string;
  updated: string;
}

const storageError = (code: number, reason: string, message: string) =>
  new HttpError(code, message, { error: { code, message, errors: [{ domain: 'global', reason, message }] } });

export function objectJson(o: SimObject) {
  return {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    bucket: o.bucket,
    name: o.name,
    generation: o.generation,
    metageneration: '1',
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    contentType: o.contentType,
    updated: o.updated,
    timeCreated: o.updated,
    storageClass: 'STANDARD',
  };
}

/** The parts of a multipart/related upload: JSON metadata, then the media. */
function parseMultipart(req: Request): { metadata: Record<string, unknown>; data: Buffer; contentType: string } {
  const boundary = /boundary=([^;]+)/.exec(req.contentType)?.[1]?.replace(/"/g, '');
  if (!boundary) throw storageError(400, 'invalid', 'multipart upload without boundary');
  const text = req.raw.toString('latin1');
  const parts = text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((p) => {
      const split = p.indexOf('\r\n\r\n') >= 0 ? p.indexOf('\r\n\r\n') : p.indexOf('\n\n');
      const sep = p.indexOf('\r\n\r\n') >= 0 ? 4 : 2;
      const headers = p.slice(0, split);
      const body = p.slice(split + sep).replace(/\r?\n$/, '');
      return { type: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] ?? 'application/octet-stream', body };
    });
  if (parts.length !== 2) throw storageError(400, 'invalid', 'multipart upload needs metadata and media parts');
  return {
    metadata: JSON.parse(parts[0]!.body || '{}'),
    data: Buffer.from(parts[1]!.body, 'latin1'),
    contentType: parts[1]!.type,
  };
}

export function storageRoutes(world: World): Route[] {
  const latest = (bucket: string, name: string) => world.objects.get(`${bucket}/${name}`)?.at(-1);
  const find = (bucket: string, name: string, generation: string | null) => {
    const versions = world.objects.get(`${bucket}/${name}`) ?? [];
    const o = generation ? versions.find((v) => v.generation === generation) : versions.at(-1);
    if (!o)
      throw storageError(404, 'notFound', `No such object: ${bucket}/${name}${generation ? `#${generation}` : ''}`);
    return o;
  };
  return [
    route('POST', /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/, 'storage.objects.insert', (req) => {
      const [bucket] = req.params;
      const type = req.query.get('uploadType');
      const upload =
        type === 'multipart'
          ? parseMultipart(req)
          : { metadata: {}, data: req.raw, contentType: req.contentType || 'application/octet-stream' };
      const name = String(req.query.get('name') ?? upload.metadata.name ?? '');
      if (!name) throw storageError(400, 'required', 'object name is required');
      const current = latest(bucket!, name);
      const match = req.query.get('ifGenerationMatch');
      if (match !== null && (current?.generation ?? '0') !== match)
        throw storageError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
      const o: SimObject = {
        bucket: bucket!,
        name,
        generation: String(Date.now() * 1000 + Number(world.newId().slice(-3))),
        data: upload.data,
        contentType: String(upload.metadata.contentType ?? upload.contentType),
        md5Hash: createHash('md5').update(upload.data).digest('base64'),
        updated: new Date().toISOString(),
      };
      world.objects.set(`${bucket}/${name}`, [...(world.objects.get(`${bucket}/${name}`) ?? []), o]);
      return objectJson(o);
    }),
    route('GET', /^\/storage\/v1\/b\/([^/]+)\/o$/, 'storage.objects.list', ({ params: [bucket], query }) => {
      const prefix = query.get('prefix') ?? '';
      const items = [...world.objects.values()]
        .map((v) => v.at(-1)!)
        .filter((o) => o.bucket === bucket && o.name.startsWith(prefix))
        .sort((a, b) => a.name.localeCompare(b.name));
      return { kind: 'storage#objects', items: items.map(objectJson) };
    }),
    route(
      'GET',
      /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/,
      'storage.objects.get',
      ({ params: [bucket, name], query }) => {
        const o = find(bucket!, name!, query.get('generation'));
        return query.get('alt') === 'media' ? new MediaResponse(o.data, o.contentType) : objectJson(o);
      },
    ),
  ];
}
