import { expect } from "chai";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { geditDimensions, loadGedit, pickSplit } from "../../src/benchmark/gedit.js";
import { NO_SPLIT, geditSelector } from "../../src/benchmark/gedit-source.js";
import { geditTables } from "../../src/benchmark/gedit-metrics.js";
import { type ResultRow, readRows } from "../../src/benchmark/results.js";
import { FakeJudge, type RecordedRequest } from "../support/fake-judge.js";
import { KEYS, benchEnv, geditFiles } from "../support/gedit-set.js";
import { HubServer, hubFile } from "../support/hub-server.js";
import { PHOTOS, runCli, tempDir } from "../helpers.js";

/**
 * What the loopback judge answers for each English row, attempt by attempt: VIEScore JSON,
 * sloppy JSON (Python dict, code fence, broken quoting, out of range) and garbage. The figures are
 * chosen so SC * PQ is a square: O is a whole number to check by hand.
 */
const SCRIPT: Record<string, { sc: string[]; pq: string[] }> = {
  k1: { sc: ['{"reasoning": "the cup is on sand", "score": [4, 7]}'], pq: ["{'reasoning': 'clean', 'score': [9, 10],}"] },
  k2: { sc: ['```json\n{"score": [8, 9], "reasoning": "a forest, little else changed"}\n```'], pq: ['Sure. {"reasoning": "a "soft" look", "score": [2, 6]} That is all.'] },
  k3: { sc: ['{"reasoning": "red suit", "score": [9, 10]}'], pq: ['{"reasoning": "fine", "score": [10, 9]}'] },
  k4: { sc: ["I cannot decide about this one.", '{"reasoning": "barely blue", "score": [1, 3]}'], pq: ['{"reasoning": "soft", "score": [4, 8]}'] },
  k5: { sc: ['{"reasoning": "a ball, badly", "score": [3, 3]}'], pq: ["The weather is nice today.", "Still thinking about the weather."] },
  k6: { sc: ['{"reasoning": "flag", "score": [11, 5]}', '{"reasoning": "a flag", "score": [5, 6]}'], pq: ['{"reasoning": "ok", "score": [5, 5]}'] },
};

/** By hand from SCRIPT: SC = min of its list, PQ = min of its list, O = sqrt(SC * PQ) per row. */
const EXPECTED_EN = {
  full: {
    n: 5,
    rows: 6,
    unscored: 1,
    taskTypes: 3,
    // background_change (SC 4, 8; PQ 9, 2; O 6, 4), color_alter (9, 1; 9, 4; 9, 2), subject-add (5; 5; 5; k5 unscored)
    tasks: { background_change: { sc: 6, pq: 5.5, o: 5, n: 2 }, color_alter: { sc: 5, pq: 6.5, o: 5.5, n: 2 }, "subject-add": { sc: 5, pq: 5, o: 5, n: 1 } },
    // the unweighted mean of the three task means (a mean over the five rows would give SC 5.4)
    sc: (6 + 5 + 5) / 3,
    pq: (5.5 + 6.5 + 5) / 3,
    o: (5 + 5.5 + 5) / 3,
  },
  intersection: {
    n: 3,
    rows: 4,
    unscored: 1,
    taskTypes: 2,
    tasks: { background_change: { sc: 4, pq: 9, o: 6, n: 1 }, color_alter: { sc: 5, pq: 6.5, o: 5.5, n: 2 }, "subject-add": { sc: null, pq: null, o: null, n: 0 } },
    sc: (4 + 5) / 2,
    pq: (9 + 6.5) / 2,
    o: (6 + 5.5) / 2,
  },
};

const sha = (b: Buffer) => createHash("sha1").update(b).digest("hex");
const close = (a: number | null, b: number | null) => (a === null || b === null ? a === b : Math.abs(a - b) < 1e-9);

