import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { EditInputError, type EditorModel, type EditOptions, type Session, createSession, disposeTinyDecoder, edit, loadModel } from "../../editor/index.js";
import { ROOT, PHOTOS, TINY, copyFolder, tempDir } from "../helpers.js";
import { relativeError } from "../support/safetensors.js";

const PY = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";

describe("decoder tiny: a folder's TAESD decoder (narrow random-weight fixture from models/convert/taesd.py)", function () {
  this.timeout(60_000);
  let withTiny: EditorModel;
  let without: EditorModel;
  let photo: Buffer;
  before(async () => {
    const dir = copyFolder(TINY);
    mkdirSync(path.join(dir, "preview_decoder"));
    // 8 channels, one upsampling: the tiny editor's latents are 2x, not SD's 8x
    copyFileSync(path.join(ROOT, "test", "fixtures", "taesd-narrow", "model.onnx"), path.join(dir, "preview_decoder", "model.onnx"));
    const manifest = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8"));
    writeFileSync(path.join(dir, "reward-edit.json"), JSON.stringify({ ...manifest, preview_decoder: "preview_decoder/model.onnx" }));
    withTiny = await loadModel(dir);
    without = await loadModel(TINY);
    photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  });
  after(async () => {
    await disposeTinyDecoder(withTiny);
    await withTiny.dispose();
    await without.dispose();
  });
  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: photo, instruction: "make the mug red", steps: 2, seed: 4, encodeCache: null, keepDecoded: true, ...o });

  it("decodes with the tiny decoder instead of the VAE decoder, at the same size, the full decoder still the default", async () => {
    let vaeRuns = 0;
    const real = withTiny.vaeDecoder.run.bind(withTiny.vaeDecoder);
    (withTiny.vaeDecoder as { run: Session["run"] }).run = (f, o) => (vaeRuns++, real(f, o));
    try {
      const full = await edit(withTiny, base());
      expect(vaeRuns).to.equal(1);
      const tiny = await edit(withTiny, base({ decoder: "tiny" }));
      expect(vaeRuns).to.equal(1);
      expect(full.parameters.decoder).to.equal("full");
      expect(tiny.parameters.decoder).to.equal("tiny");
      expect([tiny.width, tiny.height]).to.deep.equal([full.width, full.height]);
      expect(tiny.decoded!.dims).to.deep.equal(full.decoded!.dims);
      // random weights: only that it is another image, in the pipeline's [-1, 1] (the graph ends in x * 2 - 1)
      expect(Buffer.compare(tiny.image, full.image)).to.not.equal(0);
      expect(tiny.decoded!.data.every(Number.isFinite)).to.equal(true);
    } finally {
      delete (withTiny.vaeDecoder as { run?: unknown }).run;
    }
  });

  it("refuses decoder tiny on a folder without one, and an unknown decoder, naming the field", async () => {
    for (const [m, d] of [[without, "tiny"], [withTiny, "small"]] as const) {
      const err = await edit(m, base({ decoder: d as never })).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(EditInputError).with.property("field", "decoder");
    }
  });
});

describe("decoder tiny: the exported graph against the PyTorch module (models/convert/taesd.py)", function () {
  this.timeout(120_000);
  it("ONNX Runtime's decode of a fixed latent equals the module's, for the narrow fixture's shape and the real one", async () => {
    const dir = tempDir("taesd-");
    for (const [name, args] of [["narrow", ["--channels", "8", "--blocks", "1,1"]], ["real-shape", []]] as const) {
      const out = path.join(dir, name, "model.onnx");
      const golden = path.join(dir, name, "golden.json");
      const r = spawnSync(PY, [path.join(ROOT, "models", "convert", "taesd.py"), "--random", ...args, "--out", out, "--golden", golden], { encoding: "utf8" });
      expect(r.status, r.stderr).to.equal(0);
      const g = JSON.parse(readFileSync(golden, "utf8")) as Record<"latent" | "sample", { dims: number[]; data: number[] }>;
      const s = await createSession(out);
      try {
        const y = (await s.run({ latent_sample: { type: "float32", data: Float32Array.from(g.latent.data), dims: g.latent.dims } })).sample;
        expect(y.dims, name).to.deep.equal(g.sample.dims);
        expect(relativeError(y.data, Float32Array.from(g.sample.data)), name).to.be.below(1e-5);
      } finally {
        await s.dispose();
      }
    }
  });
});
