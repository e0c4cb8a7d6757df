import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, SHARED, runCli, tempDir } from "../helpers.js";
import { type Outputs, convertedOutputs, goldenInputs, goldenOutputs } from "../support/golden-outputs.js";
import { relativeError } from "../support/safetensors.js";
import { requireShared } from "../support/shared-data.js";
import { type Tensors, emaCopies, f32Tensor, ldmExtras, singleFileTensors, writeSafetensors, zerosLike } from "../support/single-file.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden", "ip2p-tiny");
const CONVERT = path.join(ROOT, "models", "convert");
const PY = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";
// the golden tests' float32 limit (convert.test.ts: measured 2.6e-6 at worst, about 4x room)
const LIMIT = 1e-5;

const worst = (a: Outputs, b: Outputs) =>
  Object.fromEntries((Object.keys(a) as Array<keyof Outputs>).map((k) => [k, relativeError(a[k], b[k])]));

const merged = (...parts: Tensors[]): Tensors => new Map(parts.flatMap((p) => [...p]));

describe("checkpoint converter: original-layout single files (model.diffusion_model.*, first_stage_model.*, cond_stage_model.*)", function () {
  this.timeout(120_000);
  before(function () {
    requireShared(this, "reference/checkpoints/golden");
  });
  const work = tempDir("single-file-");
  const write = (name: string, tensors: Tensors) => {
    const file = path.join(work, name);
    writeSafetensors(file, tensors);
    return file;
  };
  const convert = (file: string, out: string, ...flags: string[]) => runCli(["models", "convert", file, path.join(work, out), "--config", GOLDEN, ...flags]);
  const golden = () => goldenOutputs(goldenInputs(GOLDEN));
  const errorsOf = async (out: string) => worst(await convertedOutputs(path.join(work, out), goldenInputs(GOLDEN)), golden());

  it(`converts to the real code's outputs (<= ${LIMIT}): 1x1-conv VAE attention, schedule buffers, position_ids and EMA copies ignored`, async () => {
    const weights = singleFileTensors(GOLDEN);
    expect(weights.get("first_stage_model.encoder.mid.attn_1.q.weight")!.shape).to.deep.equal([64, 64, 1, 1]);
    // zeroed EMA copies: taken by mistake, they would spoil the UNet's output
    const file = write("ip2p-tiny.safetensors", merged(weights, ldmExtras(), emaCopies(weights, zerosLike)));
    const r = await convert(file, "plain");
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: /m);
    const e = await errorsOf("plain");
    for (const [k, v] of Object.entries(e)) expect(v, k).to.be.at.most(LIMIT);
    const m = JSON.parse(readFileSync(path.join(work, "plain", "reward-edit.json"), "utf8"));
    expect(m.source).to.include({ kind: "instruct-pix2pix", layout: "single-file", file: "ip2p-tiny.safetensors", config: "ip2p-tiny", ema: false });
    expect(m.description).to.contain("converted from ip2p-tiny.safetensors");
    // the small files come from --config
    for (const f of ["model_index.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json"]) expect(existsSync(path.join(work, "plain", f)), f).to.equal(true);
  });

  it("--ema takes the model_ema.* copies (LitEma names, dots dropped) in place of the UNet's own weights", async () => {
    const weights = singleFileTensors(GOLDEN);
    const ema = emaCopies(weights);
    for (const [k, t] of weights) if (k.startsWith("model.diffusion_model.")) weights.set(k, zerosLike(t));
    expect(ema.has("model_ema.diffusion_modelinput_blocks00weight")).to.equal(true);
    const file = write("ip2p-tiny-ema.safetensors", merged(weights, ldmExtras(), ema));
    const r = await convert(file, "ema", "--ema");
    expect(r.code, r.stderr).to.equal(0);
    expect((await errorsOf("ema")).unet).to.be.at.most(LIMIT);
    expect(JSON.parse(readFileSync(path.join(work, "ema", "reward-edit.json"), "utf8")).source.ema).to.equal(true);
    // without EMA copies, --ema says so
    const none = write("no-ema.safetensors", singleFileTensors(GOLDEN));
    const bad = await convert(none, "no-ema", "--ema");
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("--ema: the file has no EMA weights (model_ema.*)");
  });

  it("--check: text encoder names without text_model. (older transformers) pass; nothing is written", async () => {
    const file = write("legacy-text.safetensors", merged(singleFileTensors(GOLDEN, { legacyText: true }), ldmExtras({ legacyText: true })));
    const r = await convert(file, "checked", "--check");
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).to.deep.equal({ kind: "instruct-pix2pix", ok: true });
    expect(existsSync(path.join(work, "checked"))).to.equal(false);
  });

  it("a wrong shape and a missing tensor are both listed under the file's names, exit 2, no traceback", async () => {
    const weights = singleFileTensors(GOLDEN);
    weights.set("model.diffusion_model.time_embed.0.weight", f32Tensor([128, 16], () => 0));
    weights.delete("first_stage_model.decoder.norm_out.bias");
    weights.set("model.diffusion_model.label_emb.0.0.weight", f32Tensor([4], () => 0));
    const r = await convert(write("broken.safetensors", weights), "broken");
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain("cannot convert (3 problems)");
    expect(r.stderr).to.contain("unet: tensor model.diffusion_model.time_embed.0.weight (time_embedding.linear_1.weight) has shape [128, 16], expected [128, 32]");
    expect(r.stderr).to.contain("vae: missing tensor first_stage_model.decoder.norm_out.bias (decoder.conv_norm_out.bias) [32]");
    expect(r.stderr).to.contain("unet: unexpected tensor model.diffusion_model.label_emb.0.0.weight [4]");
    expect(r.stderr).not.to.contain("Traceback");
    expect(existsSync(path.join(work, "broken"))).to.equal(false);
  });

  const pack = (src: string, out: string, ...flags: string[]) => {
    const p = spawnSync(PY, [path.join(CONVERT, "pack_ckpt.py"), src, out, ...flags], { encoding: "utf8" });
    expect(p.status, p.stderr).to.equal(0);
    return out;
  };

  it(".ckpt (a Lightning-style torch pickle) is read with weights_only and converts to the same outputs", async () => {
    const st = write("for-ckpt.safetensors", merged(singleFileTensors(GOLDEN), ldmExtras()));
    const r = await convert(pack(st, path.join(work, "ip2p-tiny.ckpt")), "ckpt");
    expect(r.code, r.stderr).to.equal(0);
    for (const [k, v] of Object.entries(await errorsOf("ckpt"))) expect(v, k).to.be.at.most(LIMIT);
  });

  it("a .ckpt whose pickle needs more than tensors (an argparse.Namespace) is refused in one line", async () => {
    const st = write("for-unsafe.safetensors", singleFileTensors(GOLDEN));
    const r = await convert(pack(st, path.join(work, "unsafe.ckpt"), "--namespace-hparams"), "unsafe");
    expect(r.code).to.equal(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.match(/unsafe\.ckpt needs arbitrary code to unpickle \(argparse\.Namespace\); refusing: convert it to safetensors first/);
    expect(existsSync(path.join(work, "unsafe"))).to.equal(false);
  });
});
