import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { QuantReport } from "../../src/quantize/report.js";
import { ROOT, runCli, tempDir } from "../helpers.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const PHOTOS = ["lemon-on-wood.png", "green-hat.png"].map((f) => path.join(BUNDLED, "examples", f));
const readReport = (dir: string): QuantReport => JSON.parse(readFileSync(path.join(dir, "quantization-report.json"), "utf8"));

describe("models report: a quantised folder against its float32 source on the user's photos (issue 42)", function () {
  this.timeout(60_000);
  const int8 = path.join(tempDir("report-"), "bundled-int8");

  before(async () => {
    const r = await runCli(["models", "quantize", BUNDLED, int8]);
    expect(r.code, r.stderr).to.equal(0);
  });

  it("writes PSNR per photo, mean and lowest, and each graph's relative error for the int8-weight copy of the bundled editor", async () => {
    const r = await runCli(["models", "report", BUNDLED, int8, "--photos", PHOTOS.join(",")]);
    expect(r.code, r.stderr).to.equal(0);
    // the default --out is the candidate folder
    const report = readReport(int8);
    expect(existsSync(path.join(int8, "quantization-report.md"))).to.equal(true);
    expect(report.candidate).to.include({ dtype: "int8" });
    expect(report.settings).to.include({ preset: "fast", seed: 1, instruction: "make it look like a watercolour painting" });
    expect(report.photos.map((p) => p.photo)).to.deep.equal(PHOTOS);
    // measured on this 2-core machine (fast, seed 1): 50.3 dB on lemon-on-wood, 48.5 dB on green-hat, largest
    // channel difference 7 of 255; an int8 scale on the wrong axis gives about 15 dB
    for (const p of report.photos) {
      expect(p.identical).to.equal(false);
      expect(p.psnrDb, p.photo).to.be.a("number").and.above(40);
      expect(p.maxAbsDiff, p.photo).to.be.above(0).and.below(32);
    }
    expect(report.meanPsnrDb).to.be.a("number");
    expect(report.lowest!.psnrDb).to.be.at.most(report.meanPsnrDb!);
    expect(report.lowest!.psnrDb).to.equal(Math.min(...report.photos.map((p) => p.psnrDb!)));
    expect(report.components.map((c) => c.graph)).to.deep.equal(["text_encoder", "vae_encoder", "unet", "unet_shallow", "vae_decoder"]);
    // measured: text_encoder 1.8e-2 max / 5.8e-3 RMS, unet 7.4e-3 / 8.7e-3, unet_shallow 1.8e-3 / 1.3e-3;
    // the VAE keeps its float32 weights, so 0
    for (const c of report.components) {
      expect(c.error, c.graph).to.equal(undefined);
      expect(c.calls, c.graph).to.be.within(1, 2);
      for (const e of [c.maxAbsRel, c.rmsRel]) expect(e, c.graph).to.be.a("number").and.at.least(0).and.below(0.05);
    }
    const unet = report.components.find((c) => c.graph === "unet")!;
    expect(unet.maxAbsRel).to.be.above(0);
    expect(unet.rmsRel).to.be.above(0);
    expect(report.components.find((c) => c.graph === "vae_decoder")!.rmsRel).to.equal(0);
    expect(r.stdout).to.match(/\| photo \| PSNR \| max diff/);
    expect(r.stdout).to.match(/\| unet \| 2 \| \d\.\d\de-3 \|/);
  });

  it("reports a folder against itself as identical: PSNR null and every graph's error 0", async () => {
    const out = tempDir("report-self-");
    const r = await runCli(["models", "report", BUNDLED, BUNDLED, "--photos", PHOTOS.join(","), "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const report = readReport(out);
    for (const p of report.photos) expect(p).to.include({ psnrDb: null, identical: true, maxAbsDiff: 0 });
    expect(report.meanPsnrDb).to.equal(null);
    expect(report.lowest).to.equal(null);
    expect(report.identicalPhotos).to.equal(2);
    for (const c of report.components) expect([c.maxAbsRel, c.rmsRel], c.graph).to.deep.equal([0, 0]);
    expect(r.stdout).to.match(/\| identical \| 0 \|/);
  });

  it("refuses a missing photo, an undecodable one, no photos and a missing folder, each in one line", async () => {
    const out = tempDir("report-bad-");
    const missing = path.join(out, "nope.png");
    const cases: Array<[string[], RegExp]> = [
      [[BUNDLED, int8, "--photos", `${PHOTOS[0]},${missing}`], new RegExp(`cannot read photo ${missing}: ENOENT`)],
      [[BUNDLED, int8, "--photos", path.join(BUNDLED, "reward-edit.json")], /reward-edit\.json: not an image/],
      [[BUNDLED, int8, "--photos", " , "], /--photos: no photos given/],
      [[BUNDLED, path.join(out, "gone"), "--photos", PHOTOS[0]], /candidate .*gone: no such folder/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["models", "report", ...args, "--out", out]);
      expect(r.code, r.stdout).to.equal(1);
      expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(message);
    }
    expect(existsSync(path.join(out, "quantization-report.json"))).to.equal(false);
  });
});
