/**
 * Vitest global set-up: everything the suite needs that is not in node_modules, so that
 * `npm test` and a bare `npx vitest run` both work on a fresh machine.
 *
 * - `dist/` is rebuilt when any source is newer than the last build: the CLI, crash and
 *   graceful-stop tests spawn the built bin as a user would, and a stale `dist/` would test
 *   yesterday's code.
 * - The system programs some tests drive for real (Debian's `chromium` for the HTML report and
 *   the dashboard, `redis-server` for the distributed runs) are installed through apt when this
 *   process may (root, apt-get present, as on CI). Otherwise the run stops here with the
 *   package names and the command that installs them: a suite that skips what it cannot run
 *   would be green and untested.
 */
import { ensureBuilt } from './build.js';
import { ensureSystemPackages } from './system.js';

export default function setup(): void {
  ensureSystemPackages();
  ensureBuilt();
}
