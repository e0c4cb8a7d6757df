import { expect } from "chai";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chooseSplit, loadGedit, splitFiles } from "../../src/benchmark/gedit.js";
import { CONVERTED_REVISION, geditSelector, pullGedit } from "../../src/benchmark/gedit-source.js";
import { type ResultRow, readRows } from "../../src/benchmark/results.js";
import { hubEnv } from "../../src/hub/index.js";
import { FakeJudge } from "../support/fake-judge.js";
import { KEYS, benchEnv, geditFiles, geditParquetFiles, geditRows, parquetFile } from "../support/gedit-set.js";
import { type HubFile, HubServer, commitOf, hubFile } from "../support/hub-server.js";
import { runCli, tempDir } from "../helpers.js";

const hubFiles = (files: Map<string, Buffer>) => new Map([...files].map(([p, b]) => [p, hubFile(b, /\.(arrow|parquet|png)$/.test(p))] as [string, HubFile]));

function writeFolder(dir: string, files: Map<string, Buffer>): string {
  for (const [p, b] of files) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), b);
  }
  return dir;
}

/** A row as two runs of the same data compare: the prepared images' paths (keyed by the files' version) and timings aside. */
const comparable = (rows: ResultRow[]) =>
  rows.map(({ latency: _l, image: _i, ...x }) => ({ ...x, editor: x.editor ? { ...x.editor, latencyMs: undefined } : undefined })).sort((a, b) => a.key.localeCompare(b.key));

