/**
 * Inputs past their limits fail in one line (findings 10 and 11): long instructions and feedback
 * on the command line (onnxruntime-node crashed with SIGSEGV, exit 139, on a ~30 KB command line),
 * in batch manifests and in benchmark suites; `serve` on a port another server holds.
 */
import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { CLI, PHOTOS, ROOT, TINY, runCli, tempDir } from "../helpers.js";

const PHOTO = path.join(PHOTOS, "coffee.png");

/** The CLI run to its end: status and signal as the OS reports them. */
function cliSync(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.trim().split("\n") };
}

describe("length limits and start-up failures give one line, never a signal (findings 10, 11)", function () {
  this.timeout(60_000);
  const out = () => path.join(tempDir(), "out.png");

  for (const size of [30_000, 100_000]) {
    it(`edit --instruction of ${size / 1000} KB: exit 1 with one line, no signal`, () => {
      const r = cliSync(["edit", "--image", PHOTO, "--instruction", "make the mug red ".repeat(size / 17 + 1).slice(0, size), "--model", TINY, "--out", out()]);
      expect(r.signal).to.equal(null);
      expect(r.status, r.stderr).to.equal(1);
      expect(r.lines).to.deep.equal([`reward-edit: --instruction is ${size} characters; the limit is 500`]);
    });
  }

  it("--feedback of 30 KB, --instruction=TEXT, 501 characters and score's own cap: one line for each", () => {
    const feedback = cliSync(["edit", "--image", PHOTO, "--instruction", "make the mug red", "--feedback", "x".repeat(30_000), "--model", TINY, "--out", out()]);
    expect([feedback.status, feedback.signal]).to.deep.equal([1, null]);
    expect(feedback.lines).to.deep.equal(["reward-edit: --feedback is 30000 characters; the limit is 500"]);
    const joined = cliSync(["edit", "--image", PHOTO, `--instruction=${"a".repeat(30_000)}`, "--model", TINY, "--out", out()]);
    expect([joined.status, joined.signal]).to.deep.equal([1, null]);
    expect(joined.lines).to.deep.equal(["reward-edit: --instruction is 30000 characters; the limit is 500"]);
    const justOver = cliSync(["batch", "--input", PHOTOS, "--instruction", "a".repeat(501), "--out", tempDir()]);
    expect([justOver.status, justOver.signal]).to.deep.equal([1, null]);
    expect(justOver.lines).to.deep.equal(["reward-edit: --instruction is 501 characters; the limit is 500"]);
    // scoring keeps the longer cap /v1/scores has (its instruction goes to the judge, not to CLIP)
    const score = cliSync(["score", "--source", PHOTO, "--edited", PHOTO, "--instruction", "s".repeat(30_000)]);
    expect([score.status, score.signal]).to.deep.equal([1, null]);
    expect(score.lines).to.deep.equal(["reward-edit: --instruction is 30000 characters; the limit is 2000"]);
  });

  it("a 30 KB command line made of shorter arguments, or one huge path, is refused before onnxruntime-node loads", () => {
    const many = cliSync(["edit", "--image", PHOTO, "--instruction", "make the mug red", "--model", TINY, "--out", out(), ...Array.from({ length: 10 }, (_, i) => `--x${i}=${"y".repeat(3_000)}`)]);
    expect([many.status, many.signal]).to.deep.equal([1, null]);
    expect(many.lines).to.have.length(1);
    expect(many.lines[0]).to.match(/^reward-edit: the command line is \d+ characters; the limit is 16384$/);
    const huge = cliSync(["edit", "--image", `/tmp/${"p".repeat(30_000)}.png`, "--instruction", "x", "--out", out()]);
    expect([huge.status, huge.signal]).to.deep.equal([1, null]);
    expect(huge.lines).to.have.length(1);
    expect(huge.lines[0]).to.match(/^reward-edit: an argument of 30009 characters \("\/tmp\/ppp.*"\) is too long; the limit is 4096$/);
  });

  it("a batch manifest row with a 30 KB instruction: one line naming the file, line and field", async () => {
    const dir = tempDir();
    const manifest = path.join(dir, "rows.jsonl");
    writeFileSync(manifest, `${JSON.stringify({ image: PHOTO, instruction: "make the mug red" })}\n${JSON.stringify({ image: PHOTO, instruction: "z".repeat(30_000) })}\n`);
    const r = await runCli(["batch", "--input", manifest, "--model", TINY, "--no-score", "--out", path.join(dir, "out")]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr.trim().split("\n")).to.deep.equal([`reward-edit: ${manifest}:2: instruction: at most 500 characters`]);
  });

  it("a benchmark suite with a 30 KB instruction: one line naming the sample, before any edit", async () => {
    const dir = tempDir();
    const suite = path.join(dir, "suite.jsonl");
    writeFileSync(suite, `${JSON.stringify({ id: "long-one", image: PHOTO, instruction: "w".repeat(30_000), category: "local" })}\n`);
    const r = await runCli(["bench", "--suite", "jsonl", "--suite-path", suite, "--model", TINY, "--backend", "local", "--steps", "1", "--out", path.join(dir, "out")]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr.trim().split("\n")).to.deep.equal(["reward-edit: suite.jsonl: sample long-one: instruction is 30000 characters; the limit is 500"]);
  });

  describe("serve on a port another loopback server holds", () => {
    let holder: Server;
    let port: number;
    before(async () => {
      holder = createServer((_req, res) => res.end("someone else"));
      holder.listen(0, "127.0.0.1");
      await once(holder, "listening");
      port = (holder.address() as AddressInfo).port;
    });
    after(() => holder?.close());

    it("reward-edit serve exits 1 with one line and nothing on stdout", async () => {
      const child = spawn(process.execPath, [CLI, "serve", "--port", String(port), "--model", TINY], { env: { ...process.env, HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
      expect([code, signal], stderr).to.deep.equal([1, null]);
      expect(stderr.trim().split("\n")).to.deep.equal([`reward-edit: serve: port ${port} on 127.0.0.1 is already in use (another server holds it: stop it, or choose --port / $PORT)`]);
      expect(stdout).to.equal("");
      // the other server was not disturbed
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).to.equal("someone else");
    });

    it("startServer losing the port after its workers started stops them: the process ends by itself", async () => {
      // no process.exit in the script: it ends only when nothing (no worker thread) holds it open
      const server = pathToFileURL(path.join(ROOT, "dist", "src", "server", "server.js")).href;
      const script = path.join(tempDir(), "lose-port.mjs");
      writeFileSync(
        script,
        `import { pino } from ${JSON.stringify(import.meta.resolve("pino"))};
        import { startServer } from ${JSON.stringify(server)};
        await startServer(pino({ level: "silent" }), { port: ${port}, host: "127.0.0.1", modelDir: ${JSON.stringify(TINY)}, workers: 1 }, { REWARD_EDIT_C2PA: "off" })
          .then(() => console.log("started"), (err) => console.log(err.code));`,
      );
      const child = spawn(process.execPath, [script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
      const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
      clearTimeout(timer);
      expect(stdout.trim()).to.equal("EADDRINUSE");
      expect([code, signal]).to.deep.equal([0, null]);
    });
  });
});
