import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { edit, loadModel } from "../../editor/index.js";
import { PHOTOS, ROOT, SHARED, copyFolder, runCli, tempDir } from "../helpers.js";
import { type Outputs, convertedOutputs, goldenInputs, goldenOutputs } from "../support/golden-outputs.js";
import { relativeError } from "../support/safetensors.js";
import { requireShared } from "../support/shared-data.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden", "ip2p-tiny");
const CONVERT = path.join(ROOT, "models", "convert");
const PY = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";
// the golden tests' float32 limit (convert.test.ts: measured 2.6e-6 at worst, about 4x room)
const LIMIT = 1e-5;
// two conversions of the same weights: only ONNX Runtime's own run-to-run noise, which is none
const SAME = 1e-7;

/** Rewrites the weight files of a copied checkpoint with the converter's own safetensors module. */
function rewrite(dir: string, body: string): void {
  const code = `import sys, os, json, torch
sys.path.insert(0, ${JSON.stringify(CONVERT)})
import safetensors_io as st
root = ${JSON.stringify(dir)}
BASE = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}
BIN = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "pytorch_model"}
def cast(t, dtype):
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in t.items()}
for comp in BASE:
    f = os.path.join(root, comp, BASE[comp] + ".safetensors")
    t = st.load(f)
    os.remove(f)
${body.replace(/^/gm, "    ")}
`;
  const r = spawnSync(PY, ["-c", code], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
}

/** Each layout of the same checkpoint as diffusers writes it, with what its conversion must equal. */
const LAYOUTS: Record<string, string> = {
  // PyTorch pickles (diffusers' older default): diffusion_pytorch_model.bin / pytorch_model.bin
  bin: `torch.save(t, os.path.join(root, comp, BIN[comp] + ".bin"))`,
  // sharded: two safetensors shards named by a weight_map index
  sharded: `keys = list(t)
names = [f"{BASE[comp]}-0000{i + 1}-of-00002.safetensors" for i in range(2)]
halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
for name, part in zip(names, halves):
    st.save({k: t[k] for k in part}, os.path.join(root, comp, name))
json.dump({"metadata": {}, "weight_map": {k: names[i] for i, part in enumerate(halves) for k in part}}, open(os.path.join(root, comp, BASE[comp] + ".safetensors.index.json"), "w"))`,
  // the fp16 variant files, with no float32 file beside them
  fp16: `st.save(cast(t, torch.float16), os.path.join(root, comp, BASE[comp] + ".fp16.safetensors"))`,
  // the same values stored as float32: what the fp16 files must convert to
  "fp16-values-as-float32": `st.save(cast(cast(t, torch.float16), torch.float32), os.path.join(root, comp, BASE[comp] + ".safetensors"))`,
  bfloat16: `st.save(cast(t, torch.bfloat16), os.path.join(root, comp, BASE[comp] + ".safetensors"))`,
  "bfloat16-values-as-float32": `st.save(cast(cast(t, torch.bfloat16), torch.float32), os.path.join(root, comp, BASE[comp] + ".safetensors"))`,
};

const worst = (a: Outputs, b: Outputs) => Math.max(...(Object.keys(a) as Array<keyof Outputs>).map((k) => relativeError(a[k], b[k])));

describe("checkpoint converter: every weight layout diffusers publishes, and --check", function () {
  this.timeout(240_000);
  before(function () {
    requireShared(this, "reference/checkpoints/golden");
  });
  const work = tempDir("convert-layouts-");
  const conversions = new Map<string, Promise<Outputs>>();
  /** The layout written, converted (float32) and run on the golden inputs, once per layout. */
  const outputsOf = (layout: string) => {
    if (!conversions.has(layout))
      conversions.set(layout, (async () => {
        const src = copyFolder(GOLDEN);
        rewrite(src, LAYOUTS[layout]);
        const out = path.join(work, layout);
        const r = await runCli(["models", "convert", src, out]);
        if (r.code !== 0) throw new Error(`${layout}: ${r.stderr}`);
        return convertedOutputs(out, goldenInputs(GOLDEN));
      })());
    return conversions.get(layout)!;
  };
  const golden = () => goldenOutputs(goldenInputs(GOLDEN));

  for (const layout of ["bin", "sharded"]) {
    it(`${layout}: converts to the real code's outputs (<= ${LIMIT})`, async () => {
      expect(worst(await outputsOf(layout), golden())).to.be.at.most(LIMIT);
    });
  }

  for (const dtype of ["fp16", "bfloat16"]) {
    it(`${dtype} weights are widened exactly: the same graph outputs as those values stored in float32`, async () => {
      const stored = await outputsOf(dtype);
      expect(worst(stored, await outputsOf(`${dtype}-values-as-float32`))).to.be.at.most(SAME);
      // and the rounding really happened: the outputs moved off the float32 checkpoint's
      expect(worst(stored, golden())).to.be.above(SAME);
    });
  }

  it("--check reads names and shapes, writes nothing; a broken checkpoint lists its problems", async () => {
    const out = path.join(work, "checked");
    const ok = await runCli(["models", "convert", GOLDEN, out, "--check"]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout.trim().split("\n").pop()!)).to.deep.equal({ kind: "instruct-pix2pix", ok: true });
    expect(existsSync(out)).to.equal(false);
    const broken = copyFolder(GOLDEN);
    rewrite(broken, `if comp == "vae":
    del t["decoder.conv_out.bias"]
st.save(t, os.path.join(root, comp, BASE[comp] + ".safetensors"))`);
    const bad = await runCli(["models", "convert", broken, out, "--check"]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("vae: missing tensor decoder.conv_out.bias [3]");
    expect(existsSync(out)).to.equal(false);
  });

  it("weights past the external-data line go to model.onnx_data: the same outputs, and the same edit", async () => {
    const inline = path.join(work, "inline");
    const external = path.join(work, "external");
    expect((await runCli(["models", "convert", GOLDEN, inline])).code).to.equal(0);
    // 2 MB instead of 1.8 GB: the 6.5 MB text encoder and 3.4 MB UNet cross it, the 1 MB VAE encoder does not
    const r = await runCli(["models", "convert", GOLDEN, external], { REWARD_EDIT_EXTERNAL_DATA_BYTES: "2000000" });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: /m);
    for (const graph of ["text_encoder", "unet"]) {
      expect(readdirSync(path.join(external, graph)).sort(), graph).to.deep.equal(["model.onnx", "model.onnx_data"]);
      expect(statSync(path.join(external, graph, "model.onnx")).size, graph).to.be.below(statSync(path.join(external, graph, "model.onnx_data")).size / 4);
    }
    expect(readdirSync(path.join(external, "vae_encoder"))).to.deep.equal(["model.onnx"]);
    const g = goldenInputs(GOLDEN);
    expect(worst(await convertedOutputs(external, g), await convertedOutputs(inline, g))).to.be.at.most(SAME);
    const image = readFileSync(path.join(PHOTOS, "coffee.png"));
    const edits = [];
    for (const dir of [inline, external]) {
      const model = await loadModel(dir);
      try {
        edits.push((await edit(model, { image, instruction: "make the cup blue", steps: 3, seed: 1 })).image);
      } finally {
        await model.dispose();
      }
    }
    expect(Buffer.from(edits[1]).equals(Buffer.from(edits[0]))).to.equal(true);
  });
});
