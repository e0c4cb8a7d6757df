import { expect } from "chai";
import { cpSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { load } from "js-yaml";
import sharp from "sharp";
import { inspectModelFolder } from "../../editor/index.js";
import { serverConfigFrom } from "../../src/config/server.js";
import { PHOTOS, ROOT, SHARED, runCli, tempDir } from "../helpers.js";
import { HubServer, filesOf, loopbackHubEnv } from "../support/hub-server.js";
import { requireShared } from "../support/shared-data.js";

const GOLDEN = path.join(SHARED, "reference", "checkpoints", "golden");
const REPO = "test-org/instruct-pix2pix";
// one photo, so the calibration is 2 edits (both schedules) rather than the default 16: seconds on
// ip2p-tiny, where the conversion itself takes about 30 s
const CALIBRATION = path.join(PHOTOS, "coffee.png");

describe("models pull --dtype int8 --compute int8 and REWARD_EDIT_HUB_COMPUTE (loopback Hub)", function () {
  this.timeout(180_000);
  const hub = new HubServer();
  const root = tempDir("hub-compute-");
  let url = "";
  const envFor = (name: string, extra: NodeJS.ProcessEnv = {}) => loopbackHubEnv(url, path.join(root, name), extra);
  const env = () => envFor("compute");
  /** The int8-arithmetic pull, made by whichever test needs it first: each test runs alone or in any order. */
  let pulled: Promise<{ r: Awaited<ReturnType<typeof runCli>>; dir: string }> | undefined;
  const pullCompute = () =>
    (pulled ??= runCli(["models", "pull", REPO, "--dtype", "int8", "--compute", "int8", "--calibration-photos", CALIBRATION], env()).then((r) => {
      expect(r.code, r.stderr).to.equal(0);
      return { r, dir: /^ok: (\S+);/m.exec(r.stdout)![1] };
    }));

  before(async function () {
    requireShared(this, "reference/checkpoints/golden");
    url = await hub.start();
    hub.add({ type: "model", name: REPO, files: filesOf(path.join(GOLDEN, "ip2p-tiny")) });
  });
  after(() => hub.stop());

  it("converts, calibrates and records int8 weights, int8 arithmetic and the Hub source in a folder of its own that validates", async () => {
    const { r, dir } = await pullCompute();
    const commit = hub.repos.get(`model:${REPO}`)!.commit;
    expect(dir).to.equal(path.join(env().REWARD_EDIT_CACHE!, "models", "models--test-org--instruct-pix2pix", `${commit.slice(0, 12)}-int8-compute`));
    expect(r.stderr).to.match(/quantize: calibration: edit 2\/2/);
    expect(r.stdout).to.contain(`REWARD_EDIT_MODEL=hub:${REPO} REWARD_EDIT_HUB_DTYPE=int8 REWARD_EDIT_HUB_COMPUTE=int8`);
    const m = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8"));
    expect(m.source).to.include({ dtype: "int8", compute: "int8" });
    expect(m.source.hub).to.include({ repo: REPO, commit, revision: "main" });
    expect(m.source.quantized.int8_graphs).to.include.members(["unet", "unet_shallow", "vae_decoder"]);
    expect(m.source.quantized.calibration).to.include({ edits: 2 });
    expect(m.name).to.equal("instruct-pix2pix");
    expect(m.description).to.match(/converted from test-org\/instruct-pix2pix@\w{12} \(int8 arithmetic\)\.$/);
    const report = await inspectModelFolder(dir);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    expect(report.problems).to.deep.equal([]);
    // neither the staged float32 conversion nor the lock is left beside it
    expect(readdirSync(path.dirname(dir))).to.deep.equal([path.basename(dir)]);
  });

  it("the hub: form with REWARD_EDIT_HUB_DTYPE=int8 REWARD_EDIT_HUB_COMPUTE=int8 edits with that folder; a second pull finds it converted and does not calibrate again", async () => {
    const { dir } = await pullCompute();
    const out = path.join(root, "compute-edit.png");
    const e = await runCli(["edit", "--model", `hub:${REPO}`, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make it red", "--steps", "2", "--seed", "1", "--out", out], {
      ...env(),
      REWARD_EDIT_HUB_DTYPE: "int8",
      REWARD_EDIT_HUB_COMPUTE: "int8",
    });
    expect(e.code, e.stderr).to.equal(0);
    expect(e.stderr).to.contain(`cached at ${dir}`);
    expect((await sharp(out).metadata()).format).to.equal("png");

    const again = await runCli(["models", "pull", REPO, "--dtype", "int8", "--compute", "int8"], env());
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.match(/0 file\(s\), 0 bytes downloaded; already converted/);
    expect(again.stderr).to.not.match(/calibration/);
  });

  it("'already converted' compares the arithmetic: an int8-weights pull does not take the int8-arithmetic folder, and a folder from before source.compute counts as float32", async () => {
    const { dir } = await pullCompute();
    // a converter that fails at once: proof that the pull tried to convert rather than reuse
    const noPython = { ...env(), REWARD_EDIT_PYTHON: "/bin/false" };
    const copy = path.join(root, "compute-copy");
    cpSync(dir, copy, { recursive: true });
    const weights = await runCli(["models", "pull", REPO, "--dtype", "int8", "--out", copy], noPython);
    expect(weights.code).to.equal(1);
    expect(weights.stderr.trim()).to.match(/^reward-edit: converting test-org\/instruct-pix2pix@\w{12} failed \(exit 1\)/);
    expect(JSON.parse(readFileSync(path.join(copy, "reward-edit.json"), "utf8")).source.compute).to.equal("int8");

    // int8 weights converted before folders said which arithmetic they have
    const legacy = path.join(root, "legacy-int8");
    cpSync(dir, legacy, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(legacy, "reward-edit.json"), "utf8"));
    delete manifest.source.compute;
    writeFileSync(path.join(legacy, "reward-edit.json"), JSON.stringify(manifest));
    const old = await runCli(["models", "pull", REPO, "--dtype", "int8", "--out", legacy], noPython);
    expect(old.code, old.stderr).to.equal(0);
    expect(old.stderr).to.match(/already converted/);
    const computeAgain = await runCli(["models", "pull", REPO, "--dtype", "int8", "--compute", "int8", "--out", legacy], noPython);
    expect(computeAgain.code).to.equal(1);
  });

  it("--compute int8 without --dtype int8, an unknown --compute and a bad REWARD_EDIT_HUB_COMPUTE: one line each, exit 1, nothing requested", async () => {
    const mark = hub.log.length;
    const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
      [["models", "pull", REPO, "--dtype", "float32", "--compute", "int8"], {}, "--compute int8 needs --dtype int8 (int8 arithmetic runs on int8 weights); got --dtype float32"],
      [["models", "pull", REPO, "--dtype", "int8", "--compute", "fast"], {}, '--compute must be float32, int8; got "fast"'],
      [["models", "pull", REPO, "--dtype", "int8", "--calibration-photos", CALIBRATION], {}, "--calibration-photos and --instruction are for --compute int8"],
      [["models", "pull", REPO, "--dtype", "int8", "--compute", "int8", "--calibration-photos", path.join(root, "nope.png")], {}, `${path.join(root, "nope.png")}: no such calibration photo`],
      [
        ["edit", "--model", `hub:${REPO}`, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "x", "--out", path.join(root, "x.png")],
        { REWARD_EDIT_HUB_DTYPE: "int8", REWARD_EDIT_HUB_COMPUTE: "bogus" },
        'REWARD_EDIT_HUB_COMPUTE must be float32, int8; got "bogus"',
      ],
      [
        ["edit", "--model", `hub:${REPO}`, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "x", "--out", path.join(root, "x.png")],
        { REWARD_EDIT_HUB_COMPUTE: "int8" },
        "REWARD_EDIT_HUB_COMPUTE=int8 needs REWARD_EDIT_HUB_DTYPE=int8 (int8 arithmetic runs on int8 weights); got REWARD_EDIT_HUB_DTYPE=float32",
      ],
    ];
    for (const [args, extra, line] of cases) {
      const r = await runCli(args, envFor("errors", extra));
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).to.equal(1);
      expect(r.stderr.trim(), args.join(" ")).to.equal(`reward-edit: ${line}`);
    }
    expect(hub.log.slice(mark)).to.deep.equal([]);
  });

  it("the server refuses REWARD_EDIT_HUB_COMPUTE=bogus and int8 arithmetic on float32 weights at startup, in one line; the shipped ConfigMap's pair is valid", async () => {
    const serve = (extra: NodeJS.ProcessEnv) => runCli(["serve"], envFor("serve", { PORT: "0", HOST: "127.0.0.1", REWARD_EDIT_MODEL: `hub:${REPO}`, ...extra }));
    const bogus = await serve({ REWARD_EDIT_HUB_DTYPE: "int8", REWARD_EDIT_HUB_COMPUTE: "bogus" });
    expect(bogus.code).to.equal(1);
    expect(bogus.stderr.trim().split("\n"), bogus.stderr).to.have.length(1);
    expect(bogus.stderr).to.match(/^reward-edit: invalid configuration: REWARD_EDIT_HUB_COMPUTE="bogus": /);
    const mixed = await serve({ REWARD_EDIT_HUB_DTYPE: "float16", REWARD_EDIT_HUB_COMPUTE: "int8" });
    expect(mixed.code).to.equal(1);
    expect(mixed.stderr.trim()).to.equal(
      "reward-edit: invalid configuration: REWARD_EDIT_HUB_COMPUTE=int8 needs REWARD_EDIT_HUB_DTYPE=int8 (int8 arithmetic runs on int8 weights); got REWARD_EDIT_HUB_DTYPE=float16",
    );
    expect(serverConfigFrom({ REWARD_EDIT_HUB_DTYPE: "int8", REWARD_EDIT_HUB_COMPUTE: "int8" })).to.include({ hubDtype: "int8", hubCompute: "int8" });
    const configMap = load(readFileSync(path.join(ROOT, "k8s", "configmap.yaml"), "utf8")) as { data: Record<string, string> };
    expect(serverConfigFrom(configMap.data)).to.include({ hubDtype: "int8", hubCompute: "float32" });
    expect(serverConfigFrom({})).to.include({ hubDtype: "float32", hubCompute: "float32" });
  });
});
