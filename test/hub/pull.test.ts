import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import sharp from "sharp";
import { HubCache, hubEnv } from "../../src/hub/index.js";
import { checkSpace } from "../../src/hub/transfer.js";
import { pullModel, pullSnapshot } from "../../src/pull/model.js";
import { editorSelector } from "../../src/pull/select.js";
import { parseHubSpec } from "../../src/pull/spec.js";
import { PHOTOS, SHARED, runCli, tempDir } from "../helpers.js";
import { HubServer, commitOf, filesOf, hubFile, loopbackHubEnv } from "../support/hub-server.js";
import { convertedOutputs, goldenInputs, goldenOutputs } from "../support/golden-outputs.js";
import { relativeError } from "../support/safetensors.js";
import { requireShared } from "../support/shared-data.js";
import { singleFileTensors, writeSafetensors } from "../support/single-file.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden");

/** A loopback address nothing listens on: a port that was free a moment ago. */
async function closedEndpoint(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}
const TOKEN = "hf_loopbackTestToken";

/** What a published editor repository holds beside the folders the converter reads. */
function withDecoys(files: ReturnType<typeof filesOf>): ReturnType<typeof filesOf> {
  const noise = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) & 255));
  files.set("safety_checker/config.json", hubFile(Buffer.from("{}")));
  files.set("safety_checker/model.safetensors", hubFile(noise(300_000, 1), true));
  files.set("feature_extractor/preprocessor_config.json", hubFile(Buffer.from("{}")));
  files.set("instruct-pix2pix-00-22000.safetensors", hubFile(noise(2_000_000, 2), true));
  files.set("instruct-pix2pix-00-22000.ckpt", hubFile(noise(2_000_000, 3), true));
  files.set("unet/diffusion_pytorch_model.bin", hubFile(noise(500_000, 4), true));
  files.set("vae/diffusion_pytorch_model.fp16.safetensors", hubFile(noise(400_000, 5), true));
  files.set("README.md", hubFile(Buffer.from("# test editor\n")));
  return files;
}

const NEEDED = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  "text_encoder/config.json",
  "text_encoder/model.safetensors",
  "tokenizer/merges.txt",
  "tokenizer/special_tokens_map.json",
  "tokenizer/tokenizer_config.json",
  "tokenizer/vocab.json",
  "unet/config.json",
  "unet/diffusion_pytorch_model.safetensors",
  "vae/config.json",
  "vae/diffusion_pytorch_model.safetensors",
];

