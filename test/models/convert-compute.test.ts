import { expect } from "chai";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { inspectModelFolder } from "../../editor/index.js";
import { countKernels } from "../../src/quantize/kernels.js";
import { PHOTOS, SHARED, runCli, tempDir } from "../helpers.js";
import { requireShared } from "../support/shared-data.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden");

describe("models convert --dtype int8 --compute int8 (the golden ip2p-tiny checkpoint)", function () {
  this.timeout(180_000);
  const root = tempDir("convert-compute-");
  before(function () {
    requireShared(this, "reference/checkpoints/golden");
  });

  it("converts, calibrates on the named photo and writes an int8-arithmetic folder that validates, runs int8 kernels and edits; the float32 one is gone", async () => {
    const out = path.join(root, "ip2p-int8-compute");
    // one calibration photo: 2 edits instead of the default 16, seconds on this 32 px checkpoint
    const r = await runCli(["models", "convert", path.join(GOLDEN, "ip2p-tiny"), out, "--dtype", "int8", "--compute", "int8", "--calibration-photos", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: \S+ \(ip2p-int8-compute, 32px, no reward inputs, int8 arithmetic\)/m);
    expect(r.stderr).to.match(/quantize: calibration: edit 2\/2/);
    const m = JSON.parse(readFileSync(path.join(out, "reward-edit.json"), "utf8"));
    expect(m.name).to.equal("ip2p-int8-compute");
    expect(m.source).to.include({ kind: "instruct-pix2pix", dtype: "int8", compute: "int8" });
    expect(m.source.quantized).to.include({ tool: "models/convert/qdq.py" });
    expect(m.source.quantized.calibration).to.include({ edits: 2 });
    expect(m.description).to.match(/converted from ip2p-tiny by models\/convert\/convert\.py \(int8 arithmetic\)\.$/);
    expect(readdirSync(root)).to.deep.equal(["ip2p-int8-compute"]);

    const report = await inspectModelFolder(out);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    expect(report.problems).to.deep.equal([]);
    const k = await countKernels(path.join(out, "unet", "model.onnx"), { intraOpThreads: 1 });
    expect(k.int8, JSON.stringify(k.ops)).to.be.greaterThan(0);

    const edited = path.join(root, "edited.png");
    const e = await runCli(["edit", "--model", out, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red", "--steps", "2", "--seed", "1", "--out", edited]);
    expect(e.code, e.stderr).to.equal(0);
    expect((await sharp(edited).metadata()).format).to.equal("png");
  });

  it("--compute int8 with float32 or float16 weights and an unknown --compute: one line each, exit 1, nothing written", async () => {
    const out = path.join(root, "refused");
    const src = path.join(GOLDEN, "ip2p-tiny");
    const cases: Array<[string[], string]> = [
      [["--compute", "int8"], "--compute int8 needs --dtype int8 (int8 arithmetic runs on int8 weights); got --dtype float32"],
      [["--dtype", "float16", "--compute", "int8"], "--compute int8 needs --dtype int8 (int8 arithmetic runs on int8 weights); got --dtype float16"],
      [["--dtype", "int8", "--compute", "fast"], '--compute must be float32, int8; got "fast"'],
    ];
    for (const [flags, line] of cases) {
      const r = await runCli(["models", "convert", src, out, ...flags]);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr.trim()).to.equal(`reward-edit: ${line}`);
    }
    expect(existsSync(out)).to.equal(false);
  });
});
