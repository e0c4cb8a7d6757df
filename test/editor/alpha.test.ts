/**
 * Cutouts stay cutouts (issue 41, item 3): a transparent PNG or WebP is edited on its colour and
 * comes back with its own alpha, pixel for pixel; background opaque flattens onto the chosen
 * colour; JPEG cannot be transparent. Through the library, the CLI (edit and batch), with a mask,
 * and signed (C2PA + XMP) as every result is.
 */
import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type EditOptions, type EditorModel, EditInputError, edit, loadModel } from "../../editor/index.js";
import { ManifestError, readBatchInput } from "../../src/batch/manifest.js";
import { readProvenance } from "../../src/provenance/reader.js";
import { TINY, runCli, tempDir } from "../helpers.js";
import { makePki } from "../provenance/pki.js";
import { CUTOUT, alphaDiffers, alphaOf, cutoutPng, cutoutRgba, cutoutWebp } from "../support/cutout.js";

const rgbaOf = (b: Buffer | string) => sharp(b).ensureAlpha().raw().toBuffer();

/** Result pixels where the source is fully transparent that are not exactly `colour`. */
function offColour(rgb: Buffer, channels: number, colour: [number, number, number]): number {
  const src = cutoutRgba();
  let n = 0;
  for (let i = 0; i < src.length / 4; i++) {
    if (src[4 * i + 3] !== 0) continue;
    if (rgb[channels * i] !== colour[0] || rgb[channels * i + 1] !== colour[1] || rgb[channels * i + 2] !== colour[2]) n++;
  }
  return n;
}

