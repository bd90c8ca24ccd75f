// The Pub/Sub message inside a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent (the push form
// Pub/Sub and its emulator deliver, which the Functions Framework turns into that CloudEvent). Pure.
import { z } from 'zod';

export const PUBSUB_MESSAGE_EVENT_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

// Pub/Sub sends data base64-encoded (standard alphabet; the URL-safe one is decoded alike). Anything else
// would decode to bytes nobody sent.
const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

const pubsubEvent = z.object({
  message: z.object({
    data: z.string().regex(BASE64, { message: 'not base64' }).optional(),
    attributes: z.record(z.string(), z.string()).nullish(),
    messageId: z.string().optional(),
    publishTime: z.string().optional(),
  }),
  subscription: z.string().optional(),
});

export interface PubSubMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string | null;
  publishTime: Date | null;
}

/** The message inside a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, or a reason it is not one. */
export function messageOf(eventData: unknown): { ok: true; message: PubSubMessage } | { ok: false; reason: string } {
  const parsed = pubsubEvent.safeParse(eventData);
  if (!parsed.success)
    return {
      ok: false,
      reason:
        'not a Pub/Sub message: ' +
        parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; '),
    };
  const m = parsed.data.message;
  return {
    ok: true,
    message: {
      data: Buffer.from(m.data ?? '', 'base64'),
      attributes: m.attributes ?? {},
      messageId: m.messageId ?? null,
      publishTime: m.publishTime ? new Date(m.publishTime) : null,
    },
  };
}
