/** REDIS_URL (and REDIS_PASSWORD) to ioredis options, refusing what is not a Redis URL in one line. */
import type { RedisOptions } from "ioredis";

export class RedisConfigError extends Error {}

/** Connection options from REDIS_URL, refusing what is not a Redis URL in one clear line. */
export function redisOptions(url: string, password?: string): { host: string; port: number; options: RedisOptions } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RedisConfigError(`REDIS_URL=${JSON.stringify(url)} is not a URL (expected redis://[user:password@]host:port[/db])`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new RedisConfigError(`REDIS_URL must start with redis:// or rediss://, got ${u.protocol}//`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RedisConfigError(`REDIS_URL database must be a number, got ${JSON.stringify(u.pathname.slice(1))}`);
  const options: RedisOptions = {
    host: u.hostname || "localhost",
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : password,
    tls: u.protocol === "rediss:" ? {} : undefined,
    // BullMQ's blocking commands must wait out a Redis restart rather than fail
    maxRetriesPerRequest: null,
    retryStrategy: (n) => Math.min(200 * n, 2000),
  };
  return { host: options.host!, port: options.port!, options };
}
