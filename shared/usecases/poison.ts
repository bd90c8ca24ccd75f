// Poison messages: logged with the reason, acknowledged, and republished to the dead-letter topic when one is set.
import { config } from '../config.js';
import { log } from '../log.js';
import { publishJson, type PubSubMessage } from '../adapters/pubsub.js';

export async function rejectPoison(
  functionName: string,
  ref: Record<string, unknown>,
  reason: string,
  message: PubSubMessage | null,
): Promise<void> {
  log.warn({ ...ref, reason }, `${functionName}: rejected malformed message`);
  const topic = config().DEAD_LETTER_TOPIC;
  if (!topic) return;
  try {
    await publishJson(
      topic,
      {
        function: functionName,
        reason,
        data: message?.data.toString('base64') ?? null,
        attributes: message?.attributes ?? {},
        messageId: message?.messageId ?? null,
      },
      { function: functionName },
    );
  } catch (error) {
    // Never let the dead-letter copy turn a poison message into a retry loop.
    log.error(
      { ...ref, reason: error instanceof Error ? error.message : String(error) },
      `${functionName}: dead-letter publish failed`,
    );
  }
}
