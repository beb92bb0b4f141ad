/**
 * A preload (`node --import ./bench/module-count.mjs ...`) that counts the modules a process
 * loads: ES modules through a load hook (it runs off the main thread, so it appends each URL to
 * the file named by STRIDE_MODULE_LOG), CommonJS ones from the require cache at exit (undici,
 * better-sqlite3, commander's CJS body). bench/startup.mjs reads the file.
 */

import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const log = process.env.STRIDE_MODULE_LOG;
if (log !== undefined && log !== '') {
  const hooks = `
    import { appendFileSync } from 'node:fs';
    export async function load(url, context, next) {
      if (!url.startsWith('node:')) appendFileSync(${JSON.stringify(log)}, 'esm ' + url + '\\n');
      return next(url, context);
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const cjs = Object.keys(require.cache).map((p) => `cjs file://${p}`);
    appendFileSync(log, cjs.length === 0 ? '' : `${cjs.join('\n')}\n`);
  });
}
