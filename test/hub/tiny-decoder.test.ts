import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { PHOTOS, ROOT, TINY, copyFolder, runCli, tempDir } from "../helpers.js";
import { HubServer, filesOf, hubFile } from "../support/hub-server.js";

const PY = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";
const TAESD = path.join(ROOT, "models", "convert", "taesd.py");

describe("models tiny-decoder: TAESD from the Hub as a folder's preview_decoder (loopback Hub)", function () {
  this.timeout(120_000);
  const hub = new HubServer();
  const root = tempDir("taesd-hub-");
  let url = "";
  const env = (name: string): NodeJS.ProcessEnv => ({ HF_ENDPOINT: url, HF_HOME: path.join(root, name, "hf-home"), HF_HUB_CACHE: path.join(root, name, "hub"), REWARD_EDIT_CACHE: path.join(root, name, "cache") });
  const transfers = (from: number) => hub.log.slice(from).filter((r) => r.file !== undefined && r.method === "GET").map((r) => r.file!).sort();

  before(async () => {
    // a narrow AutoencoderTiny in the diffusers layout (8 channels, one upsampling: the tiny
    // editor's latents are 2x smaller than its images, SD's 8x), as madebyollin/taesd lays it out
    const ck = path.join(root, "checkpoint");
    const r = spawnSync(PY, [TAESD, "--random", "--channels", "8", "--blocks", "1,1", "--seed", "3", "--save-checkpoint", ck], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    url = await hub.start();
    const files = filesOf(ck);
    // what the real repository holds beside the diffusers files
    files.set("taesd_decoder.pth", hubFile(Buffer.alloc(50_000, 7), true));
    files.set("taesd_encoder.pth", hubFile(Buffer.alloc(50_000, 9), true));
    files.set("README.md", hubFile(Buffer.from("# taesd\n")));
    hub.add({ type: "model", name: "test-org/taesd", files });
    const wide = JSON.parse(readFileSync(path.join(ck, "config.json"), "utf8"));
    hub.add({ type: "model", name: "test-org/taesd-wrong", files: new Map([...filesOf(ck)].map(([k, v]) => [k, k === "config.json" ? hubFile(Buffer.from(JSON.stringify({ ...wide, decoder_block_out_channels: [8, 16] }))) : v])) });
    hub.add({ type: "model", name: "test-org/not-taesd", files: new Map([["README.md", hubFile(Buffer.from("#\n"))]]) });
  });
  after(() => hub.stop());

  it("fetches only config.json and the safetensors, exports the decoder, records the source, and --decoder tiny edits with it", async () => {
    const dir = copyFolder(TINY);
    const mark = hub.log.length;
    const r = await runCli(["models", "tiny-decoder", dir, "--repo", "test-org/taesd"], env("main"));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok: .* decodes with --decoder tiny \(test-org\/taesd@[0-9a-f]{12}\)/m);
    expect(transfers(mark)).to.deep.equal(["config.json", "diffusion_pytorch_model.safetensors"]);
    const m = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8"));
    expect(m.preview_decoder).to.equal("preview_decoder/model.onnx");
    expect(m.source.preview_decoder).to.include({ repo: "test-org/taesd", revision: "main", commit: hub.repos.get("model:test-org/taesd")!.commit });
    const out = path.join(root, "tiny.png");
    const e = await runCli(["edit", "--model", dir, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red", "--steps", "2", "--seed", "1", "--decoder", "tiny", "--out", out], env("main"));
    expect(e.code, e.stderr).to.equal(0);
    expect((await sharp(out).metadata()).format).to.equal("png");

    // another folder from the same cache: no transfer
    const mark2 = hub.log.length;
    const again = await runCli(["models", "tiny-decoder", copyFolder(TINY), "--repo", "test-org/taesd"], env("main"));
    expect(again.code, again.stderr).to.equal(0);
    expect(transfers(mark2)).to.deep.equal([]);
  });

  it("refuses an unsupported AutoencoderTiny, a repository without one and a folder that is not a model, each in one line, leaving the folder as it was", async () => {
    const dir = copyFolder(TINY);
    const before = readFileSync(path.join(dir, "reward-edit.json"), "utf8");
    const cases: Array<[string[], RegExp]> = [
      [[dir, "--repo", "test-org/taesd-wrong"], /^reward-edit: test-org\/taesd-wrong@[0-9a-f]{12}: config\.json: unsupported AutoencoderTiny: decoder_block_out_channels \[8, 16\]/m],
      [[dir, "--repo", "test-org/not-taesd"], /missing config\.json/],
      [[path.join(root, "nowhere"), "--repo", "test-org/taesd"], /not a model folder with a reward-edit\.json/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["models", "tiny-decoder", ...args], env("refusals"));
      expect(r.code, r.stdout).to.not.equal(0);
      // the transfer's progress lines aside (a terminal shows a bar there)
      expect(r.stderr.trim().split("\n").filter((l) => !l.startsWith("pull: ")), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(message);
    }
    expect(readFileSync(path.join(dir, "reward-edit.json"), "utf8")).to.equal(before);
  });
});
