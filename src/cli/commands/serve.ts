/**
 * `stride serve`: the live dashboard over the journal (docs/dashboard.md). The dashboard (hono,
 * its Node adapter) is loaded only when this command runs.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidOptionError } from '../../core/errors.js';
import { DEFAULT_DB_PATH } from '../../store/db-path.js';
import { intArg } from '../flags.js';
import { type CommandContext, example } from '../options.js';

interface ServeFlags {
  db: string;
  port: number;
  host: string;
  token?: string;
  readOnly?: boolean;
  open?: boolean;
  redis?: string;
  queue?: string;
}

/** The default port: a bookmark keeps working; `--port 0` picks a free one. */
export const DEFAULT_PORT = 4600;

/** Adds `stride serve` to the program. Its action resolves when the server was stopped (SIGINT, SIGTERM). */
export function registerServe(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('serve')
      .description(
        'a live dashboard over the journal: watch, pause, resume, cancel and compare runs',
      )
      .option('--db <path>', 'the run journal (SQLite)', DEFAULT_DB_PATH)
      .option('--port <n>', 'the port; 0 picks a free one', intArg(0), DEFAULT_PORT)
      .option(
        '--host <host>',
        'the address to listen on (not loopback: a token is required)',
        '127.0.0.1',
      )
      .option(
        '--token <token>',
        'the token requests must carry (default: STRIDE_DASHBOARD_TOKEN, or a new one off loopback)',
      )
      .option('--read-only', 'refuse pause, resume and cancel')
      .option(
        '--redis <url>',
        'show the distributed queue: workers alive, jobs waiting and active (default: STRIDE_REDIS_URL)',
      )
      .option('--queue <name>', 'the queue of --redis (default: stride)')
      .option('--open', 'open the dashboard in the browser'),
    'stride serve',
    'stride serve --port 0 --read-only',
    'stride serve --host 0.0.0.0 --token "$STRIDE_DASHBOARD_TOKEN"',
    'stride serve --redis redis://127.0.0.1:6379',
  ).action(async (flags: ServeFlags) => {
    if (flags.port > 65_535)
      throw new InvalidOptionError('--port', flags.port, 'a port from 0 to 65535');
    if (!existsSync(flags.db)) {
      throw new InvalidOptionError(
        '--db',
        flags.db,
        'a run journal (start a run first, or pass --db)',
      );
    }
    const token = flags.token ?? (io.env.STRIDE_DASHBOARD_TOKEN || undefined);
    if (token !== undefined && token.length < 16) {
      throw new InvalidOptionError('--token', '[redacted]', 'at least 16 characters');
    }
    const redis = flags.redis ?? (io.env.STRIDE_REDIS_URL || undefined);
    if (flags.queue !== undefined && redis === undefined) {
      throw new InvalidOptionError('--queue', flags.queue, 'given with --redis URL');
    }
    // Loaded only here: the other commands never load hono or the dashboard (nor BullMQ, unless
    // --redis asks for the queue).
    const [{ startDashboard }, { SqliteStore }] = await Promise.all([
      import('../../dashboard/server.js'),
      import('../../store/sqlite.js'),
    ]);
    const queue =
      redis === undefined
        ? undefined
        : new (await import('../../distributed/status.js')).QueueWatch({
            redis,
            ...(flags.queue === undefined ? {} : { queue: flags.queue }),
          });
    const store = new SqliteStore({ path: flags.db });
    let dashboard: Awaited<ReturnType<typeof startDashboard>>;
    try {
      dashboard = await startDashboard({
        store,
        host: flags.host,
        port: flags.port,
        ...(token === undefined ? {} : { token }),
        ...(flags.readOnly === true ? { readOnly: true } : {}),
        ...(queue === undefined ? {} : { queue }),
      });
    } catch (err) {
      await queue?.close();
      await store.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
        throw new InvalidOptionError(
          code === 'EADDRNOTAVAIL' ? '--host' : '--port',
          code === 'EADDRNOTAVAIL' ? flags.host : flags.port,
          `an address this machine can listen on (${code}; --port 0 picks a free port)`,
        );
      }
      throw err;
    }
    // The first line is the URL, alone: scripts and tests read it. One write, so a reader
    // that has the URL has the lines after it too.
    const lines = [dashboard.url];
    if (dashboard.generatedToken) {
      lines.push(
        `token: ${dashboard.token} (open ${dashboard.url}?token=${dashboard.token} once, or send Authorization: Bearer TOKEN)`,
      );
    }
    if (flags.readOnly === true) lines.push('read-only: pause, resume and cancel are refused');
    io.stdout.write(`${lines.join('\n')}\n`);
    io.stderr.write('Ctrl-C stops the dashboard (runs go on).\n');
    if (flags.open === true) openBrowser(dashboard.url);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await dashboard.close();
    await queue?.close();
    await store.close();
  });
}

function openBrowser(url: string): void {
  const cmd =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no opener here: the URL is printed anyway
    child.unref();
  } catch {
    // As above.
  }
}
