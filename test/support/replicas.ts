/** A throwaway redis-server and `reward-edit serve` replicas on loopback, for the cross-replica tests. */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { CLI, TINY, tempDir } from "../helpers.js";

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const listening = (port: number) =>
  new Promise<boolean>((r) => net.connect(port, "127.0.0.1").on("connect", function (this: net.Socket) { this.destroy(); r(true); }).on("error", () => r(false)));

/** Debian's redis-server on a free port, no persistence; null when it cannot start (not installed). */
export async function startRedis(): Promise<{ url: string; proc: ChildProcess } | null> {
  const port = await freePort();
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tempDir("redis-")], { stdio: "ignore" });
  proc.on("error", () => {});
  for (let i = 0; i < 100; i++) {
    if (await listening(port)) return { url: `redis://127.0.0.1:${port}`, proc };
    if (proc.exitCode !== null) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGKILL");
  return null;
}

/** A `reward-edit serve` process on the tiny model; resolves with its URL once it listens. */
export function startReplica(redisUrl: string, name: string, env: NodeJS.ProcessEnv = {}): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [CLI, "serve"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", REDIS_URL: redisUrl, REWARD_EDIT_MODEL: TINY, REWARD_EDIT_WORKERS: "1", REWARD_EDIT_REPLICA: name, REWARD_EDIT_MAX_STEPS: "1000", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d;
      const m = /https?:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (m) resolve({ url: m[0], proc });
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`replica ${name} exited (${code}): ${out}`)));
  });
}

export async function stopAll(procs: Array<ChildProcess | undefined>, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  await Promise.all(procs.map((p) => (p && p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once("exit", r).kill(signal)) : undefined)));
}
