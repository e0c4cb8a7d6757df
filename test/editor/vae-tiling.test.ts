import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { EditInputError, type EditorModel, type EditOptions, type Session, decodeLatent, edit, encodeLatent, loadModel, prepareImage, setDefaultVaeTiling, tileFor } from "../../editor/index.js";
import { type Planes, tiled } from "../../editor/pipeline/vae-tiling.js";
import { serverConfigFrom } from "../../src/config/server.js";
import { resolveParams } from "../../src/edit-params.js";
import { PresetSchema } from "../../src/presets/index.js";
import { editSchema } from "../../src/server/validation.js";
import { PHOTOS, TINY } from "../helpers.js";

const planes = (channels: number, height: number, width: number, f: (c: number, y: number, x: number) => number): Planes => {
  const data = new Float32Array(channels * height * width);
  for (let c = 0; c < channels; c++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[(c * height + y) * width + x] = f(c, y, x);
  return { data, channels, height, width };
};

/** PSNR of two [-1, 1] images, clipped as toRgb8 clips them. */
function psnr(a: Float32Array, b: Float32Array): number {
  let mse = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.min(1, Math.max(-1, a[i]));
    const y = Math.min(1, Math.max(-1, b[i]));
    mse += ((x - y) / 2) ** 2;
  }
  return 10 * Math.log10(1 / (mse / a.length));
}

