/** Redis connection options from a URL, as BullMQ and ioredis take them. */

import { InvalidOptionError } from '../core/index.js';

/**
 * `redis://[user:password@]host[:port][/db]` to ioredis options. `maxRetriesPerRequest: null`
 * (BullMQ needs it for workers) makes commands wait through an outage instead of failing: a run
 * pauses until Redis is back.
 */
export function connectionOptions(url: string): {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  maxRetriesPerRequest: null;
} {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidOptionError('redis', url, 'a URL such as redis://127.0.0.1:6379');
  }
  if (u.protocol !== 'redis:') throw new InvalidOptionError('redis', url, 'a redis:// URL');
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new InvalidOptionError(
      'redis',
      url,
      'a database number after the port (redis://host:6379/0)',
    );
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    maxRetriesPerRequest: null,
  };
}
