import { expect } from "chai";
import { pino } from "pino";
import sharp from "sharp";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY } from "../helpers.js";
import { baseForm } from "../support/forms.js";

describe("memory admission by decoded pixels (issue 23)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  // 900x900 = 810k pixels each; the budget holds one of them, not two
  const big = () => sharp({ create: { width: 900, height: 900, channels: 3, background: "#a63" } }).png().toBuffer();
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 2, pixelBudget: 1_000_000, maxSteps: 1000 }, {});
  });
  after(() => s.stop());

  it("with two workers free, a second large photo waits (first in, first out) until the first is done", async () => {
    const submit = async (image: Buffer, steps: string) =>
      ((await (await fetch(`${s.url}/v1/jobs`, { method: "POST", body: baseForm({ instruction: "make it red", steps }, { image }) })).json()) as { id: string }).id;
    const state = async (id: string) => ((await (await fetch(`${s.url}/v1/jobs/${id}`)).json()) as { state: string }).state;
    const first = await submit(await big(), "300");
    const deadline = Date.now() + 20_000;
    while ((await state(first)) !== "running" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const second = await submit(await big(), "2");
    // a worker is free, yet the second waits: both would pass the budget
    for (let i = 0; i < 10; i++) {
      expect(await state(second)).to.equal("queued");
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(await state(first)).to.equal("running");
    await fetch(`${s.url}/v1/jobs/${first}`, { method: "DELETE" });
    const until = Date.now() + 20_000;
    let st = "";
    while ((st = await state(second)) !== "succeeded" && Date.now() < until) await new Promise((r) => setTimeout(r, 30));
    expect(st).to.equal("succeeded");
  });
});

describe("memory mode keeps finished results under a byte cap (issue 23)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    // a few jobs' worth of upload + result for the uncompressed 96 px photos below
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, retainedBytes: 60_000 }, {});
  });
  after(() => s.stop());

  it("past the cap the oldest results are dropped: their state stays, their result answers 410; the newest are kept", async () => {
    const image = await sharp({ create: { width: 96, height: 96, channels: 3, background: "#a63" } }).png({ compressionLevel: 0 }).toBuffer();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const j = await fetch(`${s.url}/v1/jobs`, { method: "POST", body: baseForm({ instruction: "make it red", steps: "2", seed: String(i) }, { image }) });
      ids.push(((await j.json()) as { id: string }).id);
      const deadline = Date.now() + 20_000;
      while (((await (await fetch(`${s.url}/v1/jobs/${ids.at(-1)}`)).json()) as { state: string }).state !== "succeeded" && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    }
    const first = await fetch(`${s.url}/v1/jobs/${ids[0]}/result`);
    expect(first.status).to.equal(410);
    expect(((await first.json()) as { error: { code: string } }).error.code).to.equal("result_evicted");
    const view = (await (await fetch(`${s.url}/v1/jobs/${ids[0]}`)).json()) as { state: string; evicted?: boolean; result?: string };
    expect(view).to.deep.include({ state: "succeeded", evicted: true });
    expect(view.result).to.equal(undefined);
    expect((await fetch(`${s.url}/v1/jobs/${ids.at(-1)}/result`)).status).to.equal(200);
  });
});
