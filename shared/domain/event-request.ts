// The CloudEvent an HTTP request to an event function carries, or why it carries none. Pure.
//
// Google delivers three shapes: a binary-mode CloudEvent (Eventarc, and Pub/Sub through Eventarc), a
// structured-mode one, and the Pub/Sub push envelope (a push subscription, the emulator). Anything else
// (a legacy background event, a form, text, an empty body, a CloudEvent missing an attribute, a type the
// function does not take, a Pub/Sub message that is not one) is refused before any use case runs. What
// the data says (an audit-log entry, a message's payload) stays the function's to judge.
import { messageOf, PUBSUB_MESSAGE_EVENT_TYPE } from './pubsub-message.js';

export interface EventRequest {
  method: string;
  /** The URL path: a push names its topic there (projects/P/topics/T), as the Functions Framework reads it. */
  path: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The body as the Functions Framework's parsers leave it: a JSON value, a string (text/plain), an
   * object (a form), a Buffer (any other type), or undefined (none).
   */
  body: unknown;
}

/** A CloudEvent (v1.0) as the Functions Framework hands it to a handler. */
export interface DeliveredEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time?: string;
  data?: unknown;
  traceparent?: string;
  [attribute: string]: unknown;
}

export type EventReading = { ok: true; event: DeliveredEvent } | { ok: false; status: 400 | 405; reason: string };

const REQUIRED = ['specversion', 'id', 'source', 'type'] as const;
const PUBSUB_MESSAGE_TYPE = 'type.googleapis.com/google.pubsub.v1.PubsubMessage';
const PUSH_TOPIC = /projects\/[^/?]+\/topics\/[^/?]+/;

const refuse = (reason: string, status: 400 | 405 = 400): EventReading => ({ ok: false, status, reason });
const quoted = (value: unknown) => JSON.stringify(String(value).slice(0, 100));
const header = (request: EventRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);

/** Binary mode: every ce-* header is an attribute, the body is the data (as the Functions Framework reads it). */
function binaryEvent(request: EventRequest): DeliveredEvent {
  const attributes: Record<string, unknown> = {};
  for (const name of Object.keys(request.headers))
    if (name.startsWith('ce-')) attributes[name.slice('ce-'.length)] = header(request, name);
  return { ...attributes, data: request.body } as DeliveredEvent;
}

/** The push envelope as the messagePublished CloudEvent the Functions Framework has always made of it. */
function pushEvent(request: EventRequest, body: Record<string, unknown>, now: Date): EventReading {
  const message = body.message;
  if (!isObject(message)) return refuse('a Pub/Sub push without a message object');
  if (typeof message.messageId !== 'string' || !message.messageId)
    return refuse('a Pub/Sub push whose message has no messageId');
  const time = typeof message.publishTime === 'string' && message.publishTime ? message.publishTime : now.toISOString();
  return {
    ok: true,
    event: {
      specversion: '1.0',
      id: message.messageId,
      time,
      datacontenttype: 'application/json',
      type: PUBSUB_MESSAGE_EVENT_TYPE,
      source: `//pubsub.googleapis.com/${PUSH_TOPIC.exec(request.path)?.[0] ?? ''}`,
      data: {
        message: {
          '@type': PUBSUB_MESSAGE_TYPE,
          data: message.data,
          attributes: message.attributes ?? {},
          publishTime: time,
          messageId: message.messageId,
        },
      },
    },
  };
}

/** The event the request carries, in whichever shape it came. */
function readShape(request: EventRequest, now: Date): EventReading {
  const present = REQUIRED.filter((a) => header(request, `ce-${a}`));
  if (present.length === REQUIRED.length) return { ok: true, event: binaryEvent(request) };
  if (present.length > 0) {
    const missing = REQUIRED.filter((a) => !present.includes(a)).map((a) => `ce-${a}`);
    return refuse(`a binary-mode CloudEvent without the ${missing.join(', ')} header`);
  }
  const body = request.body;
  if (Buffer.isBuffer(body))
    return refuse(
      `the body is ${quoted(header(request, 'content-type') ?? 'untyped')} and no CloudEvent headers came with it`,
    );
  if (Array.isArray(body)) return refuse('a JSON array is no event');
  if (!isObject(body)) return refuse('the body is not a JSON object');
  if ('context' in body || 'eventType' in body)
    return refuse('a legacy (background) event: these functions take CloudEvents and Pub/Sub pushes');
  if ('specversion' in body || /cloudevents\+json/.test(header(request, 'content-type') ?? '')) {
    const missing = REQUIRED.filter((a) => typeof body[a] !== 'string' || !body[a]);
    if (missing.length > 0) return refuse(`a structured-mode CloudEvent without ${missing.join(', ')}`);
    return { ok: true, event: body as DeliveredEvent };
  }
  if ('message' in body || 'subscription' in body) return pushEvent(request, body, now);
  return refuse('not a CloudEvent (binary or structured mode) nor a Pub/Sub push');
}

/**
 * Pure: the CloudEvent of one of the types `accepts` that the request carries, or a 4xx and the reason.
 * `now` stamps a push without a publish time, as the Functions Framework does.
 */
export function eventOfRequest(request: EventRequest, accepts: readonly string[], now: Date): EventReading {
  if (request.method !== 'POST') return refuse(`${quoted(request.method)} is not POST: events are POSTed`, 405);
  if (request.body === undefined) return refuse('the body is empty');
  const contentType = (header(request, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  // The framework decodes these into a string or a form object: neither is what Eventarc or Pub/Sub sends.
  if (contentType === 'application/x-www-form-urlencoded' || typeof request.body === 'string')
    return refuse(`the body is ${quoted(contentType || 'text')}: events arrive as JSON`);
  const read = readShape(request, now);
  if (!read.ok) return read;
  const { event } = read;
  if (event.specversion !== '1.0') return refuse(`CloudEvents specversion ${quoted(event.specversion)} is not 1.0`);
  if (!accepts.includes(event.type))
    return refuse(`an event of type ${quoted(event.type)}; this function takes ${accepts.join(' or ')}`);
  if (event.type === PUBSUB_MESSAGE_EVENT_TYPE) {
    const message = messageOf(event.data);
    if (!message.ok) return refuse(message.reason);
  }
  const traceparent = header(request, 'traceparent');
  return { ok: true, event: traceparent ? { ...event, traceparent } : event };
}
