import { expect } from "chai";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { edit, loadModel } from "../../editor/index.js";
import { psnr } from "../../benchmarks/evaluation/quantization.js";
import { decodeRaster } from "../../raster/raster.js";
import { ROOT, copyFolder, runCli, tempDir } from "../helpers.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const graphBytes = (dir: string, g: string) => readdirSync(path.join(dir, g)).reduce((a, f) => a + statSync(path.join(dir, g, f)).size, 0);

describe("models quantize: int8 weights for a 4 GB pod (issue 33)", function () {
  this.timeout(120_000);
  const out = path.join(tempDir("quantize-"), "bundled-int8");

  before(async () => {
    const r = await runCli(["models", "quantize", BUNDLED, out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: .*bundled-int8 .*int8 weights/m);
  });

  it("writes a folder that validates, with the UNets and text encoder at about a quarter and the VAE unchanged", () => {
    for (const g of ["unet", "unet_shallow", "text_encoder"]) expect(graphBytes(out, g) / graphBytes(BUNDLED, g), g).to.be.below(0.45);
    for (const g of ["vae_encoder", "vae_decoder"]) expect(graphBytes(out, g), g).to.equal(graphBytes(BUNDLED, g));
    const m = JSON.parse(readFileSync(path.join(out, "reward-edit.json"), "utf8"));
    // int8 weights read through DequantizeLinear: float32 arithmetic, recorded (issue 42)
    expect(m.source).to.include({ dtype: "int8", compute: "float32" });
    expect(m.source.quantized.graphs).to.deep.equal(["text_encoder", "unet", "unet_shallow"]);
    // the PyTorch reference weights are the float32 ones: not carried into the int8 folder
    expect(readdirSync(out)).to.not.include("reference");
  });

  it("edits the same scene, seed and settings to nearly the same pixels as the float32 folder", async () => {
    const [a, b] = [await loadModel(BUNDLED), await loadModel(out)];
    try {
      const image = readFileSync(path.join(BUNDLED, "examples", "green-hat.png"));
      const o = { image, instruction: "make the hat red", seed: 3, steps: 12, workingSize: true };
      const [ra, rb] = [await edit(a, o), await edit(b, o)];
      const [pa, pb] = [await decodeRaster(ra.image), await decodeRaster(rb.image)];
      // measured 52-55 dB mean over the held-out suite (docs/performance.md); a wrong scale axis is ~15 dB
      expect(psnr(pa.data, pb.data)).to.be.above(35);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it("does not use ONNX Runtime's saved optimised graphs for an int8 folder (they peaked at 8.3 GB), and says so", async () => {
    const cache = tempDir("ort-cache-");
    const lines: string[] = [];
    const m = await loadModel(out, { optimizedCacheDir: cache, log: (l) => lines.push(l) });
    await m.dispose();
    expect(readdirSync(cache)).to.deep.equal([]);
    expect(lines.join("\n")).to.match(/int8 weights; ONNX Runtime's saved optimised graphs are not used/);
  });

  it("refuses a folder that is not float32, a missing folder and an unknown graph, each in one line", async () => {
    const f16 = copyFolder(BUNDLED);
    const m = JSON.parse(readFileSync(path.join(f16, "reward-edit.json"), "utf8"));
    writeFileSync(path.join(f16, "reward-edit.json"), JSON.stringify({ ...m, source: { ...(m.source ?? {}), dtype: "float16" } }));
    const cases: Array<[string[], RegExp]> = [
      [[f16, path.join(f16, "x")], /its weights are float16; quantise a float32 folder/],
      [[path.join(out, "missing"), path.join(out, "y")], /missing: no such folder/],
      [[BUNDLED, path.join(out, "z"), "--graphs", "unet,vae"], /--graphs: unknown graph vae/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["models", "quantize", ...args]);
      expect(r.code, r.stdout).to.not.equal(0);
      expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(message);
    }
  });
});
