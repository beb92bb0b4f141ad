/**
 * A Dify workflow run as the mock answers it: the run's data (blocking body and
 * `workflow_finished`) and the stream of a three-node graph, start -> LLM -> end. Every node the
 * stream names (a predecessor, `total_steps`) is one it sends: `node_started` with its index and
 * predecessor, `node_finished`, and only the model-calling node carries a price.
 */

import type { DifyApp } from './dify.js';
import type { Control, Exchange, MockCore } from './server.js';

export const WORKFLOW_ID = '19eff89f-ec03-4f75-b0fc-897e7effea02';

/** One generation request the mock is answering. */
export interface Run {
  app: DifyApp;
  /** The app's mode, echoed by chat and completion answers (`advanced-chat`, ...). */
  mode: string;
  taskId: string;
  runId: string;
  messageId: string;
  conversationId: string | undefined;
  out: string;
  tokens: { prompt: number; completion: number; total: number };
  ctl: Control;
  inputs: Record<string, unknown>;
  user: string;
  created: number;
}

/** Dify's prices for the mock's model, as the strings Dify sends. */
export function price(tokens: { prompt: number; completion: number; total: number }) {
  const prompt = tokens.prompt * 0.000001;
  const completion = tokens.completion * 0.000002;
  return {
    prompt: prompt.toFixed(7),
    completion: completion.toFixed(7),
    total: (prompt + completion).toFixed(7),
  };
}

/** The graph: each node's id, type and title; its predecessor is the one before it. */
const NODES = [
  { id: '1710', type: 'start', title: 'Start' },
  { id: '1711', type: 'llm', title: 'LLM' },
  { id: '1712', type: 'end', title: 'End' },
] as const;
const LLM = 1;

/** Nodes a run executed: all three, or two when it failed at the LLM node. */
export function stepsOf(failed: boolean): number {
  return failed ? LLM + 1 : NODES.length;
}

/** The run's data: the blocking body's `data` and `workflow_finished.data`. */
export function workflowData(
  run: Run,
  status: string,
  error: string | null,
  elapsedS: number,
  steps: number,
) {
  const finished = Math.floor(Date.now() / 1000);
  return {
    id: run.runId,
    workflow_id: WORKFLOW_ID,
    status,
    outputs: status === 'succeeded' ? { text: run.out } : status === 'stopped' ? {} : null,
    error,
    elapsed_time: elapsedS,
    total_tokens: status === 'stopped' ? 0 : run.tokens.total,
    total_steps: steps,
    created_at: run.created,
    finished_at: finished,
  };
}

/** Streams the run: started, the start node, the LLM node with its text chunks, the end node. */
export function workflowStream(
  core: MockCore,
  ex: Exchange,
  run: Run,
  chunks: string[],
  half: number,
  delay: number,
  elapsed: () => number,
): void {
  const fault = run.ctl.fault;
  const base = { task_id: run.taskId, workflow_run_id: run.runId };
  let steps = 0;
  const node = (i: number) => {
    const n = NODES[i]!;
    return {
      id: `${run.runId}-${n.type}`,
      node_id: n.id,
      node_type: n.type,
      title: n.title,
      index: i + 1,
      predecessor_node_id: i === 0 ? null : NODES[i - 1]!.id,
      inputs: {},
      created_at: run.created,
    };
  };
  const started = (i: number): void => {
    steps = i + 1;
    ex.event({
      event: 'node_started',
      ...base,
      data: { ...node(i), extras: {}, iteration_id: null, loop_id: null },
    });
  };
  const finishedNode = (
    i: number,
    outputs: Record<string, unknown> | null,
    error: string | null,
    metadata: Record<string, unknown> | null,
  ): void => {
    ex.event({
      event: 'node_finished',
      ...base,
      data: {
        ...node(i),
        process_data: {},
        outputs,
        status: error === null ? 'succeeded' : 'failed',
        error,
        elapsed_time: elapsed(),
        execution_metadata: metadata,
        finished_at: Math.floor(Date.now() / 1000),
        files: [],
      },
    });
  };
  const finishedRun = (status: string, error: string | null): void => {
    ex.event({
      event: 'workflow_finished',
      ...base,
      data: {
        ...workflowData(run, status, error, elapsed(), steps),
        created_by: { id: run.user, user: run.user },
        exceptions_count: 0,
        files: [],
      },
    });
  };
  ex.event({
    event: 'workflow_started',
    ...base,
    data: {
      id: run.runId,
      workflow_id: WORKFLOW_ID,
      inputs: { ...run.inputs, 'sys.user_id': run.user },
      created_at: run.created,
      reason: 'initial',
    },
  });
  started(0);
  finishedNode(0, { ...run.inputs, 'sys.user_id': run.user }, null, null);
  started(LLM);
  ex.onStop = () => {
    finishedRun('stopped', 'Stopped by user.');
    ex.endStream();
  };
  if (fault === 'hang') return;
  const finish = (): void => {
    const failed = fault === 'failed';
    finishedNode(
      LLM,
      failed ? null : { text: run.out },
      failed ? '[mock] injected failure' : null,
      {
        total_tokens: run.tokens.total,
        total_price: price(run.tokens).total,
        currency: 'USD',
      },
    );
    core.charge(run.tokens.total);
    if (!failed) {
      started(LLM + 1);
      finishedNode(LLM + 1, { text: run.out }, null, null);
    }
    finishedRun(
      failed ? 'failed' : 'succeeded',
      failed ? 'Node LLM run failed: [mock] injected failure' : null,
    );
    ex.endStream();
  };
  const send = (i: number): void => {
    if (fault === 'break' && i === half) {
      ex.destroy();
      return;
    }
    if (i >= chunks.length) {
      finish();
      return;
    }
    ex.event({
      event: 'text_chunk',
      ...base,
      data: { text: chunks[i], from_variable_selector: [NODES[LLM].id, 'text'] },
    });
    ex.later(delay, () => send(i + 1));
  };
  ex.later(run.ctl.latencyMs, () => {
    if (fault === 'stream-error' || fault === 'stream-error-400') {
      const is400 = fault === 'stream-error-400';
      ex.event({
        event: 'error',
        workflow_run_id: run.runId,
        code: is400 ? 'invalid_param' : 'internal_server_error',
        status: is400 ? 400 : 500,
        message: is400
          ? 'Run failed: [mock] injected failure'
          : 'Internal Server Error, please contact support.',
      });
      ex.endStream();
      return;
    }
    send(0);
  });
}