function expectSet(actual: Record<string, unknown>, expected: (typeof EXPECTED_EN)["full"] | (typeof EXPECTED_EN)["intersection"], label: string): void {
  type Fig = { value: number | null; ci: [number, number] | null; n: number };
  const a = actual as { sc: Fig; pq: Fig; o: Fig; n: number; rows: number; unscored: number; taskTypes: number; tasks: Record<string, { sc: Fig; pq: Fig; o: Fig; n: number }> };
  expect({ n: a.n, rows: a.rows, unscored: a.unscored, taskTypes: a.taskTypes }, label).to.deep.equal({ n: expected.n, rows: expected.rows, unscored: expected.unscored, taskTypes: expected.taskTypes });
  // every figure carries its 95 % bootstrap interval around it
  for (const k of ["sc", "pq", "o"] as const) {
    expect(close(a[k].value!, expected[k]), `${label} ${k}: ${a[k].value} vs ${expected[k]}`).to.equal(true);
    expect(a[k].ci![0] <= a[k].value! && a[k].value! <= a[k].ci![1], `${label} ${k} interval`).to.equal(true);
  }
  expect(Object.keys(a.tasks), label).to.deep.equal(Object.keys(expected.tasks));
  for (const [task, e] of Object.entries(expected.tasks)) {
    const t = a.tasks[task];
    expect(t.n, `${label} ${task} n`).to.equal(e.n);
    for (const k of ["sc", "pq", "o"] as const) expect(close(t[k].value!, e[k]), `${label} ${task} ${k}: ${t[k].value} vs ${e[k]}`).to.equal(true);
  }
}

