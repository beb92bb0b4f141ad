import { request } from 'undici';

/** The `data:` events of a server-sent event stream read so far. */
// biome-ignore lint/suspicious/noExplicitAny: loosely typed JSON read back from the wire
export function sseEvents(text: string): any[] {
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)));
}

/**
 * Opens a streaming workflow run on the mock at `url` that hangs (`__fault: hang`): it holds its
 * slot until stopped or abandoned, whatever the machine's speed (a test that needs requests in
 * flight at once uses these, not a latency that load can outlast). Resolves once the first event
 * gave the run's task id; `rest` resolves with every event once the stream ends.
 */
export async function hangingRun(
  url: string,
  authorization: string,
): Promise<{ taskId: string; rest: Promise<Record<string, unknown>[]> }> {
  const res = await request(`${url}/v1/workflows/run`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: { __fault: 'hang' }, response_mode: 'streaming', user: 'u' }),
  });
  if (res.statusCode !== 200) throw new Error(`the hanging run got HTTP ${res.statusCode}`);
  const chunks = res.body[Symbol.asyncIterator]();
  let text = '';
  for (;;) {
    const next = await chunks.next();
    if (next.done === true) throw new Error(`the hanging stream ended early: ${text}`);
    text += next.value.toString();
    const started = sseEvents(text).find((e) => e.event === 'workflow_started');
    if (started === undefined) continue;
    const rest = (async () => {
      for (let c = await chunks.next(); c.done !== true; c = await chunks.next())
        text += c.value.toString();
      return sseEvents(text);
    })();
    return { taskId: String(started.task_id), rest };
  }
}