describe("transparent cutouts keep their alpha (issue 41)", function () {
  this.timeout(60_000);
  let model: EditorModel;
  let png: Buffer;
  let webp: Buffer;
  before(async () => {
    model = await loadModel(TINY);
    png = await cutoutPng();
    webp = await cutoutWebp();
  });
  after(() => model.dispose());
  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: png, instruction: "make the mug red", steps: 3, seed: 5, ...o });

  it("PNG and WebP cutouts come back in their format with the source's alpha, pixel for pixel, at full resolution", async () => {
    for (const [image, format] of [[png, "png"], [webp, "webp"]] as const) {
      for (const detail of ["keep", "off"] as const) {
        const r = await edit(model, base({ image, format, detail }));
        const meta = await sharp(r.image).metadata();
        expect([meta.format, meta.width, meta.height, meta.channels], `${format} ${detail}`).to.deep.equal([format, CUTOUT.width, CUTOUT.height, 4]);
        expect(r.alpha).to.equal(true);
        expect(await alphaDiffers(r.image, image), `${format} ${detail}: alpha pixels changed`).to.equal(0);
        // the edit did run on the colour
        const got = await rgbaOf(r.image);
        const src = await rgbaOf(image);
        let changed = 0;
        for (let i = 0; i < src.length; i += 4) if (src[i + 3] === 255 && (got[i] !== src[i] || got[i + 1] !== src[i + 1] || got[i + 2] !== src[i + 2])) changed++;
        expect(changed, `${format} ${detail}: nothing edited`).to.be.greaterThan(0);
      }
    }
  });

  it("background opaque: no alpha, and exactly the chosen colour wherever the source was transparent", async () => {
    for (const [image, format] of [[png, "png"], [webp, "png"], [png, "jpeg"]] as const) {
      const r = await edit(model, base({ image, format, background: "opaque", backgroundColour: "#00FF00" }));
      const meta = await sharp(r.image).metadata();
      expect([meta.hasAlpha, meta.channels, r.alpha]).to.deep.equal([false, 3, false]);
      if (format !== "jpeg") expect(offColour(await sharp(r.image).raw().toBuffer(), 3, [0, 255, 0]), `${format}`).to.equal(0);
    }
    // the default colour is white
    const white = await edit(model, base({ background: "opaque" }));
    expect(offColour(await sharp(white.image).raw().toBuffer(), 3, [255, 255, 255])).to.equal(0);
  });

  it("JPEG: transparent is refused naming background; auto flattens onto the background colour; an opaque source stays opaque", async () => {
    let err: unknown;
    await edit(model, base({ format: "jpeg", background: "transparent" })).catch((e) => (err = e));
    expect(err).to.be.instanceOf(EditInputError);
    expect((err as EditInputError).field).to.equal("background");
    const auto = await edit(model, base({ format: "jpeg" }));
    expect((await sharp(auto.image).metadata()).channels).to.equal(3);
    const bad: unknown = await edit(model, base({ background: "opaque", backgroundColour: "green" })).catch((e) => e);
    expect((bad as EditInputError).field).to.equal("background_colour");
    const opaque = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#a63" } }).png().toBuffer();
    const r = await edit(model, base({ image: opaque, background: "transparent" }));
    expect([(await sharp(r.image).metadata()).channels, r.alpha]).to.deep.equal([3, false]);
  });

  it("a mask: outside it the result is the source's RGBA exactly, soft edges included (no grey fringe); the alpha is the source's everywhere", async () => {
    const { width: W, height: H } = CUTOUT;
    const left = Buffer.alloc(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W / 2; x++) left[y * W + x] = 255;
    const mask = await sharp(left, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();
    for (const maskMode of ["blend", "paste"] as const) {
      const r = await edit(model, base({ editMask: mask, maskMode }));
      expect(await alphaDiffers(r.image, png)).to.equal(0);
      const got = await rgbaOf(r.image);
      const src = cutoutRgba();
      let outside = 0;
      let inside = 0;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = 4 * (y * W + x);
          const same = got.subarray(i, i + 4).equals(src.subarray(i, i + 4));
          if (x >= W / 2 && !same) outside++;
          if (x < W / 2 && src[i + 3] === 255 && !same) inside++;
        }
      expect(outside, `${maskMode}: pixels changed outside the mask`).to.equal(0);
      expect(inside, `${maskMode}: nothing edited inside`).to.be.greaterThan(0);
    }
  });

  it("the working size: the alpha comes scaled with the image", async () => {
    const r = await edit(model, base({ workingSize: true }));
    const meta = await sharp(r.image).metadata();
    expect(meta.channels).to.equal(4);
    const expected = await sharp(png).ensureAlpha().resize(meta.width, meta.height, { fit: "fill" }).extractChannel(3).raw().toBuffer();
    const got = (await alphaOf(r.image))!;
    let far = 0;
    for (let i = 0; i < got.length; i++) if (Math.abs(got[i] - expected[i]) > 2) far++;
    expect(far).to.equal(0);
  });

  describe("the CLI", () => {
    const dir = tempDir("reward-edit-alpha-");
    const cut = path.join(dir, "cut.png");
    const cutWebp = path.join(dir, "cut.webp");
    before(() => {
      writeFileSync(cut, png);
      writeFileSync(cutWebp, webp);
    });
    const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(["edit", "--model", TINY, "--instruction", "make the mug red", "--steps", "2", "--seed", "3", ...args], env);

    it("edit, signed with C2PA and XMP: PNG and WebP keep the alpha pixel for pixel and the manifest verifies (inspect too)", async () => {
      const pki = makePki();
      const env = { REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.key };
      for (const [src, out] of [[cut, "a.png"], [cutWebp, "a.webp"]]) {
        const file = path.join(dir, out);
        const r = await cli(["--image", src, "--out", file], env);
        expect(r.code, r.stderr).to.equal(0);
        expect(await alphaDiffers(file, src), out).to.equal(0);
        const report = await readProvenance(readFileSync(file), readFileSync(pki.ca, "utf8"));
        expect(report.c2pa, out).to.include({ ours: true, valid: true, trusted: true });
        expect(report.c2pa!.failures, out).to.deep.equal([]);
      }
      const shown = await runCli(["inspect", path.join(dir, "a.webp"), "--trust", pki.ca], env);
      expect(shown.code, shown.stderr).to.equal(0);
      expect(JSON.parse(shown.stdout).c2pa).to.include({ valid: true, trusted: true });
    });

    it("edit: --background opaque --background-colour fills the transparent pixels; JPEG + transparent is one line, exit 1", async () => {
      const flat = path.join(dir, "flat.png");
      const o = await cli(["--image", cut, "--background", "opaque", "--background-colour", "#ff00ff", "--out", flat]);
      expect(o.code, o.stderr).to.equal(0);
      expect((await sharp(flat).metadata()).hasAlpha).to.equal(false);
      expect(offColour(await sharp(flat).raw().toBuffer(), 3, [255, 0, 255])).to.equal(0);
      // the result records what became of the alpha, so --like repeats it: the same pixels
      expect((await readProvenance(readFileSync(flat))).parameters).to.include({ background: "opaque", background_colour: "#ff00ff" });
      const again = path.join(dir, "again.png");
      const like = await runCli(["edit", "--model", TINY, "--like", flat, "--image", cut, "--out", again]);
      expect(like.code, like.stderr).to.equal(0);
      expect(Buffer.compare(await sharp(again).raw().toBuffer(), await sharp(flat).raw().toBuffer())).to.equal(0);
      const bad = await cli(["--image", cut, "--background", "transparent", "--out", path.join(dir, "x.jpg")]);
      expect(bad.code).to.equal(1);
      expect(bad.stderr.trim().split("\n"), bad.stderr).to.have.length(1);
      expect(bad.stderr).to.include("--background transparent");
    });

    it("batch: a manifest row's background and background_colour, the flags' for the others", async () => {
      const manifest = path.join(dir, "rows.csv");
      writeFileSync(manifest, "image,background,background_colour\ncut.png,,\ncut.webp,opaque,#0000ff\n");
      const out = path.join(dir, "batch");
      const r = await runCli(["batch", "--input", manifest, "--instruction", "make the mug red", "--model", TINY, "--steps", "2", "--workers", "1", "--no-score", "--out", out]);
      expect(r.code, r.stderr).to.equal(0);
      expect(await alphaDiffers(path.join(out, "cut-1.png"), cut)).to.equal(0);
      const flat = path.join(out, "cut-2.png");
      expect((await sharp(flat).metadata()).hasAlpha).to.equal(false);
      expect(offColour(await sharp(flat).raw().toBuffer(), 3, [0, 0, 255])).to.equal(0);
      writeFileSync(manifest, "image,background\ncut.png,clear\n");
      const bad: unknown = await readBatchInput(manifest, "x").catch((e) => e);
      expect(bad).to.be.instanceOf(ManifestError);
      expect((bad as Error).message).to.match(/rows\.csv:2: background/);
    });
  });
});
