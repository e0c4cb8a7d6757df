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
