/**
 * A lock between processes that may share one cache (replicas on a shared volume, a CLI beside a
 * server): the holder creates the lock file exclusively and touches it while it works; a waiter
 * polls until it is gone, and takes it over once it has not been touched for `staleMs` (a holder
 * that was killed). Containers often all run as pid 1, so nothing here relies on pids.
 */
import { closeSync, openSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface LockOptions {
  staleMs?: number;
  pollMs?: number;
  /** Called once when the lock is found held, so a person knows why nothing moves. */
  onWait?: () => void;
}

function tryCreate(file: string): boolean {
  try {
    closeSync(openSync(file, "wx"));
    writeFileSync(file, `${process.pid}@${new Date().toISOString()}\n`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

export async function withLock<T>(file: string, work: () => Promise<T>, o: LockOptions = {}): Promise<T> {
  const staleMs = o.staleMs ?? 30_000;
  mkdirSync(path.dirname(file), { recursive: true });
  let told = false;
  while (!tryCreate(file)) {
    let age: number;
    try {
      age = Date.now() - statSync(file).mtimeMs;
    } catch {
      continue; // released between our attempt and the look
    }
    if (age > staleMs) {
      rmSync(file, { force: true });
      continue;
    }
    if (!told) (o.onWait?.(), (told = true));
    await sleep(o.pollMs ?? 250);
  }
  const beat = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(file, now, now);
    } catch {
      /* taken over as stale: the work goes on; the rename into place is atomic either way */
    }
  }, Math.max(1000, staleMs / 4));
  beat.unref();
  try {
    return await work();
  } finally {
    clearInterval(beat);
    rmSync(file, { force: true });
  }
}
