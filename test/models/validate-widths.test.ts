/**
 * `models validate` on text-encoder widths that the graphs leave symbolic: torch.onnx declared
 * the text encoder's output widths symbolic before the converter fixed them, and such a folder
 * passed validate and failed at the first edit ("Got invalid dimensions for input:
 * feedback_embeds"). The folders here are real exports with their declared dims rewritten by
 * models/convert/graph_dims.py, so the probe runs go through ONNX Runtime as an edit would.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import path from "node:path";
import { createSession, loadModel, ModelFolderError } from "../../editor/index.js";
import { ROOT, SHARED, TINY, copyFolder, runCli, tempDir } from "../helpers.js";
import { requireShared } from "../support/shared-data.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden");
const PY = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";
const GRAPH_DIMS = path.join(ROOT, "models", "convert", "graph_dims.py");

/** Rewrites declared dims in place, e.g. ("pooler_output:1=width"): a name makes the dim symbolic. */
function setDims(file: string, ...specs: string[]): void {
  const r = spawnSync(PY, [GRAPH_DIMS, file, ...specs], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
}

const SYMBOLIC_TEXT = ["last_hidden_state:1=sequence", "last_hidden_state:2=width", "pooler_output:1=width"];

async function declared(file: string): Promise<Record<string, Array<number | string | null>>> {
  const s = await createSession(file);
  await s.dispose();
  return Object.fromEntries([...s.inputs, ...s.outputs].map((v) => [v.name, v.shape]));
}

const problems = (stdout: string) => stdout.split("\n").filter((l) => l.startsWith("problem: "));

describe("models validate: text-encoder widths the graphs leave symbolic", function () {
  this.timeout(120_000);

  it("the bundled tiny fixture with a 64-wide text encoder that declares its pooled width symbolic: refused by a probe run", async () => {
    const dir = copyFolder(TINY);
    copyFileSync(path.join(ROOT, "models", "reward-edit-synthetic", "text_encoder", "model.onnx"), path.join(dir, "text_encoder", "model.onnx"));
    setDims(path.join(dir, "text_encoder", "model.onnx"), ...SYMBOLIC_TEXT);
    const r = await runCli(["models", "validate", dir]);
    expect(r.code, r.stdout).to.equal(1);
    expect(r.stdout).to.match(/^problem: components do not fit: text_encoder pooled width vs unet feedback_embeds width \(64 vs 16; .*probe run/m);
    const err = await loadModel(dir).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(ModelFolderError);
    expect((err as ModelFolderError).problems.join("\n")).to.contain("feedback_embeds width (64 vs 16");
  });

  it("a folder that fits still validates, its symbolic widths settled by probe runs not counted as model time", async () => {
    const dir = copyFolder(TINY);
    setDims(path.join(dir, "text_encoder", "model.onnx"), ...SYMBOLIC_TEXT);
    for (const g of ["unet", "unet_shallow"]) setDims(path.join(dir, g, "model.onnx"), "feedback_embeds:1=feedback");
    setDims(path.join(dir, "unet", "model.onnx"), "encoder_hidden_states:2=width");
    const r = await runCli(["models", "validate", dir]);
    expect(r.code, r.stdout).to.equal(0);
    expect(r.stdout).to.match(/^ok: tiny-random /);
    const m = await loadModel(dir);
    try {
      // as ONNX Runtime sees them, so both probes ran
      expect(m.textEncoder.outputs.find((o) => o.name === "pooler_output")!.shape).to.deep.equal(["batch", "width"]);
      expect(m.unet.inputs.find((i) => i.name === "feedback_embeds")!.shape).to.deep.equal(["batch", "feedback"]);
      expect(m.textEncoder.runMs).to.equal(0);
      expect(m.unet.runMs).to.equal(0);
    } finally {
      await m.dispose();
    }
  });

  describe("golden checkpoints of the real code, converted", function () {
    before(function () {
      requireShared(this, "reference/checkpoints/golden");
    });
    const out = tempDir("validate-widths-");
    const conversions = new Map<string, Promise<string>>();
    /** The converted folder, made once by whichever test needs it first. */
    const converted = (name: "mrc-small") => {
      if (!conversions.has(name)) {
        const dir = path.join(out, name);
        // mrc-small's convert ends in validate's refusal (see below); the folder is written first
        conversions.set(name, runCli(["models", "convert", path.join(GOLDEN, name), dir]).then((r) => {
          if (!existsSync(path.join(dir, "reward-edit.json"))) throw new Error(`convert ${name} wrote nothing: ${r.stderr}`);
          return dir;
        }));
      }
      return conversions.get(name)!;
    };
    const copy = async (name: "mrc-small") => copyFolder(await converted(name));

    it("the converter declares the text encoder's and UNet's widths static", async () => {
      const dir = await converted("mrc-small");
      const text = await declared(path.join(dir, "text_encoder", "model.onnx"));
      expect(text.last_hidden_state).to.deep.equal(["batch", 77, 32]);
      expect(text.pooler_output).to.deep.equal(["batch", 32]);
      const unet = await declared(path.join(dir, "unet", "model.onnx"));
      expect(unet.encoder_hidden_states).to.deep.equal(["batch", 77, 32]);
      expect(unet.feedback_embeds).to.deep.equal(["batch", 768]);
      expect(unet.out_sample).to.deep.equal(["batch", 4, "height", "width"]);
      expect(unet.deep_features).to.deep.equal(["batch", 320, "height", "width"]);
      expect((await declared(path.join(dir, "unet_shallow", "model.onnx"))).out_sample).to.deep.equal(["batch", 4, "height", "width"]);
    });

    it("mrc-small (32-wide text encoder, 768-wide feedback_embeds) is refused from the declared widths", async () => {
      const r = await runCli(["models", "validate", await converted("mrc-small")]);
      expect(r.code).to.equal(1);
      expect(problems(r.stdout)).to.deep.equal(["problem: components do not fit: text_encoder pooled width vs unet feedback_embeds width (32 vs 768)"]);
    });

    it("with the text encoder's widths symbolic, as the converter wrote them before: refused after one text-encoder run", async () => {
      const dir = await copy("mrc-small");
      setDims(path.join(dir, "text_encoder", "model.onnx"), ...SYMBOLIC_TEXT);
      expect((await declared(path.join(dir, "text_encoder", "model.onnx"))).pooler_output).to.deep.equal(["batch", "width"]);
      const r = await runCli(["models", "validate", dir]);
      expect(r.code).to.equal(1);
      expect(problems(r.stdout)).to.deep.equal([
        "problem: components do not fit: text_encoder pooled width vs unet feedback_embeds width (32 vs 768; text_encoder declares its width symbolic, 32 is what a probe run returns)",
      ]);
    });

    it("with the UNet's widths symbolic too: a UNet probe run's dimension error, as one line with the input and both widths", async () => {
      const dir = await copy("mrc-small");
      setDims(path.join(dir, "text_encoder", "model.onnx"), ...SYMBOLIC_TEXT);
      for (const g of ["unet", "unet_shallow"]) setDims(path.join(dir, g, "model.onnx"), "encoder_hidden_states:2=width", "feedback_embeds:1=feedback");
      const r = await runCli(["models", "validate", dir]);
      expect(r.code).to.equal(1);
      const lines = problems(r.stdout);
      expect(lines).to.have.length(1);
      // both inputs take 32 from the text encoder; only feedback_embeds' weights reject it
      expect(lines[0]).to.match(/^problem: components do not fit: text_encoder pooled width vs unet feedback_embeds width \(32 vs 768; unet declares the width symbolic .*Gemm/);
      // the failing probe is the check's, not an error: ONNX Runtime's logger stays quiet
      expect(r.stderr).to.not.contain("onnxruntime");
    });
  });
});
