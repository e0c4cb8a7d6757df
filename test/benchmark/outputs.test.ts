import { expect } from "chai";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Binary, Bool, Field, Struct, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import sharp from "sharp";
import { MANIFEST } from "../../src/benchmark/editors/outputs.js";
import { loadGedit } from "../../src/benchmark/gedit.js";
import { readRows } from "../../src/benchmark/results.js";
import { SAMPLE_SUITE, loadSuite } from "../../src/benchmark/suites.js";
import { PHOTOS, runCli, tempDir } from "../helpers.js";

/** Five GEdit-Bench keys (English rows) in three task types. */
const KEYS = [
  { key: "k1", task: "background_change", photo: "coffee.png", en: "put the cup on a sandy beach" },
  { key: "k2", task: "background_change", photo: "chelsea.png", en: "replace the wall with a forest" },
  { key: "k3", task: "color_alter", photo: "astronaut.png", en: "make the suit bright red" },
  { key: "k4", task: "color_alter", photo: "coffee.png", en: "turn the saucer blue" },
  { key: "k5", task: "subject-add", photo: "chelsea.png", en: "add a red ball beside the cat" },
];

const IMAGE = new Struct([new Field("bytes", new Binary(), true), new Field("path", new Utf8(), true)]);

/** GEdit-Bench's split as `datasets` saves it: one Arrow IPC stream file. */
function geditArrow(): Buffer {
  const rows = KEYS.map((k) => ({ ...k, bytes: readFileSync(path.join(PHOTOS, k.photo)) }));
  const table = new Table({
    task_type: vectorFromArray(rows.map((r) => r.task), new Utf8()),
    key: vectorFromArray(rows.map((r) => r.key), new Utf8()),
    instruction: vectorFromArray(rows.map((r) => r.en), new Utf8()),
    instruction_language: vectorFromArray(rows.map(() => "en"), new Utf8()),
    input_image: vectorFromArray(rows.map((r) => ({ bytes: r.bytes, path: null })), IMAGE),
    input_image_raw: vectorFromArray(rows.map((r) => ({ bytes: r.bytes, path: `${r.key}.png` })), IMAGE),
    Intersection_exist: vectorFromArray(rows.map(() => true), new Bool()),
  });
  return Buffer.from(tableToIPC(table, "stream"));
}

const edited = (source: string) => sharp(source).negate({ alpha: false }).png().toBuffer();
const put = (file: string, bytes: Buffer | string) => {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
};
/** A PNG cut off half-way: its header reads, its pixels do not. */
const broken = async (source: string) => {
  const b = await edited(source);
  return b.subarray(0, Math.floor(b.length / 2));
};