describe("GEdit-Bench stored as Parquet (push_to_hub, refs/convert/parquet) as well as Arrow", function () {
  this.timeout(90_000);
  const root = tempDir("gedit-parquet-");
  const hub = new HubServer();
  const judge = new FakeJudge();
  let arrow: Map<string, Buffer>;
  let parquet: Map<string, Buffer>;
  let env: NodeJS.ProcessEnv = {};
  const convertCommit = commitOf("refs/convert/parquet of test-org/converted");

  before(async () => {
    arrow = await geditFiles();
    parquet = await geditParquetFiles();
    hub.add({ type: "dataset", name: "test-org/gedit-arrow", files: hubFiles(arrow) });
    hub.add({ type: "dataset", name: "test-org/gedit-parquet", files: hubFiles(parquet) });
    hub.add({ type: "dataset", name: "test-org/gedit-both", files: hubFiles(new Map([...arrow, ...parquet])) });
    const nothing = hubFiles(new Map([["README.md", Buffer.from("# not converted\n")], ["images/a.png", arrow.get("assets/overview.png")!]]));
    hub.add({ type: "dataset", name: "test-org/gedit-none", files: nothing });
    // main holds a loading script's repository (no data files); the Hub's conversion holds the split
    const rows = await geditRows();
    const main = hubFiles(new Map([["README.md", Buffer.from("# GEdit-Bench, loading script\n")], ["GEdit-Bench.py", Buffer.from("# datasets script\n")]]));
    const mainCommit = commitOf("main of test-org/converted");
    hub.add({
      type: "dataset",
      name: "test-org/converted",
      commit: mainCommit,
      files: main,
      branches: { main: mainCommit, [CONVERTED_REVISION]: convertCommit },
      trees: { [convertCommit]: hubFiles(new Map([["default/train/0000.parquet", parquetFile(rows, 5)], ["default/test/0000.parquet", parquetFile(rows.slice(0, 2))]])) },
    });
    const url = await hub.start();
    await judge.start();
    // SC from the instruction, PQ from the edit's bytes: the same inputs give the same figures, other inputs others
    judge.handler = (r) => {
      const images = FakeJudge.images(r);
      if (images.length === 2) {
        const instruction = /request: "([^"]*)"/.exec(FakeJudge.prompt(r))?.[1] ?? "";
        const i = KEYS.findIndex((k) => k.en === instruction);
        return { reply: JSON.stringify({ reasoning: "sc", score: [3 + i, 9 - (i % 3)] }) };
      }
      const h = createHash("sha256").update(images[0]).digest();
      return { reply: JSON.stringify({ reasoning: "pq", score: [h[0] % 11, 4 + (h[1] % 7)] }) };
    };
    env = benchEnv(root, url, judge.url);
  });
  after(async () => {
    await hub.stop();
    await judge.stop();
  });

  it("chooses the split's files: Arrow when listed, else data/train-*.parquet, train/*.parquet or <config>/train/*.parquet; never both; unsafe names never", () => {
    expect(chooseSplit(["data/train-00000-of-00002.parquet", "data/test-00000-of-00001.parquet", "data/train-00001-of-00002.parquet", "README.md"])).to.deep.equal({
      format: "parquet",
      files: ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"],
    });
    expect(chooseSplit(["train/0001.parquet", "train/0000.parquet", "test/0000.parquet"])!.files).to.deep.equal(["train/0000.parquet", "train/0001.parquet"]);
    expect(chooseSplit(["default/test/0000.parquet", "default/train/0000.parquet"])!.files).to.deep.equal(["default/train/0000.parquet"]);
    expect(chooseSplit(["gedit.parquet"])!.files).to.deep.equal(["gedit.parquet"]);
    // both formats: the Arrow files alone, so no row is read twice
    expect(chooseSplit([...arrow.keys(), ...parquet.keys()])).to.deep.equal({ format: "arrow", files: ["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow"] });
    expect(chooseSplit(["../train/x.parquet", "/abs/train/y.parquet", "train//z.parquet", "data\\train-0.parquet"])).to.equal(undefined);
    expect(chooseSplit(["README.md", "images/a.png"])).to.equal(undefined);

    const listing = (m: Map<string, Buffer>) => [...m].map(([p, b]) => ({ path: p, size: b.length }));
    expect(geditSelector(listing(parquet))).to.deep.equal({ files: ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"], problems: [] });
    expect(geditSelector(listing(new Map([...arrow, ...parquet]))).files).to.deep.equal(["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow", "train/dataset_info.json", "train/state.json"]);
    expect(geditSelector([{ path: "README.md", size: 1 }]).problems[0]).to.match(/^no GEdit-Bench files: looked for .*\.arrow.*data\/train-\*\.parquet, train\/\*\.parquet, <config>\/train\/\*\.parquet/);
  });

  it("--suite-path: a Parquet folder or one Parquet file gives the same rows and prepared images as the Arrow folder; a folder with both reads the Arrow files once", async () => {
    const cacheDir = path.join(root, "load-cache");
    const arrowDir = writeFolder(path.join(root, "arrow"), arrow);
    const parquetDir = writeFolder(path.join(root, "parquet"), parquet);
    const bothDir = writeFolder(writeFolder(path.join(root, "both"), arrow), parquet);
    const a = await loadGedit(arrowDir, { cacheDir });
    const p = await loadGedit(parquetDir, { cacheDir });
    const view = (s: typeof a) => s.samples.map((x) => ({ id: x.id, instruction: x.instruction, category: x.category, gedit: x.gedit }));
    expect(view(p)).to.deep.equal(view(a));
    expect(p.samples.map((x) => x.id)).to.deep.equal(KEYS.map((k) => `gedit/en/${k.task}/${k.key}`));
    for (let i = 0; i < a.samples.length; i++) {
      expect(readFileSync(p.samples[i].image).equals(readFileSync(a.samples[i].image)), p.samples[i].id).to.equal(true);
      expect(readFileSync(p.samples[i].judgeImage!).equals(readFileSync(a.samples[i].judgeImage!)), p.samples[i].id).to.equal(true);
    }
    for (const o of [{ language: "cn" as const }, { language: "cn" as const, intersection: true }, { intersection: true }]) {
      expect(view(await loadGedit(parquetDir, { ...o, cacheDir })), JSON.stringify(o)).to.deep.equal(view(await loadGedit(arrowDir, { ...o, cacheDir })));
    }
    // one file: its own rows (the second shard starts with k3's Chinese row), read row group by row group
    const one = await loadGedit(path.join(parquetDir, "data", "train-00001-of-00002.parquet"), { language: "cn", cacheDir });
    expect(one.samples.map((x) => x.gedit!.key)).to.deep.equal(["k3", "k4", "k5", "k6"]);

    expect(splitFiles(bothDir).map((f) => path.relative(bothDir, f))).to.deep.equal([path.join("train", "data-00000-of-00002.arrow"), path.join("train", "data-00001-of-00002.arrow")]);
    expect(view(await loadGedit(bothDir, { cacheDir }))).to.deep.equal(view(a));

    const r = await runCli(["bench", "--suite", "gedit-bench", "--suite-path", path.join(root, "nothing-here.parquet"), "--out", path.join(root, "x")]);
    expect(r.code).to.equal(1);
    writeFileSync(path.join(root, "broken.parquet"), Buffer.concat([Buffer.from("PAR1"), Buffer.alloc(64, 7)]));
    const broken = await loadGedit(path.join(root, "broken.parquet"), { cacheDir }).then(() => "", (e: Error) => e.message);
    expect(broken).to.match(/broken\.parquet: cannot read this Parquet file \(/).and.not.contain("\n");
    // a codec hyparquet does not read without hyparquet-compressors: the file named, in one line
    writeFileSync(path.join(root, "zstd.parquet"), parquetFile((await geditRows()).slice(0, 2), 4, { name: "ZSTD", compress: (b) => b }));
    const zstd = await loadGedit(path.join(root, "zstd.parquet"), { cacheDir }).then(() => "", (e: Error) => e.message);
    expect(zstd).to.match(/zstd\.parquet: cannot read this Parquet file \(.*compression codec: ZSTD\)$/).and.not.contain("\n");
    const empty = tempDir();
    writeFileSync(path.join(empty, "notes.txt"), "nothing");
    const none = await loadGedit(empty, { cacheDir }).then(() => "", (e: Error) => e.message);
    expect(none).to.match(/no GEdit-Bench files: looked for .*\.arrow.*\.parquet/);
  });

  let arrowReport: Record<string, unknown> = {};
  let arrowRows: ResultRow[] = [];
  it("bench from the loopback Hub: the push_to_hub Parquet repository gives the Arrow repository's rows and table, to the last digit", async () => {
    const runs: Record<string, { report: Record<string, unknown>; rows: ResultRow[]; fetched: string[] }> = {};
    for (const name of ["gedit-arrow", "gedit-parquet"]) {
      const mark = hub.log.length;
      const out = path.join(root, name);
      const r = await runCli(["bench", "--suite", "gedit-bench", "--dataset", `test-org/${name}`, "--steps", "2", "--out", out], env);
      expect(r.code, r.stderr).to.equal(0);
      runs[name] = {
        report: JSON.parse(readFileSync(path.join(out, "report.json"), "utf8")),
        rows: readRows(path.join(out, "results.jsonl")),
        fetched: hub.transfers().slice(0).filter((q) => hub.log.indexOf(q) >= mark).map((q) => q.file!).sort(),
      };
      expect(JSON.parse(readFileSync(path.join(out, "run.json"), "utf8")).dataset).to.deep.equal({ repo: `test-org/${name}`, commit: hub.repos.get(`dataset:test-org/${name}`)!.commit });
    }
    const [a, p] = [runs["gedit-arrow"], runs["gedit-parquet"]];
    expect(p.fetched).to.deep.equal(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]);
    expect(p.rows).to.have.length(6);
    expect(comparable(p.rows)).to.deep.equal(comparable(a.rows));
    // the whole GEdit table, every figure and interval, compared as the numbers JSON holds
    expect((p.report as { gedit: unknown }).gedit).to.deep.equal((a.report as { gedit: unknown }).gedit);
    const en = (a.report as { gedit: { en: { full: { sc: { value: number }; n: number; taskTypes: number } } } }).gedit.en.full;
    expect(en.n).to.equal(6);
    expect(en.taskTypes).to.equal(3);
    expect(en.sc.value).to.be.a("number");
    arrowReport = a.report;
    arrowRows = a.rows;
  });

  it("a repository holding both formats: the Arrow files alone are fetched and read, no row counted twice", async () => {
    const mark = hub.log.length;
    const out = path.join(root, "both-run");
    const r = await runCli(["bench", "--suite", "gedit-bench", "--dataset", "test-org/gedit-both", "--steps", "2", "--out", out], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(hub.log.slice(mark).filter((q) => q.file !== undefined && q.method === "GET").map((q) => q.file).sort()).to.deep.equal(["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow", "train/dataset_info.json", "train/state.json"]);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(6);
    expect(new Set(rows.map((x) => x.sample)).size).to.equal(6);
    expect(comparable(rows)).to.deep.equal(comparable(arrowRows));
    expect(JSON.parse(readFileSync(path.join(out, "report.json"), "utf8")).gedit).to.deep.equal((arrowReport as { gedit: unknown }).gedit);
  });

  it("a revision with neither format: the pull tries refs/convert/parquet, says so in one line, and reads <config>/train/0000.parquet (online, then offline from the cache)", async () => {
    const lines: string[] = [];
    const hubDir = path.join(root, "hub-convert");
    const mark = hub.log.length;
    const pulled = await pullGedit({ dataset: "test-org/converted", env: hubEnv({ ...env, HF_HUB_CACHE: hubDir }), log: (l) => lines.push(l) });
    expect(lines).to.deep.equal([`dataset test-org/converted@main holds no GEdit-Bench split as .arrow or .parquet files; trying the Hub's Parquet conversion, test-org/converted@${CONVERTED_REVISION}`]);
    expect(pulled).to.deep.include({ commit: convertCommit, revision: CONVERTED_REVISION, files: ["default/train/0000.parquet"] });
    // the revision's slashes are one path segment in the Hub's URLs, as huggingface_hub quotes it
    const urls = hub.log.slice(mark).map((q) => q.url);
    expect(urls.filter((u) => u.startsWith(`/api/datasets/test-org/converted/revision/${encodeURIComponent(CONVERTED_REVISION)}?`))).to.have.length(1);
    expect(urls.some((u) => u.includes("refs/convert"))).to.equal(false);
    expect(readFileSync(path.join(hubDir, "datasets--test-org--converted", "refs", "refs", "convert", "parquet"), "utf8")).to.equal(convertCommit);
    const suite = await loadGedit(pulled.dir, { cacheDir: path.join(root, "convert-cache") });
    expect(suite.samples.map((s) => s.gedit!.key)).to.deep.equal(KEYS.map((k) => k.key));

    lines.length = 0;
    const offline = await pullGedit({ dataset: "test-org/converted", env: hubEnv({ ...env, HF_HUB_CACHE: hubDir, HF_HUB_OFFLINE: "1" }), log: (l) => lines.push(l) });
    expect(offline).to.deep.include({ commit: convertCommit, files: ["default/train/0000.parquet"] });
    expect(lines).to.deep.equal([`dataset test-org/converted@main is not in the cache; using the cached Parquet conversion, test-org/converted@${CONVERTED_REVISION}`]);

    const out = path.join(root, "converted-run");
    const r = await runCli(["bench", "--suite", "gedit-bench", "--dataset", "test-org/converted", "--backend", "local", "--steps", "2", "--out", out], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.contain("trying the Hub's Parquet conversion, test-org/converted@refs/convert/parquet");
    expect(JSON.parse(readFileSync(path.join(out, "run.json"), "utf8")).dataset).to.deep.equal({ repo: "test-org/converted", commit: convertCommit });
    expect(readRows(path.join(out, "results.jsonl"))).to.have.length(6);
  });

  it("a repository with neither format nor a conversion: one line naming what was looked for, and nothing fetched", async () => {
    const mark = hub.log.length;
    const r = await runCli(["bench", "--suite", "gedit-bench", "--dataset", "test-org/gedit-none", "--steps", "2", "--out", path.join(root, "none")], env);
    expect(r.code).to.equal(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).to.contain("test-org/gedit-none@main holds no GEdit-Bench split").and.contain("trying the Hub's Parquet conversion");
    expect(lines.at(-1)).to.match(
      /dataset test-org\/gedit-none: no GEdit-Bench files at main nor at refs\/convert\/parquet \(revision "refs\/convert\/parquet" not found in dataset test-org\/gedit-none\); looked for .*train\/\*\.arrow.*\(data\/train-\*\.parquet, train\/\*\.parquet, <config>\/train\/\*\.parquet\)$/,
    );
    expect(r.stderr).to.not.match(/\n\s+at /);
    expect(lines).to.have.length(2);
    expect(hub.log.slice(mark).filter((q) => q.file !== undefined)).to.deep.equal([]);
    expect(existsSync(path.join(root, "none", "results.jsonl"))).to.equal(false);
  });
});
