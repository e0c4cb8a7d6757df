import { expect } from "chai";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { CLI, ROOT, runCli, tempDir } from "../helpers.js";

const HELDOUT = path.join(ROOT, "models", "heldout-v2", "shapes");
const summary = (dir: string) =>
  readFileSync(path.join(dir, "summary.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { row: number; input: string; output?: string; error?: string; settings?: Record<string, unknown>; scores?: Record<string, number | null> });

/** A folder of n held-out scenes (p00.png ...) plus broken files that are not images at all. */
function photoFolder(n: number, broken: string[] = []): string {
  const dir = tempDir("reward-edit-batch-");
  for (let i = 0; i < n; i++) copyFileSync(path.join(HELDOUT, `syn-${String(i).padStart(4, "0")}-source.png`), path.join(dir, `p${String(i).padStart(2, "0")}.png`));
  for (const b of broken) writeFileSync(path.join(dir, b), "this is not a photo");
  return dir;
}

describe("reward-edit batch: catalogue photos on the worker pool, resumable (issue 21)", function () {
  this.timeout(180_000);

  it("a folder with broken photos: every good one edited, each broken one an error row, a contact sheet of all", async () => {
    const input = photoFolder(6, ["broken-a.png", "broken-b.jpg"]);
    const out = path.join(tempDir(), "out");
    const r = await runCli(["batch", "--input", input, "--instruction", "make the background blue", "--out", out, "--steps", "3", "--workers", "2"]);
    expect(r.code, r.stderr).to.equal(2); // finished, with failures
    const rows = summary(out);
    expect(rows).to.have.length(8);
    expect(rows.filter((x) => x.error).map((x) => x.input).sort()).to.deep.equal(["broken-a.png", "broken-b.jpg"]);
    const good = rows.filter((x) => !x.error);
    expect(good).to.have.length(6);
    for (const g of good) {
      const meta = await sharp(path.join(out, g.output!)).metadata();
      expect([meta.format, meta.width]).to.deep.equal(["png", 64]);
      expect(g.settings).to.include({ steps: 3, preset: null });
      expect(g.scores).to.have.keys("following", "preserving", "quality");
    }
    const html = readFileSync(path.join(out, "index.html"), "utf8");
    expect(html.match(/<figure/g)).to.have.length(8);
    expect(html.match(/<figure class="failed"/g)).to.have.length(2);
    expect(r.stderr).to.match(/batch: 6 edited, 2 failed, 0 already done/);
  });

  it("killed half-way and run again: the rest is done and no photo twice", async () => {
    const n = 14;
    const input = photoFolder(n);
    const out = path.join(tempDir(), "out");
    const args = [CLI, "batch", "--input", input, "--instruction", "make it black and white", "--out", out, "--steps", "20", "--workers", "1"];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    // kill it (SIGKILL: no chance to tidy up) once a few photos are recorded
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        const file = path.join(out, "summary.jsonl");
        if (existsSync(file) && readFileSync(file, "utf8").split("\n").filter(Boolean).length >= 4) {
          clearInterval(t);
          child.kill("SIGKILL");
          resolve();
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(t);
        reject(new Error("the batch finished before it could be killed"));
      });
    });
    await new Promise((r) => child.once("exit", r));
    const first = summary(out).length;
    expect(first).to.be.within(4, n - 1);
    const again = await runCli(args.slice(1));
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.contain(`resuming: ${first} of ${n} photos already`);
    const rows = summary(out);
    expect(rows.map((x) => x.row).sort((a, b) => a - b)).to.deep.equal([...Array(n).keys()]);
    expect(readdirSync(out).filter((f) => f.endsWith(".png"))).to.have.length(n);
    expect(readdirSync(out).filter((f) => f.endsWith(".part"))).to.have.length(0);
    // seeds follow the row, so a resumed batch edits as one uninterrupted run would have
    expect(rows.map((x) => x.settings!.seed).sort((a, b) => Number(a) - Number(b))).to.deep.equal([...Array(n).keys()]);
  });

  it("a JSON Lines manifest: per-row instruction, rewards, preset, seed and mask; the mask keeps its outside exactly", async () => {
    const dir = photoFolder(3);
    // left half may change
    const mask = Buffer.alloc(64 * 64);
    for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) mask[y * 64 + x] = 255;
    await sharp(mask, { raw: { width: 64, height: 64, channels: 1 } }).png().toFile(path.join(dir, "left.png"));
    const rows = [
      { image: "p00.png", instruction: "make the background blue", rewards: "5,3,5", seed: 42 },
      { image: "p01.png", preset: "draft" },
      { image: "p02.png", instruction: "make the background red", mask: "left.png" },
    ];
    writeFileSync(path.join(dir, "rows.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
    const out = path.join(tempDir(), "out");
    const r = await runCli(["batch", "--input", path.join(dir, "rows.jsonl"), "--instruction", "make it black and white", "--out", out, "--steps", "4", "--no-score"]);
    expect(r.code, r.stderr).to.equal(0);
    const got = summary(out).sort((a, b) => a.row - b.row);
    expect(got[0].settings).to.deep.include({ rewards: [5, 3, 5], seed: 42 });
    expect(got[1].settings).to.deep.include({ preset: "draft" });
    expect(got[0].scores).to.equal(undefined);
    expect(got[2].settings).to.deep.include({ mask: path.join(dir, "left.png") });
    const src = await sharp(path.join(dir, "p02.png")).removeAlpha().raw().toBuffer();
    const edited = await sharp(path.join(out, got[2].output!)).removeAlpha().raw().toBuffer();
    let outsideChanged = 0;
    let insideChanged = 0;
    for (let i = 0; i < 64 * 64; i++) {
      const same = [0, 1, 2].every((c) => src[i * 3 + c] === edited[i * 3 + c]);
      if (i % 64 >= 32 && !same) outsideChanged++;
      if (i % 64 < 32 && !same) insideChanged++;
    }
    expect(outsideChanged).to.equal(0);
    expect(insideChanged).to.be.greaterThan(100);
  });

  it("a CSV manifest with a bad row stops before any edit, naming the file and line", async () => {
    const dir = photoFolder(1);
    writeFileSync(path.join(dir, "rows.csv"), "image,instruction,rewards\np00.png,make it red,5,5\n");
    const bad = await runCli(["batch", "--input", path.join(dir, "rows.csv"), "--out", path.join(dir, "out")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim().split("\n")).to.have.length(1);
    expect(bad.stderr).to.match(/rows\.csv: .*(column|record)/i);
    writeFileSync(path.join(dir, "rows.csv"), 'image,instruction,rewards\np00.png,make it red,"5,9,5"\n');
    const range = await runCli(["batch", "--input", path.join(dir, "rows.csv"), "--out", path.join(dir, "out")]);
    expect(range.stderr).to.match(/rows\.csv:2: rewards: rewards must be three numbers in 0\.\.5/);
    expect(existsSync(path.join(dir, "out", "summary.jsonl"))).to.equal(false);
  });
});