describe("GEdit-Bench: the suite, VIEScore judging and its table", function () {
  this.timeout(120_000);
  const root = tempDir("gedit-");
  const hub = new HubServer();
  const judge = new FakeJudge();
  let files: Map<string, Buffer>;
  let folder = "";
  let env: NodeJS.ProcessEnv = {};
  const byInstruction = new Map(KEYS.map((k) => [k.en, k]));
  /** Replies given per (row, question) in the current run, for the retries. */
  let asked = new Map<string, number>();
  /** The edited image (as sent) of each row whose SC question came in: PQ's request carries only the image. */
  let editedOf = new Map<string, string>();
  let checkRequest: (r: RecordedRequest, images: Buffer[]) => Promise<void> = async () => {};
  const problems: string[] = [];

  const reply = (key: string, q: "sc" | "pq") => {
    const n = asked.get(`${key}/${q}`) ?? 0;
    asked.set(`${key}/${q}`, n + 1);
    const list = SCRIPT[key][q];
    return list[Math.min(n, list.length - 1)];
  };
  const fresh = () => {
    asked = new Map();
    editedOf = new Map();
    judge.requests.length = 0;
  };

  before(async () => {
    files = await geditFiles();
    folder = path.join(root, "folder");
    for (const [p, b] of files) {
      mkdirSync(path.dirname(path.join(folder, p)), { recursive: true });
      writeFileSync(path.join(folder, p), b);
    }
    hub.add({ type: "dataset", name: "test-org/GEdit-Bench", files: new Map([...files].map(([p, b]) => [p, hubFile(b, p.endsWith(".arrow") || p.endsWith(".png"))])) });
    const url = await hub.start();
    await judge.start();
    judge.handler = async (r) => {
      const images = FakeJudge.images(r);
      await checkRequest(r, images).catch((e: Error) => problems.push(e.message));
      if (images.length === 2) {
        const instruction = /request: "([^"]*)"/.exec(FakeJudge.prompt(r))?.[1] ?? "";
        const k = byInstruction.get(instruction);
        if (!k) return { reply: "unknown request" };
        editedOf.set(sha(images[1]), k.key);
        return { reply: reply(k.key, "sc") };
      }
      // the PQ question of a row is sent together with its SC question: wait for that one to name the row
      const h = sha(images[0]);
      for (let i = 0; i < 300 && !editedOf.has(h); i++) await new Promise((res) => setTimeout(res, 10));
      const key = editedOf.get(h);
      return { reply: key ? reply(key, "pq") : "no such row" };
    };
    env = benchEnv(root, url, judge.url);
  });
  after(async () => {
    await hub.stop();
    await judge.stop();
  });

  it("reads the Arrow split: languages, intersection, task types; inputs at ~512x512 area in multiples of 32, judged source = input_image", async () => {
    expect(geditDimensions(600 / 400)).to.deep.equal({ width: 640, height: 416 });
    expect(geditDimensions(1)).to.deep.equal({ width: 512, height: 512 });
    expect(geditDimensions(451 / 300)).to.deep.equal({ width: 640, height: 416 });
    expect(pickSplit(["test/data-00000-of-00001.arrow", "train/data-00001-of-00002.arrow", "train/data-00000-of-00002.arrow", "x.json"])).to.deep.equal(["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow"]);
    const listing = [...files].map(([p, b]) => ({ path: p, size: b.length }));
    expect(geditSelector(listing)).to.deep.equal({ files: ["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow", "train/dataset_info.json", "train/state.json"], problems: [] });
    expect(geditSelector([{ path: "README.md", size: 1 }]).problems).to.deep.equal([NO_SPLIT]);

    const cacheDir = path.join(root, "load-cache");
    const en = await loadGedit(folder, { cacheDir });
    expect(en.samples.map((s) => s.id)).to.deep.equal(KEYS.map((k) => `gedit/en/${k.task}/${k.key}`));
    expect(en.samples.map((s) => s.instruction)).to.deep.equal(KEYS.map((k) => k.en));
    expect(en.samples.map((s) => s.category)).to.deep.equal(KEYS.map((k) => k.task));
    const cn = await loadGedit(folder, { language: "cn", intersection: true, cacheDir });
    expect(cn.samples.map((s) => s.gedit)).to.deep.equal(KEYS.filter((k) => k.inter).map((k) => ({ task: k.task, language: "cn", intersection: true, key: k.key })));
    for (const s of en.samples) {
      const input = await sharp(s.image).metadata();
      const k = KEYS.find((x) => s.id.endsWith(`/${x.key}`))!;
      const photo = await sharp(path.join(PHOTOS, k.photo)).metadata();
      expect(input.width! % 32, s.id).to.equal(0);
      expect(input.height! % 32, s.id).to.equal(0);
      expect(input).to.include(geditDimensions(photo.width! / photo.height!));
      expect(Math.abs(input.width! * input.height! - 512 * 512) / (512 * 512), s.id).to.be.below(0.1);
      // the edit starts from the raw photo (in colour), the judge compares with input_image (grey, 320 x 320)
      const colour = (await sharp(s.image).stats()).channels;
      expect(Math.abs(colour[0].mean - colour[2].mean), s.id).to.be.above(2);
      expect(await sharp(s.judgeImage!).metadata()).to.include({ width: 320, height: 320 });
    }
    await loadGedit(path.join(folder, "README.md"), { cacheDir }).then(
      () => expect.fail("a file that is not Arrow was read"),
      (e: Error) => expect(e.message).to.match(/README\.md: not an Arrow IPC file/),
    );
  });

  let judged = "";
  it("bench --suite gedit-bench from the loopback Hub with a VIEScore judge: the aggregation matches the figures computed by hand", async () => {
    fresh();
    checkRequest = async (r, images) => {
      const sizes = await Promise.all(images.map(async (b) => { const m = await sharp(b).metadata(); return `${m.width}x${m.height}`; }));
      if (images.length === 2) {
        // SC: input_image (grey) and the edit brought to its size, then the instruction
        const s = await sharp(images[0]).stats();
        if (Math.abs(s.channels[0].mean - s.channels[2].mean) > 2) throw new Error("SC's first image is not input_image");
        if (sizes[0] !== sizes[1] || sizes[0] !== "512x512") throw new Error(`SC images ${sizes.join(", ")}`);
      } else if (images.length !== 1 || /request:/.test(FakeJudge.prompt(r))) throw new Error("PQ is asked about the edit alone, with no instruction");
    };
    const mark = hub.log.length;
    judged = path.join(root, "judged");
    const args = ["bench", "--suite", "gedit-bench", "--dataset", "test-org/GEdit-Bench", "--steps", "2", "--out", judged];
    const r = await runCli(args, env);
    expect(r.code, r.stderr).to.equal(0);
    expect(problems).to.deep.equal([]);
    // only the split's Arrow files and their json were fetched
    expect(hub.log.slice(mark).filter((q) => q.file !== undefined && q.method === "GET").map((q) => q.file).sort()).to.deep.equal(["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow", "train/dataset_info.json", "train/state.json"]);
    const run = JSON.parse(readFileSync(path.join(judged, "run.json"), "utf8"));
    expect(run).to.deep.include({ suite: "gedit-bench", dataset: { repo: "test-org/GEdit-Bench", commit: hub.repos.get("dataset:test-org/GEdit-Bench")!.commit }, language: "en", intersection: false, protocol: "viescore", backend: "judge" });

    // 6 SC + 6 PQ questions, and one more for each unusable answer: k4's and k6's SC (garbage, out of range), k5's PQ
    expect(judge.requests).to.have.length(15);
    const rows = readRows(path.join(judged, "results.jsonl"));
    expect(rows).to.have.length(6);
    const row = (key: string) => rows.find((x) => x.gedit?.key === key)!;
    expect(row("k1").viescore).to.deep.include({ o: 6 });
    expect(row("k1").viescore!.sc).to.deep.include({ status: "scored", score: 4, lists: [[4, 7]], reason: "the cup is on sand" });
    expect(row("k1").viescore!.pq).to.deep.include({ status: "scored", score: 9, lists: [[9, 10]] });
    expect(row("k2").viescore!.pq.lists).to.deep.equal([[2, 6]]);
    expect(row("k6").viescore!.sc.lists).to.deep.equal([[5, 6]]);
    // unscored stays unscored: no PQ, no O, the replies kept
    const k5 = row("k5").viescore!;
    expect(k5.sc.score).to.equal(3);
    expect(k5.pq).to.deep.include({ status: "unscored", lists: [] });
    expect(k5.pq.score).to.equal(undefined);
    expect(k5.o).to.equal(undefined);
    expect(k5.pq.raw).to.contain("weather");
    // the project's perspectives carry the sub-scores halved (0..5)
    expect(row("k3").scores!.following).to.include({ status: "scored", score: 4.5 });
    expect(row("k3").scores!.quality).to.include({ status: "scored", score: 4.5 });
    expect(row("k1").gedit).to.deep.equal({ task: "background_change", language: "en", intersection: true, key: "k1" });

    const report = JSON.parse(readFileSync(path.join(judged, "report.json"), "utf8"));
    expect(Object.keys(report.gedit)).to.deep.equal(["en"]);
    expectSet(report.gedit.en.full, EXPECTED_EN.full, "full");
    expectSet(report.gedit.en.intersection, EXPECTED_EN.intersection, "intersection");
    expect(report.geditJudge).to.equal("viescore-v1, judge fake-vlm");
    const md = readFileSync(path.join(judged, "summary.md"), "utf8");
    expect(md).to.contain("### GEdit-Bench-EN");
    // two rows resample to means of 4, 6 or 8 (SC): the interval spans the extremes; one row's interval has no width
    expect(md).to.contain("| background_change | 2 | 6.000 [4.000, 8.000] | 5.500 [2.000, 9.000] | 5.000 [4.000, 6.000] | 1 | 4.000 [4.000, 4.000] | 9.000 [9.000, 9.000] | 6.000 [6.000, 6.000] |");
    const ci = String.raw` \[\d\.\d{3}, \d\.\d{3}\]`;
    expect(md).to.match(new RegExp(String.raw`\| mean of 3 task means \(of 11\) \| 5 \| 5\.333${ci} \| 5\.667${ci} \| 5\.167${ci} \| 3 \| 4\.500${ci} \| 7\.750${ci} \| 5\.750${ci} \|`));
    expect(md).to.contain("| InstructPix2Pix | 3.575 | 5.491 | 3.684 | published, GPT-4.1 judge |");
    expect(md).to.contain("| GPT-4o | 7.850 | 7.620 | 7.534 | published, GPT-4.1 judge |");
    expect(md).to.contain("Full set: 6 rows, 5 averaged, 1 unscored, 0 not judged (coverage 5/6 scored (83.3 %); 1 unscored judge answers)");
    const html = readFileSync(path.join(judged, "report.html"), "utf8");
    expect(html).to.contain('<table class="gedit" data-language="en">').and.contain('<table class="gedit-published">').and.contain("published, GPT-4.1 judge");
    expect(r.stdout).to.match(/GEdit-Bench-EN full: SC 5\.333 \[[\d.]+, [\d.]+\], PQ 5\.667 \[[\d.]+, [\d.]+\], O 5\.167 \[[\d.]+, [\d.]+\] \(3 task types, 1 unscored\); intersection: SC 4\.500/);
  });

  it("a killed run resumes (no duplicate, no lost row), and shards merge into the same rows and table", async () => {
    const strip = (rs: ResultRow[]) => rs.map(({ latency: _l, ...x }) => x).sort((a, b) => a.key.localeCompare(b.key));
    const whole = readRows(path.join(judged, "results.jsonl"));
    const wholeReport = JSON.parse(readFileSync(path.join(judged, "report.json"), "utf8"));
    const common = ["bench", "--suite", "gedit-bench", "--dataset", "test-org/GEdit-Bench", "--steps", "2"];

    // as a kill leaves it: three rows and half of a fourth
    const resumed = path.join(root, "resumed");
    cpSync(judged, resumed, { recursive: true });
    const lines = readFileSync(path.join(judged, "results.jsonl"), "utf8").split("\n");
    writeFileSync(path.join(resumed, "results.jsonl"), `${lines.slice(0, 3).join("\n")}\n${lines[3].slice(0, 40)}`);
    fresh();
    const r = await runCli([...common, "--out", resumed], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.contain("3 edits run, 3 resumed");
    // k4, k5 and k6 again, with their retries
    expect(judge.requests).to.have.length(9);
    const after = readRows(path.join(resumed, "results.jsonl"));
    expect(new Set(after.map((x) => x.key)).size).to.equal(6);
    expect(strip(after)).to.deep.equal(strip(whole));
    const resumedReport = JSON.parse(readFileSync(path.join(resumed, "report.json"), "utf8"));
    expect(resumedReport.gedit).to.deep.equal(wholeReport.gedit);

    fresh();
    for (const i of [0, 1]) {
      const s = await runCli([...common, "--shard", `${i}/2`, "--out", path.join(root, `shard${i}`)], env);
      expect(s.code, s.stderr).to.equal(0);
    }
    const merged = path.join(root, "merged");
    const m = await runCli(["bench", "merge", "--out", merged, path.join(root, "shard0"), path.join(root, "shard1")]);
    expect(m.code, m.stderr).to.equal(0);
    expect(strip(readRows(path.join(merged, "results.jsonl")))).to.deep.equal(strip(whole));
    const mergedReport = JSON.parse(readFileSync(path.join(merged, "report.json"), "utf8"));
    expect(mergedReport.gedit).to.deep.equal(wholeReport.gedit);
    expect(readFileSync(path.join(merged, "summary.md"), "utf8")).to.match(/\| mean of 3 task means \(of 11\) \| 5 \| 5\.333 \[[\d.]+, [\d.]+\] \| 5\.667 \[/);
    expect(problems).to.deep.equal([]);
  });

  it("from a folder (--suite-path), Chinese, without a judge: the local scorer's figures and SC not judged; wrong options refused", async () => {
    const out = path.join(root, "local-cn");
    const r = await runCli(["bench", "--suite", "gedit-bench", "--suite-path", folder, "--language", "cn", "--backend", "local", "--steps", "2", "--out", out], { REWARD_EDIT_CACHE: env.REWARD_EDIT_CACHE });
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows.map((x) => x.instruction)).to.deep.equal(KEYS.map((k) => k.cn));
    expect(rows.every((x) => x.viescore === undefined && x.scores!.following.status === "not_judged")).to.equal(true);
    const report = JSON.parse(readFileSync(path.join(out, "report.json"), "utf8"));
    const full = report.gedit.cn.full;
    expect(full).to.include({ n: 0, rows: 6, unscored: 0, notJudged: 6 });
    for (const k of ["sc", "pq", "o"]) expect(full[k]).to.deep.equal({ value: null, ci: null, n: 0 });
    expect(full.local.n).to.equal(6);
    expect(full.local.quality.value).to.be.a("number");
    expect(report.gedit.cn.intersection.rows).to.equal(4);
    const md = readFileSync(path.join(out, "summary.md"), "utf8");
    expect(md).to.contain("### GEdit-Bench-CN").and.contain("not judged").and.not.contain("published, GPT-4.1 judge");
    expect(JSON.parse(readFileSync(path.join(out, "run.json"), "utf8"))).to.include({ language: "cn", intersection: false, backend: "local" });

    const bad = await runCli(["bench", "--suite", "gedit-bench", "--suite-path", folder, "--language", "fr", "--out", path.join(root, "x")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.contain('--language must be en or cn, got "fr"');
    const notGedit = await runCli(["bench", "--suite", "sample", "--intersection", "--out", path.join(root, "y")]);
    expect(notGedit.code).to.equal(1);
    expect(notGedit.stderr).to.contain("--language and --intersection belong to GEdit-Bench");
  });

  it("aggregation by hand: languages apart, failed and not-judged rows counted, never averaged", () => {
    const row = (language: "en" | "cn", task: string, v: { sc?: number; pq?: number } | "failed" | "mrc", inter = true): ResultRow => ({
      key: `${language}${task}${Math.random()}`,
      sample: "s",
      category: "other",
      gedit: { task, language, intersection: inter, key: "k" },
      instruction: "i",
      image: "x",
      model: "m",
      preset: "p",
      seed: 0,
      status: v === "failed" ? "edit_failed" : "ok",
      latency: { editMs: 0, scoreMs: 0 },
      scorer: { backend: "judge", protocol: v === "mrc" ? "mrc" : "viescore", version: "v", model: "j" },
      ...(typeof v === "object"
        ? {
            viescore: {
              sc: v.sc === undefined ? { status: "unscored" as const, lists: [] } : { status: "scored" as const, score: v.sc, lists: [[v.sc, 10]] },
              pq: v.pq === undefined ? { status: "refused" as const, lists: [] } : { status: "scored" as const, score: v.pq, lists: [[v.pq, 10]] },
            },
          }
        : {}),
    });
    const t = geditTables([
      row("cn", "tone_transfer", { sc: 2, pq: 8 }),
      row("cn", "tone_transfer", { sc: 9, pq: 1 }),
      row("cn", "tone_transfer", { sc: 4 }),
      row("cn", "text_change", { sc: 1, pq: 1 }, false),
      row("cn", "text_change", "failed"),
      row("cn", "text_change", "mrc"),
      row("en", "ps_human", { sc: 7, pq: 7 }),
    ]);
    // tone_transfer: SC (2 + 9) / 2, PQ (8 + 1) / 2, O (4 + 3) / 2; text_change: 1, 1, 1
    const values = (c: { sc: { value: number | null }; pq: { value: number | null }; o: { value: number | null }; n: number }) => ({ sc: c.sc.value, pq: c.pq.value, o: c.o.value, n: c.n });
    expect(values(t.cn!.full.tasks.text_change)).to.deep.equal({ sc: 1, pq: 1, o: 1, n: 1 });
    expect(values(t.cn!.full.tasks.tone_transfer)).to.deep.equal({ sc: 5.5, pq: 4.5, o: 3.5, n: 2 });
    expect(Object.keys(t.cn!.full.tasks)).to.deep.equal(["text_change", "tone_transfer"]);
    expect(values(t.cn!.full)).to.deep.equal({ sc: 3.25, pq: 2.75, o: 2.25, n: 3 });
    expect(t.cn!.full).to.include({ rows: 6, unscored: 1, notJudged: 1, failed: 1, taskTypes: 2 });
    expect(values(t.cn!.intersection)).to.deep.equal({ sc: 5.5, pq: 4.5, o: 3.5, n: 2 });
    expect(t.cn!.intersection).to.include({ rows: 5, unscored: 1, taskTypes: 1 });
    expect(values(t.en!.full)).to.deep.equal({ sc: 7, pq: 7, o: 7, n: 1 });
  });
});
