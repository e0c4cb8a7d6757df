import { expect } from "chai";
import { readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import path from "node:path";
import { createSession, inspectModelFolder, loadModel, ModelFolderError, parseManifest } from "../../editor/index.js";
import { checkSignature } from "../../editor/model/folder.js";
import { ROOT, TINY, TINY_NO_REWARDS, copyFolder, runCli } from "../helpers.js";

describe("model folders", () => {
  it("loads the test model once per component, with dtypes and shapes read from the sessions", async () => {
    const m = await loadModel(TINY);
    try {
      expect(m.takesRewards).to.equal(true);
      expect(m.textEncoder.inputs).to.deep.equal([{ name: "input_ids", type: "int64", shape: ["batch", 77] }]);
      expect(m.unet.inputNames).to.deep.equal(["sample", "timestep", "encoder_hidden_states", "reward_scores", "feedback_embeds"]);
      expect(m.unet.inputs.find((i) => i.name === "sample")!.shape[1]).to.equal(8);
      expect(m.manifest.rewards!.default_feedback).to.equal("None; None; None");
    } finally {
      await m.dispose();
    }
  });

  it("a folder without reward inputs loads and says so", async () => {
    const m = await loadModel(TINY_NO_REWARDS);
    expect(m.takesRewards).to.equal(false);
    await m.dispose();
  });

  it("falls back to CPU when a requested execution provider cannot load, and logs why", async () => {
    const logs: string[] = [];
    const s = await createSession(path.join(TINY, "unet", "model.onnx"), { providers: ["cuda", "cpu"], log: (m) => logs.push(m) });
    expect(s.provider).to.equal("cpu");
    expect(logs.join()).to.match(/cuda.*using cpu/);
    await s.dispose();
  });

  it("a reused input buffer refilled in place is read afresh by the next run", async () => {
    const s = await createSession(path.join(TINY, "vae_decoder", "model.onnx"));
    try {
      const latent = { type: "float32" as const, data: new Float32Array(4 * 8 * 8).fill(0.1), dims: [1, 4, 8, 8] };
      const first = Object.values(await s.run({ latent_sample: latent }))[0].data.slice();
      latent.data.fill(-0.3);
      const again = Object.values(await s.run({ latent_sample: latent }))[0].data;
      const fresh = Object.values(await s.run({ latent_sample: { ...latent, data: latent.data.slice() } }))[0].data;
      expect(Array.from(again)).to.deep.equal(Array.from(fresh));
      expect(Array.from(again)).to.not.deep.equal(Array.from(first));
    } finally {
      await s.dispose();
    }
  });

  it("a provider this onnxruntime-node build lacks (dml on Linux) is named in the log, not reported as serving", async () => {
    const logs: string[] = [];
    const s = await createSession(path.join(TINY, "vae_decoder", "model.onnx"), { providers: ["dml", "cpu"], log: (m) => logs.push(m) });
    expect(s.provider).to.equal("cpu");
    expect(logs.join()).to.match(/\[dml\] are not in this onnxruntime-node build/);
    await s.dispose();
  });

  it("lists every problem of a broken folder at once", async () => {
    const dir = copyFolder(TINY);
    rmSync(path.join(dir, "vae_decoder", "model.onnx"));
    rmSync(path.join(dir, "tokenizer", "merges.txt"));
    // a text encoder that is really the VAE encoder: wrong input name
    copyFileSync(path.join(TINY, "vae_encoder", "model.onnx"), path.join(dir, "text_encoder", "model.onnx"));
    const report = await inspectModelFolder(dir);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    expect(report.problems).to.include("missing file vae_decoder/model.onnx");
    expect(report.problems).to.include("missing file tokenizer/merges.txt");
    expect(report.problems).to.include('text_encoder: missing input "input_ids"');
    expect(report.problems).to.include('text_encoder: unexpected input "sample" (not declared in reward-edit.json)');
    let err: unknown;
    await loadModel(dir).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ModelFolderError);
  });

  it("reports reward inputs declared in the manifest but absent from the UNet (and from its DeepCache outer graph)", async () => {
    const dir = copyFolder(TINY_NO_REWARDS);
    const manifest = JSON.parse(readFileSync(path.join(TINY, "reward-edit.json"), "utf8"));
    writeFileSync(path.join(dir, "reward-edit.json"), JSON.stringify(manifest));
    const report = await inspectModelFolder(dir);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    expect(report.problems).to.deep.equal([
      'unet: reward input "reward_scores" is declared in reward-edit.json but absent from the model',
      'unet: reward input "feedback_embeds" is declared in reward-edit.json but absent from the model',
      'unet_shallow: reward input "reward_scores" is declared in reward-edit.json but absent from the model',
      'unet_shallow: reward input "feedback_embeds" is declared in reward-edit.json but absent from the model',
    ]);
  });

  it("checks dtypes, ranks and fixed sizes against what the pipeline feeds", () => {
    const m = parseManifest({});
    const problems = checkSignature("unet", [
      { name: "sample", type: "float32", shape: [2, 4, 64, 64] },
      { name: "timestep", type: "float16", shape: [1] },
      { name: "encoder_hidden_states", type: "float32", shape: [2, 77] },
    ], m);
    expect(problems).to.deep.equal([
      'unet: input "sample" has size 4 on axis 1, expected 8',
      'unet: input "timestep" has dtype float16, expected float32 or int64',
      'unet: input "encoder_hidden_states" has rank 2, expected 3',
    ]);
  });

  it("`models validate` exits 0 with a one-line summary, 1 with every problem", async () => {
    const ok = await runCli(["models", "validate", TINY]);
    expect(ok.code).to.equal(0);
    expect(ok.stdout.trim().split("\n")).to.have.length(1);
    expect(ok.stdout).to.match(/^ok: tiny-random .*rewards \[following, preserving, quality\]/);
    const dir = copyFolder(TINY);
    rmSync(path.join(dir, "unet"), { recursive: true });
    writeFileSync(path.join(dir, "reward-edit.json"), JSON.stringify({ resolution: -3 }));
    const bad = await runCli(["models", "validate", dir]);
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.contain("problem: missing file unet/model.onnx");
    expect(bad.stdout).to.contain("problem: reward-edit.json: resolution");
  });

  it("`models validate` refuses components that cannot feed each other (a text encoder of another width)", async () => {
    const dir = copyFolder(TINY);
    // the bundled editor's text encoder is 64 wide; the tiny UNet attends to 16-wide states
    copyFileSync(path.join(ROOT, "models", "reward-edit-synthetic", "text_encoder", "model.onnx"), path.join(dir, "text_encoder", "model.onnx"));
    const r = await runCli(["models", "validate", dir]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.contain("problem: components do not fit: text_encoder last_hidden_state width vs unet encoder_hidden_states width (64 vs 16)");
    expect(r.stdout).to.contain("problem: components do not fit: text_encoder pooled width vs unet feedback_embeds width (64 vs 16)");
    // and loading it for an edit fails before any ONNX Runtime run, with the same words
    const err = await loadModel(dir).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(ModelFolderError);
    expect((err as ModelFolderError).problems.join("\n")).to.match(/components do not fit/);
  });
});
