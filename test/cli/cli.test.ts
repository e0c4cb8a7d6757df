import { expect } from "chai";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";
import { requireShared } from "../support/shared-data.js";
import { loadPresets } from "../../src/presets/index.js";

describe("reward-edit CLI", function () {
  this.timeout(60_000);
  const photo = path.join(PHOTOS, "coffee.png");

  it("--help lists every command, each on its own line of the Commands section", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).to.equal(0);
    const listed = r.stdout
      .slice(r.stdout.indexOf("Commands:"))
      .split("\n")
      .slice(1)
      .map((l) => /^\s+(\w+)/.exec(l)?.[1])
      .filter(Boolean);
    for (const c of ["edit", "batch", "serve", "score", "rank", "bench", "models", "tokenize"]) expect(listed, c).to.include(c);
  });

  it("tokenize prints the 77 ids as one JSON array", async function () {
    const tokenizer = requireShared(this, "reference/sd15-onnx-layout/tokenizer");
    const r = await runCli(["tokenize", "--tokenizer", tokenizer, "a photo of a cat"]);
    expect(r.code).to.equal(0);
    const ids = JSON.parse(r.stdout);
    expect(ids).to.have.length(77);
    expect(ids.slice(0, 7)).to.deep.equal([49406, 320, 1125, 539, 320, 2368, 49407]);
  });

  it("edit writes the image at the input's size, in the format its extension names", async () => {
    const out = path.join(tempDir(), "out.jpg");
    const r = await runCli(["edit", "--image", photo, "--instruction", "make the mug red", "--model", TINY,
      "--preset", "draft", "--seed", "3", "--scheduler", "ddim", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).to.deep.equal(["jpeg", 600, 400]);
    expect(r.stderr).to.contain("seed 3, 8 steps, rewards 5,5,5");
  });

  it("edit --working-size returns the model's working size (the photo's shape kept) instead of the photo's", async () => {
    const out = path.join(tempDir(), "small.png");
    const r = await runCli(["edit", "--image", photo, "--instruction", "make the mug red", "--model", TINY, "--steps", "2", "--working-size", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const meta = await sharp(out).metadata();
    // the tiny model works at 64 px on the long side: 600x400 -> 64x43
    expect([meta.width, meta.height]).to.deep.equal([64, 43]);
  });

  it("edit --preset fast runs the fast path and says what it spent; bad fast-path flags are one-line errors", async () => {
    const out = path.join(tempDir(), "fast.png");
    const fast = loadPresets().fast;
    const r = await runCli(["edit", "--image", photo, "--instruction", "make the mug red", "--model", TINY, "--preset", "fast", "--seed", "3", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    // the tiny model's leading spacing keeps sigma inside (1, 15] for the first steps only; DeepCache every 2nd step
    expect(r.stderr).to.match(new RegExp(`${fast.steps} steps, .*${fast.scheduler}: \\d+ UNet evaluations \\+ \\d+ on cached deep features`));
    for (const [flags, message] of [
      [["--guidance-interval", "5,1"], /--guidance-interval must be two sigmas LO,HI/],
      [["--adaptive-guidance", "2"], /--adaptive-guidance must be in 0..1/],
      [["--cache-interval", "0"], /--cache-interval must be in 1..50/],
      [["--scheduler", "dpmpp-3m"], /--scheduler must be one of .*dpmpp-2m, unipc/],
      [["--scheduler", "euler", "--karras"], /karras_sigmas needs a multistep scheduler/],
    ] as const) {
      const bad = await runCli(["edit", "--image", photo, "--instruction", "x", "--model", TINY, "--out", out, ...flags]);
      expect(bad.code, flags.join(" ")).to.equal(1);
      expect(bad.stderr.trim().split("\n"), flags.join(" ")).to.have.length(1);
      expect(bad.stderr).to.match(message);
    }
  });

  it("edit --mask writes the full-resolution blend mask and reports the share of pixels kept; --detail off has none", async () => {
    const dir = tempDir();
    const r = await runCli(["edit", "--image", photo, "--instruction", "make the mug red", "--seed", "3", "--out", path.join(dir, "o.png"), "--mask", path.join(dir, "m.png")]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/\d+\.\d % of pixels kept from the source/);
    const meta = await sharp(path.join(dir, "m.png")).metadata();
    expect([meta.width, meta.height, meta.channels]).to.deep.equal([600, 400, 1]);
    const off = await runCli(["edit", "--image", photo, "--instruction", "make the mug red", "--detail", "off", "--out", path.join(dir, "p.png")]);
    expect(off.code, off.stderr).to.equal(0);
    expect(off.stderr).to.contain("detail off");
    // no blend mask exists for a resized result: none is written, and the output is the resized edit
    expect(readdirSync(dir).sort()).to.deep.equal(["m.png", "o.png", "p.png"]);
    const p = await sharp(path.join(dir, "p.png")).metadata();
    expect([p.width, p.height]).to.deep.equal([600, 400]);
  });

  const failures: Array<[string, string[], RegExp]> = [
    ["a missing image", ["--image", "/nonexistent.png"], /cannot read --image \/nonexistent.png: ENOENT/],
    ["an unreadable image", ["--image", "__garbage__"], /image cannot be decoded/],
    ["rewards out of range", ["--rewards", "5,6,5"], /--rewards values must be in 0\.\.5/],
    ["an unknown detail mode", ["--detail", "max"], /--detail must be one of keep, off, got "max"/],
    ["a mask without detail", ["--detail", "off", "--mask", "/tmp/m.png"], /--mask needs --detail keep/],
    ["rewards that are not three numbers", ["--rewards", "5,5"], /--rewards must be three numbers/],
    ["an unknown preset", ["--preset", "shiny"], new RegExp(`unknown preset "shiny"; known: ${Object.keys(loadPresets()).join(", ")}$`, "m")],
    ["rewards and a preset together", ["--rewards", "5,5,5", "--preset", "best"], /either rewards or preset/],
    ["an invalid model folder", ["--model", "/nonexistent-model"], /invalid model folder \/nonexistent-model: .*does not exist/],
    ["a bad output extension", ["--out", "x.gif"], /--out must end in \.png, \.jpg or \.webp/],
  ];
  for (const [what, args, message] of failures) {
    it(`fails with one clear line and exit 1 for ${what}`, async () => {
      const dir = tempDir();
      const garbage = path.join(dir, "garbage.png");
      writeFileSync(garbage, "not an image at all");
      const argv = ["edit", "--image", photo, "--instruction", "make the mug red", "--model", TINY, "--out", path.join(dir, "o.png")];
      for (let i = 0; i < args.length; i += 2) {
        const value = args[i + 1] === "__garbage__" ? garbage : args[i + 1];
        const at = argv.indexOf(args[i]);
        if (at >= 0) argv[at + 1] = value;
        else argv.push(args[i], value);
      }
      const r = await runCli(argv);
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split("\n")).to.have.length(1);
      expect(r.stderr).to.match(message);
      expect(existsSync(path.join(dir, "o.png"))).to.equal(false);
    });
  }
});

describe("presets", () => {
  it("one data file with best (5,5,5), faithful, bold and draft, each described", () => {
    const p = loadPresets();
    expect(Object.keys(p)).to.include.members(["best", "faithful", "bold", "draft"]);
    expect(p.best.rewards).to.deep.equal([5, 5, 5]);
    expect(p.faithful.rewards[1]).to.be.greaterThan(p.faithful.rewards[0] - 1e-9);
    expect(p.bold.rewards[1]).to.be.lessThan(p.bold.rewards[0]);
    for (const preset of Object.values(p)) expect(preset.description).to.match(/^\S.{10,}\.$/);
  });
});
