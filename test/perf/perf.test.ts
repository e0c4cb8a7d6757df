import { expect } from "chai";
import { readdirSync } from "node:fs";
import path from "node:path";
import { createSession } from "../../editor/index.js";
import { compareFloat16 } from "../../benchmarks/perf/float16.js";
import { topOperators } from "../../benchmarks/perf/fullscale.js";
import { closedLoopP99, sweepSessionOptions } from "../../benchmarks/perf/perf.js";
import { TINY, copyFolder, tempDir } from "../helpers.js";

describe("performance measurements (npm run bench's parts, on the tiny model)", function () {
  this.timeout(120_000);

  it("the float16 UNet keeps float32 inputs and outputs, runs, and stays close to float32", async () => {
    const out = path.join(tempDir(), "unet", "model.onnx");
    const r = await compareFloat16(TINY, 1, { rounds: 1, perRound: 2, latent: [8, 8], out });
    if ("error" in r) throw new Error(r.error);
    const half = await createSession(out);
    const full = await createSession(path.join(TINY, "unet", "model.onnx"));
    try {
      expect(half.inputs).to.deep.equal(full.inputs);
      expect(half.outputNames).to.deep.equal(full.outputNames);
    } finally {
      await half.dispose();
      await full.dispose();
    }
    expect(r.speedup).to.be.greaterThan(0);
    expect(r.max_abs_diff).to.be.lessThan(0.01 * Math.max(1, r.max_abs_output));
  });

  it("the session-option sweep loads the six documented variants side by side and times an edit on each", async () => {
    const variants = await sweepSessionOptions(TINY, 1, 1);
    expect(variants.map((v) => v.label.replace(/ \(.*\)$/, ""))).to.deep.equal(["default", "1 intra-op thread", "optimisation basic", "optimisation disabled", "no CPU memory arena", "thread spinning on"]);
    for (const v of variants) {
      expect(v.edit_ms.min).to.be.greaterThan(0);
      // the ratio is each variant's median over the default's, which is read from the first row
      expect(v.vs_default).to.be.closeTo(v.edit_ms.median / variants[0].edit_ms.median, 1e-12);
    }
  });

  it("reads operator totals from a real ONNX Runtime profile", async () => {
    const dir = copyFolder(TINY);
    const s = await createSession(path.join(dir, "vae_decoder", "model.onnx"), { enableProfiling: true });
    await s.run({ latent_sample: { type: "float32", data: new Float32Array(4 * 8 * 8).fill(0.2), dims: [1, 4, 8, 8] } });
    s.endProfiling();
    await s.dispose();
    const trace = readdirSync(path.join(dir, "vae_decoder")).find((f) => f.startsWith("model-profile_"));
    expect(trace, "profile written beside the model").to.be.a("string");
    const ops = topOperators(path.join(dir, "vae_decoder", trace!));
    expect(ops.map((o) => o.op)).to.include("Conv");
    const share = ops.reduce((a, o) => a + o.share, 0);
    expect(share).to.be.greaterThan(0.5).and.at.most(1.0000001);
  });

  it("the closed-loop queueing prediction: c clients wait for c service times, spread included", () => {
    expect(closedLoopP99([100, 100, 100], 4)).to.equal(400);
    // one service in ten takes 300 ms instead of 100: the p99 of a single request is 300
    const service = [...Array(9).fill(100), 300];
    expect(closedLoopP99(service, 1)).to.equal(300);
    // 8 clients: 800 + 200 K with K ~ Binomial(8, 0.1); P(K <= 2) = 0.962 and P(K <= 3) = 0.995
    // bracket 0.99, so the exact p99 is K = 3, 1400 ms. 20,000 draws put the empirical P(K <= 2)
    // within +-0.005 of 0.962 (3.6 sd) and P(K <= 3) above 0.99, so the estimate is exactly 1400.
    expect(closedLoopP99(service, 8)).to.equal(1400);
  });
});