describe("edits made elsewhere: --outputs, check-outputs, outputs-template", function () {
  this.timeout(120_000);
  const root = tempDir("outputs-");
  const env = { REWARD_EDIT_CACHE: path.join(root, "cache") };

  it("GEdit-Bench's own layout: check-outputs lists the missing, undecodable, extra and misshapen files; bench --outputs judges the rest and keeps every row", async () => {
    const suiteDir = path.join(root, "gedit");
    put(path.join(suiteDir, "train", "data-00000-of-00001.arrow"), geditArrow());
    const suite = await loadGedit(suiteDir, { cacheDir: path.join(env.REWARD_EDIT_CACHE, "gedit-bench") });
    const sample = (key: string) => suite.samples.find((s) => s.gedit!.key === key)!;
    const out = path.join(root, "flux-outputs");
    const at = (key: string, ext: string) => path.join(out, "fullset", sample(key).gedit!.task, "en", `${key}.${ext}`);
    put(at("k1", "png"), await edited(sample("k1").image));
    // k2: no file
    put(at("k3", "png"), await broken(sample("k3").image));
    put(at("k4", "jpg"), await sharp(sample("k4").image).negate({ alpha: false }).jpeg().toBuffer());
    const m5 = await sharp(sample("k5").image).metadata();
    put(at("k5", "webp"), await sharp(sample("k5").image).resize(m5.width! * 3, m5.height!, { fit: "fill" }).webp().toBuffer());
    put(path.join(out, "fullset", "color_alter", "en", "k9.png"), await edited(sample("k1").image));
    // the official generation script's copy of the source is not an edit, nor extra
    put(path.join(out, "fullset", "color_alter", "en", "k4_SRCIMG.png"), readFileSync(sample("k4").image));

    const suiteArgs = ["--suite", "gedit-bench", "--suite-path", suiteDir];
    const check = await runCli(["bench", "check-outputs", ...suiteArgs, "--outputs", out], env);
    expect(check.code, check.stderr).to.equal(0);
    const lines = check.stdout.trim().split("\n");
    expect(lines[0]).to.equal(`${out} (GEdit-Bench layout): 3 of 5 edits usable; 1 missing, 1 undecodable, 1 extra, 1 of another aspect ratio, 0 manifest problems`);
    expect(lines.slice(1).map((l) => l.replace(/\): .*$/, "): …"))).to.deep.equal([
      "missing: gedit/en/background_change/k2 (expected fullset/background_change/en/k2.{png,jpg,jpeg,webp})",
      "undecodable: fullset/color_alter/en/k3.png (gedit/en/color_alter/k3): …",
      "extra: fullset/color_alter/en/k9.png",
      `aspect ratio: fullset/subject-add/en/k5.webp (gedit/en/subject-add/k5) is ${m5.width! * 3}x${m5.height}, its source ${m5.width}x${m5.height}`,
    ]);

    const run = path.join(root, "gedit-run");
    const r = await runCli(["bench", ...suiteArgs, "--outputs", out, "--backend", "local", "--out", run], env);
    expect(r.code, r.stderr).to.equal(0);
    // the check ran first, its summary on stderr
    expect(r.stderr).to.contain("check-outputs: ").and.contain("3 of 5 edits usable");
    const rows = readRows(path.join(run, "results.jsonl"));
    const byKey = Object.fromEntries(rows.map((x) => [x.gedit!.key, x]));
    expect(Object.fromEntries(rows.map((x) => [x.gedit!.key, x.status]))).to.deep.equal({ k1: "ok", k2: "missing", k3: "edit_failed", k4: "ok", k5: "ok" });
    expect(byKey.k2.error).to.contain("expected fullset/background_change/en/k2.{png,jpg,jpeg,webp}");
    expect(byKey.k3.error).to.match(/^fullset\/color_alter\/en\/k3\.png: not a decodable image/);
    for (const k of ["k1", "k4", "k5"]) {
      expect(byKey[k].scores!.quality.status, k).to.equal("scored");
      expect(byKey[k].editor).to.deep.equal({ kind: "outputs", name: out });
      expect(byKey[k].preset).to.equal("as delivered");
    }
    // the delivered bytes are what was judged and kept (a JPEG stays a JPEG)
    expect(byKey.k4.edited).to.match(/\.jpg$/);
    expect(readFileSync(path.join(run, "images", byKey.k4.edited!)).equals(readFileSync(at("k4", "jpg")))).to.equal(true);

    // a folder with nothing usable stops before any judging, in one line
    const empty = path.join(root, "empty");
    mkdirSync(path.join(empty, "fullset"), { recursive: true });
    const none = await runCli(["bench", ...suiteArgs, "--outputs", empty, "--out", path.join(root, "none")], env);
    expect(none.code).to.equal(1);
    expect(none.stderr.trim().split("\n").at(-1)).to.equal(`reward-edit: ${empty}: nothing usable to judge (5 missing, 0 undecodable of 5)`);
    const bare = await runCli(["bench", ...suiteArgs, "--outputs", path.join(root, "gedit"), "--out", path.join(root, "none2")], env);
    expect(bare.stderr.trim()).to.match(/no outputs\.jsonl and no fullset\/ folder \(GEdit-Bench's layout\); write one with `reward-edit bench outputs-template/);
  });

  it("a manifest for Real-Edit: outputs-template writes every sample id and its path; check-outputs and bench --outputs read it", async () => {
    const suite = await loadSuite("real-edit", SAMPLE_SUITE);
    const out = path.join(root, "real-edit-outputs");
    const suiteArgs = ["--suite", "real-edit", "--suite-path", SAMPLE_SUITE];
    const t = await runCli(["bench", "outputs-template", ...suiteArgs, "--out", out], env);
    expect(t.code, t.stderr).to.equal(0);
    const template = readFileSync(path.join(out, MANIFEST), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; path: string; instruction: string; source: string });
    expect(template.map((x) => x.id)).to.deep.equal(suite.samples.map((s) => s.id));
    expect(template.map((x) => x.instruction)).to.deep.equal(suite.samples.map((s) => s.instruction));
    expect(template[0]).to.deep.equal({ id: "images_coffee#1", path: "images_coffee_1.png", instruction: "make the saucer blue", source: suite.samples[0].image });
    expect(new Set(template.map((x) => x.path)).size).to.equal(template.length);

    // every edit where the template says, except: the first missing, the second cut off; plus one stray file,
    // one line naming no sample and one pointing outside the folder
    for (const [i, x] of template.entries()) {
      if (i === 0) continue;
      put(path.join(out, x.path), i === 1 ? await broken(suite.samples[i].image) : await edited(suite.samples[i].image));
    }
    put(path.join(out, "stray.png"), await edited(suite.samples[2].image));
    const manifest = [...template.map((x) => JSON.stringify({ id: x.id, path: x.path })), JSON.stringify({ id: "images_nowhere#1", path: "nowhere.png" }), JSON.stringify({ id: template[3].id, path: "../escape.png" })];
    writeFileSync(path.join(out, MANIFEST), manifest.join("\n") + "\n");

    const check = await runCli(["bench", "check-outputs", ...suiteArgs, "--outputs", out], env);
    expect(check.code, check.stderr).to.equal(0);
    const lines = check.stdout.trim().split("\n");
    const n = template.length;
    expect(lines[0]).to.equal(`${out} (${MANIFEST}): ${n - 2} of ${n} edits usable; 1 missing, 1 undecodable, 2 extra, 0 of another aspect ratio, 1 manifest problems`);
    expect(lines.slice(1).map((l) => l.replace(/\): .*$/, "): …"))).to.deep.equal([
      "missing: images_coffee#1 (expected images_coffee_1.png)",
      "undecodable: images_coffee_2.png (images_coffee#2): …",
      "extra: images_nowhere#1 (outputs.jsonl:13, not a sample of real-edit)",
      "extra: stray.png",
      `manifest: ${MANIFEST}:14: ${template[3].id} listed twice`,
    ]);

    const run = path.join(root, "real-edit-run");
    const r = await runCli(["bench", ...suiteArgs, "--outputs", out, "--backend", "local", "--out", run], env);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(run, "results.jsonl"));
    expect(rows).to.have.length(n);
    const status = Object.fromEntries(rows.map((x) => [x.sample, x.status]));
    expect(status).to.deep.equal(Object.fromEntries(template.map((x, i) => [x.id, i === 0 ? "missing" : i === 1 ? "edit_failed" : "ok"])));
    expect(rows.filter((x) => x.status === "ok").every((x) => x.scores!.quality.status === "scored")).to.equal(true);
    // the synthetic scenes of the suite still get their exact truth
    expect(rows.filter((x) => x.truth).length).to.equal(5);

    // a path that leaves the folder is refused, even as the only line for its sample
    writeFileSync(path.join(out, MANIFEST), JSON.stringify({ id: template[0].id, path: "../../etc/passwd" }) + "\n");
    const escape = await runCli(["bench", "check-outputs", ...suiteArgs, "--outputs", out, "--limit", "1"], env);
    expect(escape.code).to.equal(1);
    expect(escape.stdout).to.contain(`manifest: ${MANIFEST}:1: ../../etc/passwd is outside the folder`);
    expect(escape.stderr.trim()).to.equal(`reward-edit: ${out}: nothing usable to judge`);
  });
});
