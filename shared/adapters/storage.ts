// Cloud Storage: the configuration bucket. Objects are content-addressed per version and never overwritten.
import { createHash } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { clients, type Awaitable } from '../clients.js';
import { isConditionNotMet, withRetry } from '../errors.js';
import { countApiCall } from '../metrics.js';

export interface StoredObject {
  generation: string;
  uploaded: boolean;
}

const md5 = (text: string) => createHash('md5').update(text).digest('base64');

/**
 * Makes sure `name` holds `content` and returns its generation. Uploads only when the object does not
 * exist (ifGenerationMatch=0), so publishing twice uploads nothing; an existing object with other
 * content is an error (a version's objects are immutable). A client passed in should have its own retries
 * off (`retryOptions: { autoRetry: false }`, as clients.storage() builds it): withRetry retries here.
 */
export async function ensureObject(
  bucket: string,
  name: string,
  content: string,
  storage: Awaitable<Storage> = clients.storage(),
): Promise<StoredObject> {
  const file = (await storage).bucket(bucket).file(name);
  try {
    await withRetry(() => {
      countApiCall('storage.objects.insert');
      return file.save(content, {
        resumable: false,
        validation: false,
        contentType: 'text/plain; charset=utf-8',
        preconditionOpts: { ifGenerationMatch: 0 },
      });
    });
    return { generation: String(file.metadata.generation), uploaded: true };
  } catch (error) {
    if (!isConditionNotMet(error)) throw error;
  }
  const [metadata] = await withRetry(() => {
    countApiCall('storage.objects.get');
    return file.getMetadata();
  });
  if (metadata.md5Hash !== md5(content))
    throw new Error(`gs://${bucket}/${name} exists with different content; refusing to overwrite a published version`);
  return { generation: String(metadata.generation), uploaded: false };
}
