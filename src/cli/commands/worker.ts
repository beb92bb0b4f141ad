/** `stride worker`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import { EXIT } from '../exit.js';
import { durationArg, intArg } from '../flags.js';
import { type CommandContext, example } from '../options.js';
import { claimSignals } from '../signals.js';

export function registerWorker(root: Command, { io, setCode }: CommandContext): void {
  example(
    root
      .command('worker')
      .description(
        'execute attempts of runs started with --dispatch bullmq (any number, any machine)',
      )
      .requiredOption(
        '--redis <url>',
        'the Redis the coordinators use (default: STRIDE_REDIS_URL)',
        io.env.STRIDE_REDIS_URL,
      )
      .option('--queue <name>', 'the BullMQ queue', 'stride')
      .option('-j, --concurrency <n>', 'attempts this worker runs at once', intArg(1), 16)
      .option(
        '--lock-duration <duration>',
        "how long a lost worker's attempts wait before another worker takes them",
        durationArg,
        10_000,
      ),
    'stride worker --redis redis://127.0.0.1:6379 -j 32',
    'DIFY_API_KEY=app-... stride worker --redis redis://redis.internal:6379 --queue evals',
  ).action(
    async (flags: { redis: string; queue: string; concurrency: number; lockDuration: number }) => {
      const { startWorker } = await import('../../distributed/worker.js');
      // Ctrl-C while the worker connects is kept and stops it once it is up (signals.ts).
      const { gate: signals, interrupted } = claimSignals();
      if (interrupted !== undefined) {
        io.stderr.write(`stride worker: interrupted (${interrupted}) before it started\n`);
        setCode(EXIT.interrupted);
        return;
      }
      const worker = await startWorker({
        redis: flags.redis,
        queue: flags.queue,
        concurrency: flags.concurrency,
        lockDurationMs: flags.lockDuration,
        env: io.env,
        onRedisError: (m) => io.stderr.write(`stride worker: ${m}\n`),
      });
      io.stderr.write(
        `stride worker ${worker.name}: ready on queue ${flags.queue} (concurrency ${flags.concurrency}); Ctrl-C stops it\n`,
      );
      await new Promise<void>((resolve) => {
        signals.on('SIGINT', () => resolve());
        signals.on('SIGTERM', () => resolve());
      });
      signals.dispose();
      io.stderr.write(`stride worker ${worker.name}: stopping (in-flight attempts finish first)\n`);
      await worker.close();
      io.stderr.write(
        `stride worker ${worker.name}: stopped after ${worker.stats.executed} attempts in ${worker.stats.jobs} jobs (${worker.stats.returned} given back to the coordinator)\n`,
      );
    },
  );
}