describe("tiled VAE (diffusers' AutoencoderKL tiling semantics)", function () {
  this.timeout(60_000);

  describe("tiling itself, on stand-in functions", () => {
    it("an identity tile function gives back the input whatever its size (tiles cover it once, edges included)", async () => {
      for (const [h, w, t] of [[64, 64, 32], [40, 72, 16], [8, 8, 16], [100, 36, 32]]) {
        const x = planes(2, h, w, (c, y, xx) => Math.sin(c + 0.1 * y + 0.37 * xx));
        const y = await tiled(x, t, 1, async (p) => ({ ...p, data: p.data.slice() }));
        expect([y.channels, y.height, y.width]).to.deep.equal([2, h, w]);
        for (let i = 0; i < x.data.length; i++) expect(y.data[i]).to.be.closeTo(x.data[i], 1e-6);
      }
    });

    it("blends a tile into the one above linearly over a quarter of a tile, as blend_v", async () => {
      // tile 8, stride 6, blend 2: rows 0-5 from tile 0; 6 = tile 0; 7 = half and half; 12-13 = the 2-row last tile fading in from tile 1
      let k = 0;
      const y = await tiled(planes(1, 14, 4, () => 0), 8, 1, async (p) => ({ ...p, data: new Float32Array(p.data.length).fill(k++) }));
      const col = Array.from({ length: 14 }, (_, r) => y.data[r * 4]);
      expect(col).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1.5]);
    });

    it("scales tile coordinates between input and output units (decode: 1 latent -> 2 px here)", async () => {
      const x = planes(1, 12, 12, (_, yy, xx) => yy * 12 + xx);
      const up = async (p: Planes) => planes(1, 2 * p.height, 2 * p.width, (_, yy, xx) => p.data[Math.floor(yy / 2) * p.width + Math.floor(xx / 2)]);
      const y = await tiled(x, 8, 2, up);
      const whole = await up(x);
      expect([y.height, y.width]).to.deep.equal([24, 24]);
      for (let i = 0; i < y.data.length; i++) expect(y.data[i]).to.be.closeTo(whole.data[i], 1e-5);
    });

    it("auto tiles only above 512 px, on only what exceeds a tile, off never", () => {
      expect(tileFor("auto", 512, 384)).to.equal(0);
      expect(tileFor("auto", 768, 512)).to.equal(256);
      expect(tileFor("on", 512, 384)).to.equal(256);
      expect(tileFor("on", 64, 48)).to.equal(0);
      expect(tileFor("on", 64, 48, 32)).to.equal(32);
      expect(tileFor("off", 1024, 1024)).to.equal(0);
    });
  });

  describe("on the tiny editor's VAE (real ONNX sessions)", () => {
    let model: EditorModel;
    let photo: Buffer;
    before(async () => {
      model = await loadModel(TINY);
      photo = readFileSync(path.join(PHOTOS, "astronaut.png"));
    });
    after(() => model.dispose());
    const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: photo, instruction: "make the suit red", steps: 3, seed: 3, encodeCache: null, ...o });

    it("a tiled decode of a real photo's latent is within 45 dB PSNR of the whole decode, a tiled encode within 3 % of its latent", async () => {
      const m = model.manifest;
      const img = await prepareImage(photo, { resolution: m.resolution, multiple: m.size_multiple });
      const image = { data: img.pixels, channels: 3, height: img.height, width: img.width };
      const latent = await encodeLatent(model.vaeEncoder, image, m.latent_channels, m.latent_downscale, 0);
      const tiledLatent = await encodeLatent(model.vaeEncoder, image, m.latent_channels, m.latent_downscale, 16);
      expect([tiledLatent.height, tiledLatent.width]).to.deep.equal([latent.height, latent.width]);
      let e = 0;
      let n = 0;
      for (let i = 0; i < latent.data.length; i++) (e += (latent.data[i] - tiledLatent.data[i]) ** 2), (n += latent.data[i] ** 2);
      expect(Math.sqrt(e / n)).to.be.below(0.03);
      const whole = await decodeLatent(model.vaeDecoder, latent, m.latent_downscale, 0);
      for (const tile of [16, 32]) {
        const t = await decodeLatent(model.vaeDecoder, latent, m.latent_downscale, tile);
        expect([t.channels, t.height, t.width]).to.deep.equal([whole.channels, whole.height, whole.width]);
        expect(psnr(whole.data, t.data)).to.be.above(45);
      }
    });

    it("an edit with vae_tiling on runs the VAE per tile and returns nearly the whole-decode edit; auto at 64 px is the whole edit exactly", async () => {
      const runs = { enc: 0, dec: 0 };
      const wrap = (s: Session, k: keyof typeof runs) => {
        const real = s.run.bind(s);
        (s as { run: Session["run"] }).run = (f, o) => (runs[k]++, real(f, o));
      };
      wrap(model.vaeEncoder, "enc");
      wrap(model.vaeDecoder, "dec");
      try {
        const off = await edit(model, base({ vaeTiling: "off", keepDecoded: true }));
        const auto = await edit(model, base({ keepDecoded: true }));
        expect(runs).to.deep.equal({ enc: 2, dec: 2 });
        const on = await edit(model, base({ vaeTiling: "on", vaeTile: 32, keepDecoded: true }));
        // 64x64 in 32 px tiles every 24 px: 3 x 3 tiles each way
        expect(runs).to.deep.equal({ enc: 11, dec: 11 });
        expect(Buffer.compare(auto.image, off.image)).to.equal(0);
        expect(auto.parameters).to.include({ vaeTiling: "auto", vaeTile: 0 });
        expect(on.parameters).to.include({ vaeTiling: "on", vaeTile: 32 });
        expect(psnr(off.decoded!.data, on.decoded!.data)).to.be.above(35);
        const [a, b] = await Promise.all([off.image, on.image].map((x) => sharp(x).raw().toBuffer()));
        expect(a.length).to.equal(b.length);
      } finally {
        delete (model.vaeEncoder as { run?: unknown }).run;
        delete (model.vaeDecoder as { run?: unknown }).run;
      }
    });

    it("a process default (REWARD_EDIT_VAE_TILING) applies to edits that name no mode", async () => {
      const config = serverConfigFrom({ REWARD_EDIT_VAE_TILING: "on" });
      expect(config.vaeTiling).to.equal("on");
      expect(() => serverConfigFrom({ REWARD_EDIT_VAE_TILING: "always" })).to.throw(/REWARD_EDIT_VAE_TILING/);
      setDefaultVaeTiling(config.vaeTiling);
      try {
        expect((await edit(model, base({ vaeTile: 32 }))).parameters).to.include({ vaeTiling: "on", vaeTile: 32 });
        expect((await edit(model, base({ vaeTile: 32, vaeTiling: "off" }))).parameters).to.include({ vaeTiling: "off", vaeTile: 0 });
      } finally {
        setDefaultVaeTiling("auto");
      }
    });

    it("refuses an unknown mode and a tile that does not give whole latent blends", async () => {
      for (const o of [{ vaeTiling: "sometimes" as never }, { vaeTile: 30 }, { vaeTile: 0 }]) {
        const err = await edit(model, base(o)).then(() => null, (e: unknown) => e);
        expect(err).to.be.instanceOf(EditInputError);
      }
    });
  });

  it("vae_tiling reaches the edit from a preset, the API form and explicit values (explicit wins)", () => {
    const preset = { name: "big", ...PresetSchema.parse({ description: "tiles", rewards: [5, 5, 5], vae_tiling: "on" }) };
    expect(resolveParams({ preset: "big" }, { big: preset }).sampling.vaeTiling).to.equal("on");
    expect(resolveParams({ preset: "big", vaeTiling: "off" }, { big: preset }).sampling.vaeTiling).to.equal("off");
    expect(resolveParams({}, {}).sampling).to.not.have.property("vaeTiling");
    expect(() => PresetSchema.parse({ description: "x", rewards: [5, 5, 5], vae_tiling: "sometimes" })).to.throw();
    const form = editSchema(serverConfigFrom({}));
    expect(form.parse({ instruction: "x", vae_tiling: "off" }).vae_tiling).to.equal("off");
    expect(form.safeParse({ instruction: "x", vae_tiling: "yes" }).success).to.equal(false);
  });
});
