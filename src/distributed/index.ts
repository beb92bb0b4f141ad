/**
 * Beyond one machine: attempts run on BullMQ workers, rate limits shared through Redis.
 * See docs/distributed.md.
 *
 * @example
 * ```ts
 * import { ExecutorService, loadPlan } from 'stride';
 * import { BullmqDispatcher, startWorker } from 'stride/distributed';
 *
 * const worker = await startWorker({ redis: 'redis://127.0.0.1:6379' }); // on any machine
 * const dispatcher = new BullmqDispatcher({ redis: 'redis://127.0.0.1:6379' });
 * const results = await new ExecutorService({ dispatcher }).executeTestPlan(await loadPlan('plan.yaml'));
 * await dispatcher.close();
 * await worker.close();
 * ```
 */

export { RedisBuckets, type SharedRate, staleAfterMs } from './bucket.js';
export { BullmqDispatcher, type BullmqDispatcherOptions } from './dispatcher.js';
export { DEFAULT_QUEUE, jobId, parseJobId } from './protocol.js';
export { connectionOptions } from './redis.js';
export {
  type QueueStatus,
  QueueWatch,
  type QueueWatchOptions,
  type QueueWorker,
} from './status.js';
export { type StrideWorker, startWorker, type WorkerOptions } from './worker.js';
