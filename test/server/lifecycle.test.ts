import { expect } from "chai";
import { spawn } from "node:child_process";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import * as images from "../fixtures/images.js";
import { CLI, TINY } from "../helpers.js";
import { baseForm as form } from "../support/forms.js";

const quiet = pino({ level: "silent" });

describe("overload and shutdown", function () {
  this.timeout(90_000);

  it("more requests than workers + queue: some 429 with Retry-After, none lost, every accepted one completes", async () => {
    const s: RunningServer = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, queueSize: 2 }, {});
    try {
      const image = await images.png(64, 64);
      const N = 12;
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          fetch(`${s.url}/v1/edits`, { method: "POST", body: form({ instruction: `edit ${i}`, steps: "40", seed: String(i) }, { image }) }).then(async (r) => ({
            status: r.status,
            retryAfter: r.headers.get("retry-after"),
            body: r.status === 200 ? Buffer.from(await r.arrayBuffer()) : await r.json(),
          })),
        ),
      );
      const ok = results.filter((r) => r.status === 200);
      const busy = results.filter((r) => r.status === 429);
      expect(ok.length + busy.length).to.equal(N);
      expect(ok.length).to.be.at.least(3); // one running + two queued at the moment of the burst
      expect(busy.length).to.be.at.least(1);
      for (const b of busy) {
        expect(Number(b.retryAfter)).to.be.at.least(1);
        expect(b.body.error.code).to.equal("queue_full");
      }
      for (const o of ok) expect((o.body as Buffer).subarray(1, 4).toString()).to.equal("PNG");
      expect((await fetch(`${s.url}/healthz`)).status).to.equal(200);
      const after = await fetch(`${s.url}/v1/edits`, { method: "POST", body: form({ instruction: "after the storm", steps: "2" }, { image }) });
      expect(after.status).to.equal(200);
      console.log(`      overload: ${N} concurrent requests, 1 worker, queue 2 -> ${ok.length} x 200, ${busy.length} x 429`);
    } finally {
      await s.stop();
    }
  });

  it("SIGTERM: stops accepting, finishes the in-flight edit, then exits 0", async () => {
    const child = spawn(process.execPath, [CLI, "serve"], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", REWARD_EDIT_MODEL: TINY, LOG_LEVEL: "silent" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = /on (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.on("exit", () => reject(new Error(`server exited early: ${stderr}`)));
    });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const image = await images.png(64, 64);
    const inFlight = fetch(`${url}/v1/edits`, { method: "POST", body: form({ instruction: "finish me", steps: "100" }, { image }) });
    // wait until the edit is running, then ask the process to stop
    for (let i = 0; i < 100; i++) {
      const m = await (await fetch(`${url}/metrics`)).text();
      if (/reward_edit_in_flight 1/.test(m)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGTERM");
    // the signal is handled once readiness turns false (draining): wait for that, not for a guess
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      const ready = await fetch(`${url}/readyz`).then((r) => r.status, () => 503);
      if (ready === 503) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const refused = await fetch(`${url}/v1/edits`, { method: "POST", body: form({ instruction: "too late", steps: "2" }, { image }) }).then(
      (r) => r.status,
      () => "connection refused",
    );
    expect([503, "connection refused"]).to.include(refused);
    const res = await inFlight;
    expect(res.status).to.equal(200);
    expect((await res.arrayBuffer()).byteLength).to.be.greaterThan(100);
    expect(await exited).to.equal(0);
  });
});
