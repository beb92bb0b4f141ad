// The process the rollback crash test kills: an action plan journaled into SQLite, whose last step
// fails, so its auto rollback runs the compensations; one of them is slow. Plain JS on dist/.
//   node rollback-crash-child.mjs <db> <dir> <run|rollback>
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Executor, ToolRegistry } from '../../dist/actions/index.js';
import { NonRetryableError } from '../../dist/index.js';
import { SqliteStore } from '../../dist/store/index.js';

const [db, dir, mode] = process.argv.slice(2);
const log = (line) => appendFileSync(join(dir, 'log.txt'), `${line}\n`);
const tools = new ToolRegistry([
  {
    name: 'mark',
    async execute({ key, fail }) {
      if (fail) throw new NonRetryableError(`${key} refused`);
      writeFileSync(join(dir, key), key);
      log(`do ${key}`);
      return { key };
    },
    async compensate({ key, slowUndo }) {
      log(`undo-start ${key}`);
      // In the first process it never finishes: the test kills the process there (a fixed wait
      // could run out first on a loaded machine). The interval keeps the process alive.
      if (slowUndo && mode === 'run') await new Promise(() => setInterval(() => {}, 1_000));
      // Idempotent: it may run again after a crash.
      if (existsSync(join(dir, key))) rmSync(join(dir, key));
      log(`undo-done ${key}`);
    },
  },
]);
const plan = {
  id: 'provision-1',
  steps: [
    { id: 's1', tool: 'mark', arguments: { key: 's1' } },
    { id: 's2', tool: 'mark', arguments: { key: 's2', slowUndo: true }, dependencies: ['s1'] },
    { id: 's3', tool: 'mark', arguments: { key: 's3' }, dependencies: ['s2'] },
    { id: 's4', tool: 'mark', arguments: { key: 's4', fail: true }, dependencies: ['s3'] },
  ],
};
const store = new SqliteStore({ path: db });
const executor = new Executor({
  toolRegistry: tools,
  store,
  autoRollback: true,
  retryPolicy: { maxAttempts: 1 },
});
const result =
  mode === 'rollback'
    ? await executor.rollbackExecution(plan.id, { plan })
    : (await executor.executePlan(plan)).rollback;
await store.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
