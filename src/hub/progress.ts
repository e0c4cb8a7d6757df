/**
 * What a person sees while a pull runs: on a terminal one cli-progress bar with bytes, rate and
 * ETA (as `batch` and `bench` show theirs); elsewhere (CI logs, a server's stderr) a line per file.
 */
import { SingleBar } from "cli-progress";

export interface PullProgress {
  start(totalBytes: number, files: number): void;
  bytes(n: number): void;
  fileDone(file: string, bytes: number, ms: number): void;
  stop(): void;
}

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

export function progressFor(stream: NodeJS.WriteStream = process.stderr, label = "pull"): PullProgress {
  if (stream.isTTY) {
    const bar = new SingleBar({
      format: `${label} [{bar}] {done} / {size} | {rate}/s | ETA {eta_formatted}`,
      stream,
      etaBuffer: 50,
      hideCursor: true,
    });
    let done = 0;
    let t0 = Date.now();
    let total = 0;
    const payload = () => ({ done: human(done), size: human(total), rate: human(done / Math.max(0.001, (Date.now() - t0) / 1000)) });
    return {
      start(totalBytes) {
        total = totalBytes;
        t0 = Date.now();
        bar.start(totalBytes, 0, payload());
      },
      bytes(n) {
        done += n;
        bar.update(done, payload());
      },
      fileDone() {},
      stop() {
        bar.stop();
      },
    };
  }
  return {
    start(totalBytes, files) {
      if (files > 0) stream.write(`${label}: ${files} file(s), ${human(totalBytes)} to download\n`);
    },
    bytes() {},
    fileDone(file, bytes, ms) {
      stream.write(`${label}: ${file} (${human(bytes)}) in ${(ms / 1000).toFixed(1)} s\n`);
    },
    stop() {},
  };
}

export const silentProgress: PullProgress = { start() {}, bytes() {}, fileDone() {}, stop() {} };
