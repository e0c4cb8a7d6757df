/** Paths and small utilities shared by the tests. */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SHARED = path.resolve(ROOT, "..", "shared");
export const SD15 = path.join(SHARED, "reference", "sd15-onnx-layout");
export const TINY = path.join(ROOT, "test", "fixtures", "tiny-editor");
export const TINY_NO_REWARDS = path.join(ROOT, "test", "fixtures", "tiny-editor-norewards");
/** The repository's own copies of ../shared/photos (CC0 and public domain; ATTRIBUTION.md beside them). */
export const PHOTOS = path.join(ROOT, "src", "benchmark", "sample", "images");
export const CLI = path.join(ROOT, "bin", "reward-edit.js");

export function tempDir(prefix = "reward-edit-test-"): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A writable copy of a model folder, for tests that break it. */
export function copyFolder(src: string): string {
  const dir = path.join(tempDir(), path.basename(src));
  cpSync(src, dir, { recursive: true });
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
