import { expect } from "chai";
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Binary, Bool, Field, Struct, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import sharp from "sharp";
import { containedPath, relativePathProblem, segmentProblem } from "../../src/benchmark/contained-path.js";
import { loadGedit, strictBoolean } from "../../src/benchmark/gedit.js";
import { loadRealEdit } from "../../src/benchmark/suites.js";
import { PHOTOS, runCli, tempDir } from "../helpers.js";

const IMAGE = new Struct([new Field("bytes", new Binary(), true), new Field("path", new Utf8(), true)]);

interface Row {
  task: string;
  key: string;
  inter: unknown;
  raw?: Buffer;
}

/**
 * One GEdit-Bench shard as `datasets` writes it, with Intersection_exist stored as text (as a CSV
 * or pandas round trip leaves it) or as Arrow booleans (nulls allowed).
 */
function geditFolder(rows: Row[], inter: "text" | "bool", photo: Buffer): string {
  const dir = tempDir("gedit-loose-");
  const table = new Table({
    task_type: vectorFromArray(rows.map((r) => r.task), new Utf8()),
    key: vectorFromArray(rows.map((r) => r.key), new Utf8()),
    instruction: vectorFromArray(rows.map((r) => `edit ${r.key}`), new Utf8()),
    instruction_language: vectorFromArray(rows.map(() => "en"), new Utf8()),
    input_image: vectorFromArray(rows.map(() => ({ bytes: photo, path: null })), IMAGE),
    input_image_raw: vectorFromArray(rows.map((r) => ({ bytes: r.raw ?? photo, path: null })), IMAGE),
    Intersection_exist: inter === "text" ? vectorFromArray(rows.map((r) => r.inter as string), new Utf8()) : vectorFromArray(rows.map((r) => r.inter as boolean | null), new Bool()),
  });
  mkdirSync(path.join(dir, "train"));
  writeFileSync(path.join(dir, "train", "data-00000-of-00001.arrow"), tableToIPC(table, "stream"));
  return dir;
}

/** Every file below `dir`, relative. */
function filesBelow(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; parentPath?: string; path?: string; name: string }>)
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path ?? dir, e.name)))
    .sort();
}

const rejection = (p: Promise<unknown>) => p.then(() => expect.fail("accepted"), (e: Error) => e.message);

