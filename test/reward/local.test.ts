import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { LocalScorer, changeMap, decodeRaster, qualityMeasures } from "../../reward/index.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
import { PHOTOS, ROOT, runCli, tempDir } from "../helpers.js";

/** A flat grey image with optional rectangles painted in. */
async function canvas(w: number, h: number, rects: Array<[number, number, number, number, [number, number, number]]> = []): Promise<Buffer> {
  const buf = Buffer.alloc(w * h * 3, 128);
  for (const [x, y, rw, rh, c] of rects)
    for (let j = y; j < y + rh; j++) for (let i = x; i < x + rw; i++) buf.set(c, (j * w + i) * 3);
  return sharp(buf, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

describe("local scorer", () => {
  it("change map: finds exactly the changed rectangles, largest first, with their areas", async () => {
    const a = await decodeRaster(await canvas(100, 80));
    const b = await decodeRaster(await canvas(100, 80, [[10, 20, 30, 15, [255, 0, 0]], [70, 5, 8, 8, [0, 0, 255]]]));
    const m = changeMap(a, b);
    // the 3x3 smoothing grows each edge by one pixel where a third of the window changed
    expect(m.boxes.map(({ x, y, width, height }) => [x, y, width, height])).to.deep.equal([[9, 19, 32, 17], [69, 4, 10, 10]]);
    expect(m.boxes[0].area).to.be.within(30 * 15, 32 * 17);
    expect(m.changedFraction).to.be.closeTo((m.boxes[0].area + m.boxes[1].area) / 8000, 1e-9);
    expect(changeMap(a, a).boxes).to.deep.equal([]);
  });

  it("quality measures rise with noise and with blocking", async () => {
    const clean = await decodeRaster(readFileSync(path.join(PHOTOS, "astronaut.png")));
    const noisy = { ...clean, data: clean.data.map((v, i) => Math.min(1, Math.max(0, v + (((i * 7919) % 200) / 1000 - 0.1)))) };
    const blocky = await decodeRaster(await sharp(readFileSync(path.join(PHOTOS, "astronaut.png"))).jpeg({ quality: 3 }).toBuffer());
    expect(qualityMeasures(noisy).noiseSigma).to.be.greaterThan(qualityMeasures(clean).noiseSigma * 2);
    expect(qualityMeasures(blocky).blockiness).to.be.greaterThan(qualityMeasures(clean).blockiness + 0.2);
  });

  it("on a real photo: following is reported as not judged, never guessed", async () => {
    const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
    const r = await new LocalScorer().score({ source: photo, edited: photo, instruction: "make the mug red" });
    expect(r.perspectives.following.status).to.equal("not_judged");
    expect(r.perspectives.following.score).to.equal(undefined);
    expect(r.perspectives.preserving).to.include({ status: "scored", score: 5 });
  });

  it("on a synthetic scene: exact scores for all three perspectives", async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"), 5);
    const c = suite.cases.find((x) => x.record.kind === "recolour")!;
    const png = (r: typeof c.source) => sharp(Buffer.from(r.data.map((v) => Math.round(v * 255))), { raw: { width: r.width, height: r.height, channels: 3 } }).png().toBuffer();
    const scorer = new LocalScorer();
    const good = await scorer.scoreWithMap({ source: await png(c.source), edited: await png(c.target), instruction: c.record.instruction }, { case: c, palette: suite.palette });
    expect(good.perspectives.following).to.include({ status: "scored", score: 5 });
    expect(good.perspectives.preserving.score).to.be.above(4.9);
    const none = await scorer.scoreWithMap({ source: await png(c.source), edited: await png(c.source), instruction: c.record.instruction }, { case: c, palette: suite.palette });
    expect(none.perspectives.following.score).to.equal(0);
  });

  it("CLI: score with the local backend writes a heat map; rank orders candidates", async () => {
    const dir = tempDir();
    const src = path.join(dir, "src.png");
    const small = path.join(dir, "small.png");
    const big = path.join(dir, "big.png");
    await sharp(await canvas(64, 64)).toFile(src);
    await sharp(await canvas(64, 64, [[0, 0, 8, 8, [255, 0, 0]]])).toFile(small);
    await sharp(await canvas(64, 64, [[0, 0, 48, 48, [255, 0, 0]]])).toFile(big);
    const heat = path.join(dir, "heat.png");
    const r = await runCli(["score", "--backend", "local", "--source", src, "--edited", small, "--instruction", "x", "--heatmap", heat], { REWARD_EDIT_JUDGE_MODEL: "" });
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).perspectives.following.status).to.equal("not_judged");
    expect((await sharp(heat).metadata()).width).to.equal(64);
    const rank = await runCli(["rank", "--backend", "local", "--source", src, "--instruction", "x", big, small]);
    expect(JSON.parse(rank.stdout).ranking.map((x: { file: string }) => path.basename(x.file))).to.deep.equal(["small.png", "big.png"]);
    const bad = await runCli(["score", "--backend", "judge", "--source", src, "--edited", small, "--instruction", "x"], { REWARD_EDIT_JUDGE_MODEL: "" });
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/no judge configured/);
  });
});