describe("Hugging Face Hub: models pull, the shared cache, Real-Edit (loopback Hub)", function () {
  this.timeout(180_000);
  const hub = new HubServer();
  const root = tempDir("hub-");
  let url = "";
  /** Each test its own caches, so it runs alone or in any order. */
  const envFor = (name: string, extra: NodeJS.ProcessEnv = {}) => loopbackHubEnv(url, path.join(root, name), extra);
  const since = (n: number) => hub.log.slice(n);
  const transfersSince = (n: number) => since(n).filter((r) => r.file !== undefined && r.method === "GET");

  before(async function () {
    requireShared(this, "reference/checkpoints/golden");
    url = await hub.start();
    hub.add({ type: "model", name: "test-org/instruct-pix2pix", files: withDecoys(filesOf(path.join(GOLDEN, "ip2p-tiny"))) });
    hub.add({ type: "model", name: "test-org/gated-pix2pix", files: filesOf(path.join(GOLDEN, "ip2p-tiny")), gatedToken: TOKEN });
    const sub = new Map([...filesOf(path.join(GOLDEN, "ip2p-tiny"), "stage1_instruct_pix2pix"), ...filesOf(path.join(GOLDEN, "mrc-small"), "stage2_reward_instruct_pix2pix")]);
    hub.add({ type: "model", name: "test-org/Reward-InsPix2Pix", files: sub });
  });
  after(() => hub.stop());

  it("pull -> convert -> edit: requests exactly the converter's files (no decoy), lays out the cache as huggingface_hub does, records the source", async () => {
    const env = envFor("main");
    const mark = hub.log.length;
    const r = await runCli(["models", "pull", "test-org/instruct-pix2pix"], env);
    expect(r.code, r.stderr).to.equal(0);
    const dir = /^ok: (\S+);/m.exec(r.stdout)![1];
    const repo = hub.repos.get("model:test-org/instruct-pix2pix")!;

    const fetched = transfersSince(mark).map((t) => t.file!).sort();
    expect(fetched).to.deep.equal(NEEDED);
    const requested = transfersSince(mark).reduce((s, t) => s + t.sent, 0);
    const needed = NEEDED.reduce((s, f) => s + repo.files.get(f)!.content.length, 0);
    expect(requested).to.equal(needed);
    // the tree listing came in pages (4 entries each) and the client followed every Link
    expect(since(mark).filter((q) => q.url.includes("/tree/")).length).to.be.greaterThan(3);

    const cache = new HubCache(env.HF_HUB_CACHE!, { type: "model", name: "test-org/instruct-pix2pix" });
    expect(readFileSync(path.join(cache.folder, "refs", "main"), "utf8")).to.equal(repo.commit);
    const unetLink = path.join(cache.snapshot(repo.commit), "unet", "diffusion_pytorch_model.safetensors");
    expect(lstatSync(unetLink).isSymbolicLink()).to.equal(true);
    expect(readlinkSync(unetLink)).to.equal(`../../../blobs/${repo.files.get("unet/diffusion_pytorch_model.safetensors")!.sha256}`);
    expect(readlinkSync(path.join(cache.snapshot(repo.commit), "model_index.json"))).to.equal(`../../blobs/${repo.files.get("model_index.json")!.gitOid}`);

    const manifest = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8"));
    expect(manifest.source.hub).to.include({ repo: "test-org/instruct-pix2pix", commit: repo.commit, subfolder: null, revision: "main" });

    // the hub: form finds the conversion of the same commit: an edit, and no file transferred
    const mark2 = hub.log.length;
    const out = path.join(root, "main", "edited.png");
    const e = await runCli(["edit", "--model", "hub:test-org/instruct-pix2pix", "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red", "--steps", "2", "--seed", "1", "--out", out], env);
    expect(e.code, e.stderr).to.equal(0);
    expect((await sharp(out).metadata()).format).to.equal("png");
    expect(transfersSince(mark2)).to.deep.equal([]);

    // a second pull of the same commit: no file request, nothing converted
    const mark3 = hub.log.length;
    const again = await runCli(["models", "pull", "test-org/instruct-pix2pix"], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/0 file\(s\), 0 bytes downloaded; already converted/);
    expect(transfersSince(mark3)).to.deep.equal([]);
  });

  it("resume: a transfer cut mid-file continues from the bytes on disk with a Range request", async () => {
    const env = hubEnv(envFor("resume"));
    const file = "unet/diffusion_pytorch_model.safetensors";
    hub.faults.cut.set(file, 1_000_000);
    const mark = hub.log.length;
    let shown = 0;
    let announced = 0;
    const progress = { start: (total: number) => void (announced = total), bytes: (n: number) => void (shown += n), fileDone() {}, stop() {} };
    const snap = await pullSnapshot({ repo: "test-org/instruct-pix2pix", env, progress });
    // the progress display counts the resumed bytes once
    expect(shown).to.equal(announced);
    // the resume starts where the client's bytes on disk end: all the server sent before the cut,
    // or a little less when the last chunk was still in flight (seen on a loaded machine)
    const tries = transfersSince(mark).filter((t) => t.file === file);
    const resumedAt = (t: { range?: string }) => Number(/^bytes=(\d+)-$/.exec(t.range ?? "")?.[1] ?? NaN);
    expect(tries).to.have.length(2);
    expect([tries[0].range, tries[0].sent]).to.deep.equal([undefined, 1_000_000]);
    expect(resumedAt(tries[1])).to.be.within(1, 1_000_000);
    expect(tries[1].sent).to.equal(3_199_640 - resumedAt(tries[1]));
    const blob = readFileSync(path.join(snap.dir, file));
    expect(blob.equals(hub.repos.get("model:test-org/instruct-pix2pix")!.files.get(file)!.content)).to.equal(true);

    // a proxy that ignores Range answers 200 with the whole file: taken from the start, not appended
    const text = "text_encoder/model.safetensors";
    hub.faults.cut.set(text, 2_000_000);
    hub.faults.ignoreRange.add(text);
    try {
      const mark2 = hub.log.length;
      const again = await pullSnapshot({ repo: "test-org/instruct-pix2pix", env: hubEnv(envFor("resume-no-range")) });
      const cut = transfersSince(mark2).filter((t) => t.file === text);
      expect(cut).to.have.length(2);
      expect([cut[0].range, cut[0].sent]).to.deep.equal([undefined, 2_000_000]);
      // asked to resume, answered with the whole file
      expect(resumedAt(cut[1])).to.be.within(1, 2_000_000);
      expect(cut[1].sent).to.equal(6_440_048);
      expect(readFileSync(path.join(again.dir, text)).equals(hub.repos.get("model:test-org/instruct-pix2pix")!.files.get(text)!.content)).to.equal(true);
    } finally {
      hub.faults.ignoreRange.delete(text);
    }
  });

  it("two pulls sharing one cache at once (replicas on a volume): each file fetched once, the folder converted once", async () => {
    const env = hubEnv(envFor("concurrent"));
    const saved = process.env.REWARD_EDIT_CACHE;
    process.env.REWARD_EDIT_CACHE = envFor("concurrent").REWARD_EDIT_CACHE;
    const mark = hub.log.length;
    try {
      const pull = () => pullModel({ repo: "test-org/instruct-pix2pix", env, converterOutput: "ignore" });
      const [a, b] = await Promise.all([pull(), pull()]);
      expect(a.dir).to.equal(b.dir);
      expect([a.converted, b.converted].sort()).to.deep.equal([false, true]);
      expect(transfersSince(mark).map((t) => t.file).sort()).to.deep.equal(NEEDED);
      expect(readdirSync(path.dirname(a.dir)).filter((f) => /\.(lock|partial)/.test(f))).to.deep.equal([]);
    } finally {
      if (saved === undefined) delete process.env.REWARD_EDIT_CACHE;
      else process.env.REWARD_EDIT_CACHE = saved;
    }
  });

  it("a corrupt blob is refused in one line: deleted, never linked, nothing half-written left", async () => {
    const env = envFor("corrupt");
    const file = "vae/diffusion_pytorch_model.safetensors";
    hub.faults.corrupt.add(file);
    try {
      const r = await runCli(["models", "pull", "test-org/instruct-pix2pix"], env);
      expect(r.code).to.equal(1);
      const lines = r.stderr.trim().split("\n").filter((l) => !/^pull: /.test(l));
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/vae\/diffusion_pytorch_model\.safetensors: downloaded .* sha256 .* deleted, nothing cached/);
      const repo = hub.repos.get("model:test-org/instruct-pix2pix")!;
      const cache = new HubCache(env.HF_HUB_CACHE!, { type: "model", name: "test-org/instruct-pix2pix" });
      const sha = repo.files.get(file)!.sha256;
      expect(existsSync(cache.blob(sha))).to.equal(false);
      expect(existsSync(`${cache.blob(sha)}.incomplete`)).to.equal(false);
      expect(existsSync(path.join(cache.snapshot(repo.commit), file))).to.equal(false);
    } finally {
      hub.faults.corrupt.delete(file);
    }
  });

  it("HF_HUB_OFFLINE=1: a cache laid out by hand as huggingface_hub writes it is converted with no request; what is missing is named in one line", async () => {
    const env = envFor("offline", { HF_HUB_OFFLINE: "1", HF_ENDPOINT: await closedEndpoint() });
    const commit = commitOf("handmade");
    const folder = path.join(env.HF_HUB_CACHE!, "models--someone--handmade");
    for (const [f, file] of filesOf(path.join(GOLDEN, "ip2p-tiny"))) {
      const etag = file.lfs ? file.sha256 : file.gitOid;
      mkdirSync(path.join(folder, "blobs"), { recursive: true });
      writeFileSync(path.join(folder, "blobs", etag), file.content);
      const link = path.join(folder, "snapshots", commit, f);
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(path.relative(path.dirname(link), path.join(folder, "blobs", etag)), link);
    }
    mkdirSync(path.join(folder, "refs"), { recursive: true });
    writeFileSync(path.join(folder, "refs", "main"), commit);
    const mark = hub.log.length;
    const r = await runCli(["models", "pull", "someone/handmade"], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include("offline: from the cache");
    expect(hub.log.length).to.equal(mark);

    const missing = await runCli(["models", "pull", "someone/elsewhere"], env);
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.equal(`reward-edit: HF_HUB_OFFLINE=1 and someone/elsewhere@main is not in the cache ${env.HF_HUB_CACHE}: pull it once online (or unset HF_HUB_OFFLINE)`);
    // a snapshot without the UNet's weights
    const partial = path.join(env.HF_HUB_CACHE!, "models--someone--partial");
    cpSync(folder, partial, { recursive: true, verbatimSymlinks: true });
    execFileSync("rm", [path.join(partial, "snapshots", commit, "unet", "diffusion_pytorch_model.safetensors")]);
    const lacking = await runCli(["models", "pull", "someone/partial"], env);
    expect(lacking.code).to.equal(1);
    expect(lacking.stderr.trim().split("\n")).to.have.length(1);
    expect(lacking.stderr).to.match(/lacks: no unet weights/);
  });

  it("gated: refused without a token with a line naming HF_TOKEN; HF_TOKEN or the token file of huggingface-cli login opens it", async () => {
    const refused = await runCli(["models", "pull", "test-org/gated-pix2pix"], envFor("gated"));
    expect(refused.code).to.equal(1);
    const lines = refused.stderr.trim().split("\n").filter((l) => !/^pull: /.test(l));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^reward-edit: test-org\/gated-pix2pix is gated: .*set HF_TOKEN/);
    expect(refused.stderr).not.to.match(/\n\s+at /);

    const mark = hub.log.length;
    const withToken = await pullSnapshot({ repo: "test-org/gated-pix2pix", env: hubEnv(envFor("gated-token", { HF_TOKEN: TOKEN })) });
    expect(withToken.files).to.have.length(NEEDED.length);
    expect(transfersSince(mark).every((t) => t.url.startsWith("/lfs-store/") || t.authorization === `Bearer ${TOKEN}`)).to.equal(true);

    const fileEnv = envFor("gated-file");
    mkdirSync(fileEnv.HF_HOME!, { recursive: true });
    writeFileSync(path.join(fileEnv.HF_HOME!, "token"), `${TOKEN}\n`);
    const fromFile = await pullSnapshot({ repo: "test-org/gated-pix2pix", env: hubEnv(fileEnv) });
    expect(fromFile.commit).to.equal(withToken.commit);
  });

  it("a subfolder repository: only that folder's files, under their repository paths", async () => {
    const mark = hub.log.length;
    const snap = await pullSnapshot({ repo: "test-org/Reward-InsPix2Pix", subfolder: "stage1_instruct_pix2pix", env: hubEnv(envFor("subfolder")) });
    expect(snap.files.every((f) => f.startsWith("stage1_instruct_pix2pix/"))).to.equal(true);
    expect(snap.files).to.have.length(NEEDED.length);
    expect(transfersSince(mark).map((t) => t.file!.split("/")[0])).to.satisfy((dirs: string[]) => dirs.every((d) => d === "stage1_instruct_pix2pix"));
    expect(readdirSync(snap.dir)).to.deep.equal(["stage1_instruct_pix2pix"]);
  });

  it("REWARD_EDIT_HUB_DTYPE=int8: a hub: model is converted once into its int8 folder, beside the float32 one; a dtype nobody makes is one line", async () => {
    const env = envFor("int8", { REWARD_EDIT_HUB_DTYPE: "int8" });
    const out = path.join(root, "int8", "edited.png");
    const e = await runCli(["edit", "--model", "hub:test-org/instruct-pix2pix", "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red", "--steps", "2", "--seed", "1", "--out", out], env);
    expect(e.code, e.stderr).to.equal(0);
    const commit = hub.repos.get("model:test-org/instruct-pix2pix")!.commit;
    const dir = path.join(env.REWARD_EDIT_CACHE!, "models", "models--test-org--instruct-pix2pix", `${commit.slice(0, 12)}-int8`);
    const m = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8"));
    // weight-only int8: float32 arithmetic, and the manifest says so
    expect(m.source).to.include({ dtype: "int8", compute: "float32" });
    expect(m.source.quantized.graphs).to.include("unet");
    expect(m.source.hub).to.include({ repo: "test-org/instruct-pix2pix", commit });
    const bad = await runCli(["models", "pull", "test-org/instruct-pix2pix", "--dtype", "int4"], env);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim()).to.equal('reward-edit: --dtype must be float32, float16, int8; got "int4"');
    const badEnv = await runCli(["edit", "--model", "hub:test-org/instruct-pix2pix", "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "x", "--out", out], { ...env, REWARD_EDIT_HUB_DTYPE: "bf16" });
    expect(badEnv.code).to.not.equal(0);
    expect(badEnv.stderr).to.match(/REWARD_EDIT_HUB_DTYPE must be float32, float16, int8; got "bf16"/);
  });

  it("repository and revision not found: one line each, exit 1, no stack trace", async () => {
    const env = envFor("errors");
    const repo = await runCli(["models", "pull", "test-org/no-such-editor"], env);
    expect(repo.code).to.equal(1);
    expect(repo.stderr.trim()).to.equal("reward-edit: repository test-org/no-such-editor not found (if it is private, set HF_TOKEN (or run `huggingface-cli login`))");
    const rev = await runCli(["models", "pull", "test-org/instruct-pix2pix", "--revision", "v9"], env);
    expect(rev.code).to.equal(1);
    expect(rev.stderr.trim()).to.equal('reward-edit: revision "v9" not found in test-org/instruct-pix2pix');
    const sub = await runCli(["models", "pull", "test-org/Reward-InsPix2Pix", "--subfolder", "stage3"], env);
    expect(sub.code).to.equal(1);
    expect(sub.stderr.trim()).to.equal("reward-edit: folder stage3 not found in test-org/Reward-InsPix2Pix@main");
    const closed = await closedEndpoint();
    const down = await runCli(["models", "pull", "test-org/instruct-pix2pix"], { ...env, HF_ENDPOINT: closed });
    expect(down.code).to.equal(1);
    expect(down.stderr.trim()).to.equal(`reward-edit: cannot reach ${closed} (ECONNREFUSED): check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only`);
  });

  it("Real-Edit: bench --suite real-edit pulls the dataset, extracts its archive once and runs on it", async () => {
    // the published layout is not known here: the index at the root, its bare names inside a zip
    const stage = tempDir("real-edit-");
    mkdirSync(path.join(stage, "Real-Edit", "images"), { recursive: true });
    for (const f of ["coffee.png", "chelsea.png"]) cpSync(path.join(PHOTOS, f), path.join(stage, "Real-Edit", "images", f));
    execFileSync("zip", ["-qr", path.join(stage, "Real-Edit.zip"), "Real-Edit"], { cwd: stage });
    const index = { "coffee.png": ["1. local: make the saucer blue", "2. style: turn it into a watercolor painting"], "chelsea.png": ["1. global: make it black and white"] };
    hub.add({
      type: "dataset",
      name: "test-org/RewardEdit",
      files: new Map([
        ["real_edit_instruct.json", hubFile(Buffer.from(JSON.stringify(index)))],
        ["Real-Edit.zip", hubFile(readFileSync(path.join(stage, "Real-Edit.zip")), true)],
        ["README.md", hubFile(Buffer.from("# Real-Edit\n"))],
      ]),
    });
    const env = envFor("real-edit");
    const out = path.join(root, "real-edit", "bench");
    const r = await runCli(["bench", "--suite", "real-edit", "--dataset", "test-org/RewardEdit", "--backend", "local", "--steps", "2", "--out", out], env);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readFileSync(path.join(out, "results.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows).to.have.length(3);
    expect(JSON.parse(readFileSync(path.join(out, "run.json"), "utf8")).dataset).to.deep.equal({ repo: "test-org/RewardEdit", commit: hub.repos.get("dataset:test-org/RewardEdit")!.commit });
    expect(rows.map((x) => x.category).sort()).to.deep.equal(["global", "local", "style"]);
    expect(rows.every((x) => x.error === undefined)).to.equal(true);
    // the dataset went into the same HF cache, under datasets--; the archive into ours, once
    expect(existsSync(path.join(env.HF_HUB_CACHE!, "datasets--test-org--RewardEdit", "refs", "main"))).to.equal(true);
    const marker = path.join(env.REWARD_EDIT_CACHE!, "datasets", "datasets--test-org--RewardEdit", hub.repos.get("dataset:test-org/RewardEdit")!.commit, "Real-Edit", ".reward-edit-extracted");
    const extractedAt = statSync(marker).mtimeMs;
    const mark = hub.log.length;
    const again = await runCli(["bench", "--suite", "real-edit", "--dataset", "test-org/RewardEdit", "--backend", "local", "--steps", "2", "--out", out], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/bench: 0 edits run, 3 resumed/);
    expect(transfersSince(mark)).to.deep.equal([]);
    expect(statSync(marker).mtimeMs).to.equal(extractedAt);
  });

  it("a single-file checkpoint takes its configs from a Hub repository (default timbrooks/instruct-pix2pix): only the small files are pulled", async () => {
    hub.add({ type: "model", name: "timbrooks/instruct-pix2pix", files: withDecoys(filesOf(path.join(GOLDEN, "ip2p-tiny"))) });
    const file = path.join(root, "single.safetensors");
    writeSafetensors(file, singleFileTensors(path.join(GOLDEN, "ip2p-tiny")));
    const env = envFor("single-file");
    const mark = hub.log.length;
    const r = await runCli(["models", "convert", file, path.join(root, "single-file", "out")], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include("config: the small files of timbrooks/instruct-pix2pix (no weights)");
    expect(transfersSince(mark).map((t) => t.file!).sort()).to.deep.equal(NEEDED.filter((f) => !/safetensors$/.test(f)));
    const g = goldenInputs(path.join(GOLDEN, "ip2p-tiny"));
    const got = await convertedOutputs(path.join(root, "single-file", "out"), g);
    const want = goldenOutputs(g);
    for (const k of Object.keys(want) as Array<keyof typeof want>) expect(relativeError(got[k], want[k]), k).to.be.at.most(1e-5);

    const named = await runCli(["models", "convert", file, path.join(root, "single-file", "out2"), "--config", "test-org/no-such-configs"], env);
    expect(named.code).to.equal(1);
    expect(named.stderr.trim()).to.match(/^reward-edit: --config test-org\/no-such-configs: repository test-org\/no-such-configs not found/);
  });

  it("selection: safetensors before .bin, a variant before float32 when asked, shards from their index; never the safety checker or root copies", () => {
    const listing = [...NEEDED, "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.safetensors", "safety_checker/model.safetensors", "v1.ckpt",
      "text_encoder/model.safetensors.index.json"].map((p) => ({ path: p, size: 1 }));
    const plain = editorSelector({})(listing);
    expect(plain.problems).to.deep.equal([]);
    expect(plain.files).to.include("unet/diffusion_pytorch_model.safetensors").and.not.include("unet/diffusion_pytorch_model.bin");
    const fp16 = editorSelector({ variant: "fp16" })(listing).files;
    expect(fp16).to.include("unet/diffusion_pytorch_model.fp16.safetensors").and.include("vae/diffusion_pytorch_model.safetensors");
    const sharded = listing.filter((f) => f.path !== "text_encoder/model.safetensors").concat([{ path: "text_encoder/model-00001-of-00002.safetensors", size: 1 }, { path: "text_encoder/model-00002-of-00002.safetensors", size: 1 }]);
    const s = editorSelector({ shardsOf: () => ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] })(sharded);
    expect(s.files).to.include.members(["text_encoder/model.safetensors.index.json", "text_encoder/model-00001-of-00002.safetensors", "text_encoder/model-00002-of-00002.safetensors"]);
    for (const f of [plain, s]) expect(f.files.some((x) => /safety_checker|ckpt$/.test(x))).to.equal(false);
    const none = editorSelector({})(listing.filter((f) => !f.path.startsWith("vae/")));
    expect(none.problems).to.include("missing vae/config.json").and.satisfy((p: string[]) => p.some((x) => x.startsWith("no vae weights")));
  });

  it("hub: specs and a full disk are refused with lines a person can act on", () => {
    expect(parseHubSpec("hub:Gstar666/Reward-InsPix2Pix/stage2_reward_instruct_pix2pix@v1")).to.deep.equal({ repo: "Gstar666/Reward-InsPix2Pix", subfolder: "stage2_reward_instruct_pix2pix", revision: "v1" });
    expect(parseHubSpec("hub:timbrooks/instruct-pix2pix")).to.deep.equal({ repo: "timbrooks/instruct-pix2pix", subfolder: undefined, revision: undefined });
    expect(() => parseHubSpec("hub:pix2pix")).to.throw(/hub:NAMESPACE\/NAME\[\/SUBFOLDER\]\[@REVISION\]/);
    expect(() => checkSpace(root, 1e18)).to.throw(/^disk full: 1000000000\.00 GB more are needed in .*GB free; free space or point HF_HUB_CACHE elsewhere$/);
  });
});
