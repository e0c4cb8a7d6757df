import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY, tempDir } from "../helpers.js";
import { baseForm } from "../support/forms.js";

/** Settings the README promises, each seen working through the HTTP API. */
describe("server settings: request timeout, step limit, presets file, kept-fraction header (issue 25)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  const presetsFile = path.join(tempDir(), "presets.json");
  before(async () => {
    writeFileSync(
      presetsFile,
      JSON.stringify({ catalogue: { description: "the shop's own: a little bolder", rewards: [5, 4, 5], steps: 3 } }),
    );
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, requestTimeoutMs: 1_000, maxSteps: 1000, presetsFile }, {});
  });
  after(() => s.stop());
  const post = (fields: Record<string, string>) => fetch(`${s.url}/v1/edits`, { method: "POST", body: baseForm({ instruction: "make the mug red", ...fields }) });

  it("REWARD_EDIT_REQUEST_TIMEOUT_MS: a synchronous edit that takes longer is cancelled and answered 504", async () => {
    const finished = new Promise<string>((resolve) => s.pool.once("finished", (j) => resolve(j.state)));
    // 3 x 1000 steps take several seconds even for the tiny model on a fast machine
    const r = await post({ steps: "1000", candidates: "3" });
    expect(r.status).to.equal(504);
    expect(((await r.json()) as { error: { code: string } }).error.code).to.equal("timeout");
    expect(await finished).to.equal("cancelled");
  });

  it("REWARD_EDIT_MAX_STEPS: more steps than the limit is a 400 naming steps", async () => {
    const r = await post({ steps: "1001" });
    expect(r.status).to.equal(400);
    expect(((await r.json()) as { error: { field: string } }).error.field).to.equal("steps");
  });

  it("REWARD_EDIT_PRESETS: the file's presets replace the bundled ones, in the listing and in edits", async () => {
    const listed = ((await (await fetch(`${s.url}/v1/presets`)).json()) as { presets: Array<{ name: string }> }).presets.map((p) => p.name);
    expect(listed).to.deep.equal(["catalogue"]);
    const r = await post({ preset: "catalogue" });
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.headers.get("x-reward-edit-parameters")!)).to.deep.include({ preset: "catalogue", rewards: [5, 4, 5], steps: 3 });
    const unknown = await post({ preset: "best" });
    expect(unknown.status).to.equal(400);
  });

  it("the kept-fraction header is the share of the photo's pixels returned exactly", async () => {
    const r = await post({ steps: "2", seed: "4" });
    const kept = Number(r.headers.get("x-reward-edit-kept-fraction"));
    const sharp = (await import("sharp")).default;
    const out = await sharp(Buffer.from(await r.arrayBuffer())).removeAlpha().raw().toBuffer();
    const { PHOTOS } = await import("../helpers.js");
    const src = await sharp(path.join(PHOTOS, "coffee.png")).removeAlpha().raw().toBuffer();
    let same = 0;
    for (let i = 0; i < src.length / 3; i++) if (out[i * 3] === src[i * 3] && out[i * 3 + 1] === src[i * 3 + 1] && out[i * 3 + 2] === src[i * 3 + 2]) same++;
    // the header counts pixels the composition copied; a copied pixel is equal, and an edited one may round back to equal
    expect(kept).to.be.within(0, 1);
    expect(same / (src.length / 3)).to.be.at.least(kept - 1e-4);
    expect(same / (src.length / 3) - kept).to.be.below(0.01);
  });
});
