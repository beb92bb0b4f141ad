/**
 * A queue seen from outside (the dashboard's workers view, a script): the workers connected to
 * it and its jobs waiting and active, through BullMQ's own reads (`Queue.getWorkers`, which lists
 * the Redis clients a BullMQ worker names after its queue, and `Queue.getJobCounts`). Nothing
 * here parses Redis keys.
 */

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_QUEUE } from './protocol.js';
import { connectionOptions } from './redis.js';

/** One worker connected to the queue (a `stride worker` or `startWorker`). */
export interface QueueWorker {
  /** Redis's id of the worker's connection. */
  readonly id: string;
  /** Its address as Redis sees it (`host:port`). */
  readonly addr: string;
  /** Seconds since it connected. */
  readonly ageSeconds: number;
  /** Seconds since its last command (a worker waiting for a job blocks for up to a second). */
  readonly idleSeconds: number;
}

/** What `QueueWatch.status()` answers: plain data. */
export type QueueStatus =
  | {
      readonly queue: string;
      readonly reachable: true;
      readonly workers: readonly QueueWorker[];
      readonly jobs: {
        readonly waiting: number;
        readonly active: number;
        readonly delayed: number;
        readonly failed: number;
      };
      /** Epoch ms. */
      readonly at: number;
    }
  | {
      readonly queue: string;
      readonly reachable: false;
      /** Why not (Redis's URL is never in it: it may hold a password). */
      readonly message: string;
      readonly at: number;
    };

/** Options of `QueueWatch`. */
export interface QueueWatchOptions {
  /** `redis://[user:password@]host[:port][/db]` */
  readonly redis: string;
  /** @default 'stride' */
  readonly queue?: string;
  /** How long one status read may take before it answers `reachable: false`. @default 2000 */
  readonly timeoutMs?: number;
}

/**
 * Reads a queue's workers and job counts on demand.
 *
 * @example
 * ```ts
 * const watch = new QueueWatch({ redis: 'redis://127.0.0.1:6379' });
 * const s = await watch.status();
 * if (s.reachable) console.log(`${s.workers.length} workers, ${s.jobs.waiting} jobs waiting`);
 * await watch.close();
 * ```
 */
export class QueueWatch {
  readonly queueName: string;
  private readonly connection: Redis;
  private readonly queue: Queue;
  private readonly timeoutMs: number;

  constructor(options: QueueWatchOptions) {
    this.queueName = options.queue ?? DEFAULT_QUEUE;
    this.timeoutMs = options.timeoutMs ?? 2000;
    // A status read must not wait through an outage as a run's commands do: it fails fast and
    // says so; the next read tries again.
    this.connection = new Redis({
      ...connectionOptions(options.redis),
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    this.connection.on('error', () => undefined); // reported by status(), not thrown
    this.queue = new Queue(this.queueName, { connection: this.connection });
    this.queue.on('error', () => undefined);
  }

  /** The queue's workers and job counts now, or why they could not be read. */
  async status(): Promise<QueueStatus> {
    const at = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.connection.status === 'wait' || this.connection.status === 'end') {
        await this.connection.connect().catch(() => undefined);
      }
      const read = Promise.all([
        this.queue.getWorkers(),
        this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
      ]);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from Redis within ${this.timeoutMs} ms`)),
          this.timeoutMs,
        );
      });
      const [workers, counts] = await Promise.race([read, timeout]);
      return {
        queue: this.queueName,
        reachable: true,
        workers: workers.map((w) => ({
          id: String(w.id ?? ''),
          addr: String(w.addr ?? ''),
          ageSeconds: Number(w.age ?? 0),
          idleSeconds: Number(w.idle ?? 0),
        })),
        jobs: {
          // BullMQ keeps jobs with a priority in a list of their own: both are waiting.
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
        },
        at,
      };
    } catch (err) {
      return {
        queue: this.queueName,
        reachable: false,
        message: `Redis unreachable: ${err instanceof Error ? err.message : String(err)}`,
        at,
      };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.connection.disconnect();
  }
}
