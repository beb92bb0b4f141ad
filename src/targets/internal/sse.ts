/**
 * Server-sent events over an HTTP body, with a standard parser (eventsource-parser). Data-less
 * events (Dify's `event: ping` keep-alives) and comments are never dispatched by the parser, so
 * callers only see events that carry data.
 */

import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { incompleteStream } from './http.js';

export type { EventSourceMessage };

/** The largest single event we buffer (a huge event means a broken or hostile stream). */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/**
 * Yields the events of an SSE body in order. Multi-byte characters split across chunks are
 * decoded correctly; an event larger than 16 MB ends the stream with a retryable error.
 */
export async function* readSse(
  body: AsyncIterable<Uint8Array | string>,
  service: string,
): AsyncGenerator<EventSourceMessage, void, undefined> {
  const queue: EventSourceMessage[] = [];
  let overflow = false;
  const parser = createParser({
    onEvent: (message) => queue.push(message),
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') overflow = true;
      // Unknown fields and bad `retry:` lines are ignored, as EventSource does.
    },
    maxBufferSize: MAX_EVENT_CHARS,
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (overflow) throw incompleteStream(service, 'an event exceeded 16 MB');
    for (let i = 0; i < queue.length; i++) yield queue[i]!;
    queue.length = 0;
  }
  const rest = decoder.decode();
  if (rest !== '') parser.feed(rest);
  for (const message of queue) yield message;
}