describe("loose input reads: GEdit-Bench rows and Real-Edit index names (finding 14)", function () {
  this.timeout(60_000);
  let photo: Buffer;
  before(async () => {
    // small, so the many folders below prepare quickly
    photo = await sharp(readFileSync(path.join(PHOTOS, "coffee.png"))).resize(64, 48).png().toBuffer();
  });

  it("path helpers: one plain segment, a relative path of plain segments, and a path that stays inside its root", () => {
    for (const bad of ["", ".", "..", "a/b", "a\\b", "a\0b"]) expect(segmentProblem(bad), bad).to.be.a("string");
    for (const good of ["k1", "subject-add", "...", ".hidden", "a b"]) expect(segmentProblem(good), good).to.equal(null);
    for (const bad of ["/etc/passwd", "C:\\x.png", "C:/x.png", "../x.png", "images/../../x.png", "images//a.png", "images/", "./a.png", "images\\a.png", "a\0.png", ""]) {
      expect(relativePathProblem(bad), JSON.stringify(bad)).to.be.a("string");
    }
    expect(relativePathProblem("images/a b.png")).to.equal(null);
    const root = tempDir();
    expect(containedPath(root, "a/b.png")).to.equal(path.join(root, "a", "b.png"));
    expect(() => containedPath(root, "../b.png")).to.throw(/"\.\." segment/);
  });

  it("GEdit-Bench: Intersection_exist is read strictly; the text \"False\" is false, anything unknown is refused naming the row", async () => {
    expect([true, false, "True", "False", "true", "false", "1", "0"].map(strictBoolean)).to.deep.equal([true, false, true, false, true, false, true, false]);
    for (const v of ["", "no", "FALSE ", "yes", 1, 0, null, undefined]) expect(strictBoolean(v), String(v)).to.equal(undefined);

    const spellings = ["False", "True", "false", "true", "0", "1"];
    const dir = geditFolder(spellings.map((inter, i) => ({ task: "color_alter", key: `k${i}`, inter })), "text", photo);
    const cacheDir = tempDir();
    const all = await loadGedit(dir, { cacheDir });
    expect(all.samples.map((s) => [s.gedit!.key, s.gedit!.intersection])).to.deep.equal([["k0", false], ["k1", true], ["k2", false], ["k3", true], ["k4", false], ["k5", true]]);
    const inter = await loadGedit(dir, { cacheDir, intersection: true });
    expect(inter.samples.map((s) => s.gedit!.key)).to.deep.equal(["k1", "k3", "k5"]);

    for (const bad of ["no", "", "FALSE"]) {
      const d = geditFolder([{ task: "color_alter", key: "ok", inter: "True" }, { task: "color_alter", key: "odd", inter: bad }], "text", photo);
      const msg = await rejection(loadGedit(d, { cacheDir: tempDir() }));
      expect(msg).to.match(new RegExp(`data-00000-of-00001\\.arrow: row 1 \\(key "odd", task "color_alter"\\): Intersection_exist is ${JSON.stringify(bad)}; expected true or false`));
      expect(msg).to.not.contain("\n");
    }
    // a null in a boolean column is not "false" either
    const nulls = geditFolder([{ task: "color_alter", key: "n", inter: null }], "bool", photo);
    expect(await rejection(loadGedit(nulls, { cacheDir: tempDir() }))).to.match(/row 0 \(key "n", task "color_alter"\): Intersection_exist is null/);
  });

  it("GEdit-Bench: a task type or key that is not one plain file name is refused in one line, and nothing is written outside the folder", async () => {
    const cases: Array<{ task: string; key: string; field: string; why: RegExp }> = [
      { task: "..", key: "k", field: "task_type", why: /leaves its folder \(a "\.\." segment\)/ },
      { task: "color_alter", key: "..", field: "key", why: /leaves its folder \(a "\.\." segment\)/ },
      { task: "color_alter", key: "../../escape", field: "key", why: /path separator/ },
      { task: "a\\..\\..", key: "k", field: "task_type", why: /path separator/ },
      { task: "color_alter", key: "", field: "key", why: /is empty/ },
      { task: "color_alter", key: "k\0", field: "key", why: /NUL/ },
    ];
    for (const c of cases) {
      const dir = geditFolder([{ task: "color_alter", key: "fine", inter: true }, { task: c.task, key: c.key, inter: true }], "bool", photo);
      const outer = tempDir();
      const cacheDir = path.join(outer, "cache", "gedit-bench");
      const msg = await rejection(loadGedit(dir, { cacheDir }));
      expect(msg, JSON.stringify(c)).to.match(/data-00000-of-00001\.arrow: row 1 \(key .*, task .*\): /);
      expect(msg, JSON.stringify(c)).to.contain(`: ${c.field} `).and.match(c.why).and.contain("one plain file name");
      expect(msg).to.not.contain("\n");
      // what the good row prepared lies inside the cache folder; nothing beside it
      expect(filesBelow(outer).every((f) => f.startsWith(path.join("cache", "gedit-bench") + path.sep)), filesBelow(outer).join(", ")).to.equal(true);
    }
  });

  it("GEdit-Bench: keys a file name must change still get files of their own", async () => {
    const dir = geditFolder([{ task: "color_alter", key: "a b", inter: true }, { task: "color_alter", key: "a_b", inter: true }, { task: "color_alter", key: "a:b", inter: true }], "bool", photo);
    const s = await loadGedit(dir, { cacheDir: tempDir() });
    expect(new Set(s.samples.map((x) => x.image)).size).to.equal(3);
    expect(path.basename(s.samples[1].image)).to.equal("a_b.input.png");
  });

  it("GEdit-Bench: an image that does not decode names its row and column, even when a later row is refused first", async () => {
    const junk = Buffer.from("this is not an image");
    const dir = geditFolder([{ task: "color_alter", key: "good", inter: true }, { task: "style_change", key: "broken", inter: true, raw: junk }], "bool", photo);
    const msg = await rejection(loadGedit(dir, { cacheDir: tempDir() }));
    expect(msg).to.match(/data-00000-of-00001\.arrow: row 1 \(key "broken", task "style_change"\): input_image_raw is not a decodable image \(/);
    expect(msg).to.not.contain("\n");

    // the broken image's preparation is still running when row 2 is refused: its failure must not go unhandled
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const both = geditFolder([{ task: "color_alter", key: "broken", inter: true, raw: junk }, { task: "color_alter", key: "..", inter: true }], "bool", photo);
      expect(await rejection(loadGedit(both, { cacheDir: tempDir() }))).to.match(/row 1 .*: key is refused \(it leaves its folder/);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).to.deep.equal([]);
  });

  it("GEdit-Bench through the CLI: a hostile key is one line, exit 1", async () => {
    const dir = geditFolder([{ task: "color_alter", key: "..", inter: true }], "bool", photo);
    const r = await runCli(["bench", "--suite", "gedit-bench", "--suite-path", dir, "--backend", "local", "--out", path.join(tempDir(), "out")], { REWARD_EDIT_CACHE: tempDir() });
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
    expect(r.stderr).to.match(/row 0 \(key "\.\.", task "color_alter"\): key is refused \(it leaves its folder/);
  });

  /** A Real-Edit folder: `index` as real_edit_instruct.json, the photo as images/a.png, and a secret beside the folder. */
  function realEdit(index: Record<string, unknown> | string): { root: string; dir: string; secret: string } {
    const root = tempDir("real-edit-loose-");
    const dir = path.join(root, "suite");
    mkdirSync(path.join(dir, "images"), { recursive: true });
    writeFileSync(path.join(dir, "images", "a.png"), photo);
    const secret = path.join(root, "secret.png");
    writeFileSync(secret, photo);
    writeFileSync(path.join(dir, "real_edit_instruct.json"), typeof index === "string" ? index : JSON.stringify(index, null, 2));
    return { root, dir, secret };
  }

  it("Real-Edit: index names outside the images folder are refused in one line naming the index line and sample", async () => {
    const good = { "images/a.png": ["1. local: make it blue"] };
    const names: Array<[string, RegExp]> = [
      ["../secret.png", /"\.\." segment/],
      ["images/../../secret.png", /"\.\." segment/],
      ["/etc/passwd", /is absolute/],
      ["images\\a.png", /contains a backslash/],
      ["images/a\0.png", /NUL byte/],
      ["images//a.png", /has an empty segment/],
    ];
    for (const [name, why] of names) {
      const { dir } = realEdit({ ...good, [name]: ["1. local: read this"] });
      const msg = await rejection(loadRealEdit(dir));
      // line 1 is "{", 2-4 the good entry
      expect(msg, name).to.contain(`${path.join(dir, "real_edit_instruct.json")}:5: ${JSON.stringify(name)} (sample `).and.match(why);
      expect(msg).to.not.contain("\n");
    }
  });

  it("Real-Edit: a name that reaches out through a symbolic link (file or folder) is refused; links inside the folder are fine", async () => {
    const { dir, secret, root } = realEdit({ "images/a.png": ["1. local: make it blue"], "images/link.png": ["1. global: steal"] });
    symlinkSync(secret, path.join(dir, "images", "link.png"));
    expect(await rejection(loadRealEdit(dir))).to.match(/real_edit_instruct\.json:\d+: "images\/link\.png" \(sample images_link#1\): the image resolves outside/);

    const viaFolder = realEdit({ "images/sub/secret.png": ["1. global: steal"] });
    symlinkSync(viaFolder.root, path.join(viaFolder.dir, "images", "sub"));
    expect(await rejection(loadRealEdit(viaFolder.dir))).to.match(/"images\/sub\/secret\.png" \(sample images_sub_secret#1\): the image resolves outside/);

    const inside = realEdit({ "images/alias.png": ["1. local: make it blue"] });
    symlinkSync("a.png", path.join(inside.dir, "images", "alias.png"));
    const s = await loadRealEdit(inside.dir);
    expect(s.samples.map((x) => [x.id, x.image])).to.deep.equal([["images_alias#1", path.join(inside.dir, "images", "alias.png")]]);
    expect(root).to.be.a("string");
  });

  it("Real-Edit: a Hub snapshot's links into its own blobs are its images; a folder only named like one widens nothing", async () => {
    // <cache>/datasets--o--n/snapshots/<commit>/images/a.png -> ../../../blobs/<etag>, as huggingface_hub writes it
    const cache = tempDir("hub-layout-");
    const repo = path.join(cache, "datasets--o--n");
    const snap = path.join(repo, "snapshots", "0123456789abcdef0123456789abcdef01234567");
    mkdirSync(path.join(repo, "blobs"), { recursive: true });
    mkdirSync(path.join(snap, "images"), { recursive: true });
    writeFileSync(path.join(repo, "blobs", "etag1"), photo);
    symlinkSync(path.join("..", "..", "..", "blobs", "etag1"), path.join(snap, "images", "a.png"));
    writeFileSync(path.join(snap, "real_edit_instruct.json"), JSON.stringify({ "images/a.png": ["1. local: make it blue"] }));
    const s = await loadRealEdit(snap);
    expect(s.samples.map((x) => x.id)).to.deep.equal(["images_a#1"]);
    // the index's folder and the images' apart (a bare name resolved in another folder)
    const bare = path.join(cache, "index-only");
    mkdirSync(bare);
    writeFileSync(path.join(bare, "real_edit_instruct.json"), JSON.stringify({ "a.png": ["1. local: make it blue"] }));
    expect((await loadRealEdit(bare, "real-edit", path.join(snap, "images"))).samples[0].image).to.equal(path.join(snap, "images", "a.png"));

    // the same shape where "blobs" is itself a link to the whole file system: not a Hub cache's blobs
    const fake = path.join(tempDir("fake-hub-"), "datasets--o--n");
    const fakeSnap = path.join(fake, "snapshots", "0123456789abcdef0123456789abcdef01234567");
    mkdirSync(path.join(fakeSnap, "images"), { recursive: true });
    symlinkSync("/", path.join(fake, "blobs"));
    const outside = path.join(tempDir(), "outside.png");
    writeFileSync(outside, photo);
    symlinkSync(outside, path.join(fakeSnap, "images", "a.png"));
    writeFileSync(path.join(fakeSnap, "real_edit_instruct.json"), JSON.stringify({ "images/a.png": ["1. local: steal"] }));
    expect(await rejection(loadRealEdit(fakeSnap))).to.match(/the image resolves outside/);
  });

  it("Real-Edit: instructions that are not text, and an index that is not an object, are one line each", async () => {
    const { dir } = realEdit({ "images/a.png": [42] });
    expect(await rejection(loadRealEdit(dir))).to.match(/:2: "images\/a\.png" \(sample images_a#1\): the instructions must be a string or a list of strings/);
    const notObject = realEdit("[1, 2]");
    expect(await rejection(loadRealEdit(notObject.dir))).to.match(/not an object of image name -> instructions/);
  });

  it("Real-Edit through the CLI: a hostile index is one line, exit 1", async () => {
    const { dir } = realEdit({ "../secret.png": ["1. global: steal"] });
    const r = await runCli(["bench", "--suite", "real-edit", "--suite-path", dir, "--backend", "local", "--out", path.join(tempDir(), "out")]);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
    expect(r.stderr).to.match(/real_edit_instruct\.json:2: "\.\.\/secret\.png" \(sample _secret#1\): the image name is refused: it leaves its folder \(a "\.\." segment\)/);
  });
});
