/**
 * The built-in targets for a plan's `target:` section: maps the manifest's normalised config to
 * the targets layer's, and a TestCase to the input each target reads. Loaded on demand (dynamic
 * import) so `import 'stride'` does not pay for undici until a plan needs HTTP.
 */

import { type AttemptContext, type TaskView, ValidationError } from '../core/index.js';
import type { TargetConfig, TestCase } from '../plans/index.js';
import type { ClosableTarget } from '../targets/index.js';

/** What a case gives the OpenAI target: its messages, or its query/prompt as the user message. */
function openAiInput(testCase: TestCase, system: string | undefined): unknown {
  const inputs = testCase.inputs;
  if (Array.isArray(inputs.messages)) return inputs;
  const prompt = inputs.query ?? inputs.prompt;
  if (typeof prompt !== 'string') {
    // Permanent (never retried): the case itself cannot be sent.
    throw new ValidationError(
      `case ${testCase.id}: inputs.query must be a string (the user message), or give inputs.messages`,
    );
  }
  return system === undefined ? { prompt } : { prompt, system };
}

/**
 * Builds the target a plan names, with a pool sized to the run's concurrency. The case's
 * `inputs` are what Dify and HTTP targets receive (a Dify chat app takes `inputs.query` as the
 * user message); OpenAI gets `inputs.query` (or `inputs.prompt`, or `inputs.messages`).
 */
export async function builtInTarget(
  config: Exclude<TargetConfig, { type: 'function' }>,
  concurrency: number,
): Promise<ClosableTarget<TestCase, unknown>> {
  const { createTarget } = await import('../targets/index.js');
  let inner: ClosableTarget;
  let toInput: (testCase: TestCase) => unknown = (testCase) => testCase.inputs;
  switch (config.type) {
    case 'dify':
      inner = createTarget(
        {
          type: 'dify',
          baseUrl: config.baseUrl,
          apiKey: config.apiKey,
          app: config.app,
          responseMode: config.responseMode,
          user: config.user,
          ...(config.headers === undefined ? {} : { headers: config.headers }),
        },
        { concurrency },
      );
      break;
    case 'openai': {
      const body: Record<string, unknown> = {};
      if (config.temperature !== undefined) body.temperature = config.temperature;
      if (config.maxTokens !== undefined) body.max_tokens = config.maxTokens;
      inner = createTarget(
        {
          type: 'openai',
          baseUrl: config.baseUrl,
          model: config.model,
          ...(config.apiKey === undefined ? {} : { apiKey: config.apiKey }),
          ...(config.responseMode === undefined ? {} : { responseMode: config.responseMode }),
          ...(config.pricePerMillion === undefined
            ? {}
            : { pricePerMillion: config.pricePerMillion }),
          ...(config.headers === undefined ? {} : { headers: config.headers }),
          ...(Object.keys(body).length === 0 ? {} : { body }),
        },
        { concurrency },
      );
      toInput = (testCase) => openAiInput(testCase, config.system);
      break;
    }
    case 'http':
      inner = createTarget(
        {
          type: 'http',
          url: config.url,
          method: config.method,
          ...(config.headers === undefined ? {} : { headers: config.headers }),
        },
        { concurrency },
      );
      break;
  }
  return {
    key: inner.key,
    execute: (task: TaskView<TestCase>, ctx: AttemptContext) =>
      inner.execute({ ...task, input: toInput(task.input) }, ctx),
    close: () => inner.close(),
  };
}
