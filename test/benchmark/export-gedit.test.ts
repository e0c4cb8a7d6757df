import { expect } from "chai";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { GEDIT_TASKS, type GeditLanguage } from "../../src/benchmark/gedit-facts.js";
import { buildReport, markdown } from "../../src/benchmark/report.js";
import type { ResultRow } from "../../src/benchmark/results.js";
import { type RunResult, runCli, tempDir } from "../helpers.js";

/**
 * What Step1X-Edit's GEdit-Bench/calculate_statistics.py does with the folder (read at 570eba6,
 * written here from that reading; docs/gedit-bench.md): for each of its eleven task types it reads
 * `<save_path>/<model_name>/<backbone>/eval_results_new/<model_name>_<task>_gpt_score.csv`, keeps
 * the rows whose instruction_language equals --language, takes O = sqrt(sementics_score *
 * quality_score) per row, averages SC, PQ and O per task (np.mean: nan when no row), the same over
 * the rows whose intersection_exist is true, then averages the eleven task means.
 */
function officialStatistics(saveDir: string, modelName: string, backbone: string, language: string) {
  const dir = path.join(saveDir, modelName, backbone, "eval_results_new");
  const npMean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const task: Record<string, { full: number[]; inter: number[] }> = {};
  for (const group of GEDIT_TASKS) {
    const rows = parse(readFileSync(path.join(dir, `${modelName}_${group}_gpt_score.csv`)), { columns: true }) as Array<Record<string, string>>;
    const full: number[][] = [];
    const inter: number[][] = [];
    for (const r of rows) {
      if (r.instruction_language !== language) continue;
      // pandas reads a column of True / False as bools and the scores as numbers
      const sc = Number(r.sementics_score);
      const pq = Number(r.quality_score);
      const figs = [sc, pq, Math.sqrt(sc * pq)];
      full.push(figs);
      if (r.intersection_exist === "True") inter.push(figs);
    }
    const means = (xs: number[][]) => [0, 1, 2].map((i) => npMean(xs.map((x) => x[i])));
    task[group] = { full: means(full), inter: means(inter) };
  }
  const avg = (k: "full" | "inter") => [0, 1, 2].map((i) => npMean(GEDIT_TASKS.map((t) => task[t][k][i])));
  return { task, average: avg("full"), intersection: avg("inter") };
}

/**
 * A float as Python's `f"{x:.3f}"` prints it: the exact binary value rounded half to even (JS's
 * toFixed rounds an exact tie up instead; the data below has no ties, see docs/gedit-bench.md).
 */
function pyFixed3(x: number): string {
  if (Number.isNaN(x)) return "nan";
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const mantissa = (bits & ((1n << 52n) - 1n)) | (biased ? 1n << 52n : 0n);
  const e = (biased || 1) - 1075;
  let num = mantissa * 1000n;
  let den = 1n;
  if (e >= 0) num <<= BigInt(e);
  else den <<= BigInt(-e);
  let q = num / den;
  const r = num % den;
  if (2n * r > den || (2n * r === den && q % 2n === 1n)) q += 1n;
  const s = q.toString().padStart(4, "0");
  return `${bits >> 63n ? "-" : ""}${s.slice(0, -3)}.${s.slice(-3)}`;
}

/** Seeded, so the table is the same every run. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const MODEL = "tiny-editor";
const GROUP_A = "best";
const GROUP_B = "rewards 5,5,5";
const ODD = 'make it "bright", then\nadd a sign: 欢迎';

/**
 * Two groups (presets) of one model. A: every English task type (2..6 rows, whole scores, two of
 * them again with seed 1), one unscored row, one failed edit, and Chinese rows in three task types
 * only. B: every task type in both languages, some scores the mean of two passes (x.5).
 */
function makeRows(imagesDir: string): ResultRow[] {
  const rnd = lcg(39);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const rows: ResultRow[] = [];
  const add = (preset: string, language: GeditLanguage, task: string, i: number, seed: number, sc: number | null, pq: number, extra: Partial<ResultRow> = {}) => {
    const key = `${task}_${language}_${i}`;
    const id = `gedit/${language}/${task}/${key}`;
    const rowKey = `${MODEL}|${preset}|${seed}|${id}`;
    const edited = `${rowKey.replace(/[^A-Za-z0-9]+/g, "_")}.png`;
    const part = (score: number | null) => (score === null ? { status: "unscored" as const, lists: [], raw: "I cannot tell." } : { status: "scored" as const, score, lists: [[score, 10]] });
    const cell = (score: number | null) => (score === null ? { status: "unscored" as const } : { status: "scored" as const, score: score / 2 });
    rows.push({
      key: rowKey,
      sample: id,
      category: task as ResultRow["category"],
      gedit: { task, language, intersection: i % 3 !== 1, key },
      instruction: i === 0 && task === "text_change" ? ODD : `${language} edit ${i} of ${task}, please`,
      image: path.join(imagesDir, "..", "cache", `${key}.input.png`),
      model: MODEL,
      preset,
      seed,
      status: "ok",
      edited,
      scores: { following: { status: "not_judged" }, preserving: cell(sc), quality: cell(pq) },
      scorer: { backend: "judge", protocol: "viescore", version: "viescore-v1", model: "gpt-4.1-2025-04-14" },
      viescore: { sc: part(sc), pq: part(pq), ...(sc === null ? {} : { o: Math.sqrt(sc * pq) }) },
      latency: { editMs: 10, scoreMs: 10 },
      ...extra,
    });
  };
  for (const task of GEDIT_TASKS) {
    const n = int(2, 6);
    for (let i = 0; i < n; i++) add(GROUP_A, "en", task, i, 0, int(0, 10), int(1, 10));
  }
  add(GROUP_A, "en", "color_alter", 0, 1, 7, 9);
  add(GROUP_A, "en", "ps_human", 1, 1, 3, 8);
  add(GROUP_A, "en", "motion_change", 10, 0, null, 6);
  add(GROUP_A, "en", "style_change", 11, 0, 0, 0, { status: "edit_failed", error: "the editor crashed", scores: undefined, viescore: undefined, scorer: undefined, edited: undefined });
  for (const task of ["background_change", "subject-add", "text_change"]) for (let i = 0; i < 3; i++) add(GROUP_A, "cn", task, i, 0, int(0, 10), int(1, 10));
  for (const language of ["en", "cn"] as const) {
    for (const task of GEDIT_TASKS) {
      const n = int(2, 5);
      for (let i = 0; i < n; i++) add(GROUP_B, language, task, i, 0, int(0, 20) / 2, int(2, 20) / 2);
    }
  }
  return rows.sort((a, b) => (a.key < b.key ? -1 : 1));
}

const HEADER = "source_image,edited_image,instruction,sementics_score,quality_score,intersection_exist,instruction_language";

/** Our summary.md's GEdit table of one group and language: task type -> its nine cells. */
function ourTable(summary: string, group: string, language: string): Map<string, string[]> {
  const lines = summary.split("\n");
  const start = lines.indexOf(`### GEdit-Bench-${language.toUpperCase()}: ${group} (viescore-v1, judge gpt-4.1-2025-04-14)`);
  expect(start, `our ${language} table of ${group}`).to.be.greaterThan(-1);
  const table = new Map<string, string[]>();
  for (const line of lines.slice(start + 4)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim().replace(/ \[[^\]]*\]$/, ""));
    table.set(cells[0].startsWith("mean of") ? "Average" : cells[0], cells.slice(1));
  }
  return table;
}

/** The official script's figures printed as it prints them, beside ours, cell by cell. */
function expectSameTable(official: ReturnType<typeof officialStatistics>, ours: Map<string, string[]>, label: string): void {
  for (const task of [...GEDIT_TASKS, "Average"]) {
    const full = task === "Average" ? official.average : official.task[task].full;
    const inter = task === "Average" ? official.intersection : official.task[task].inter;
    const cells = ours.get(task)!;
    expect([cells[1], cells[2], cells[3]], `${label} ${task} full`).to.deep.equal(full.map(pyFixed3));
    expect([cells[5], cells[6], cells[7]], `${label} ${task} intersection`).to.deep.equal(inter.map(pyFixed3));
  }
}

describe("bench export --format gedit-csv: the official statistics script's files", function () {
  this.timeout(60_000);
  const root = tempDir("gedit-export-");
  const run = path.join(root, "run");
  const out = path.join(root, "official");
  let rows: ResultRow[] = [];
  let report: ReturnType<typeof buildReport>;
  let summary = "";
  let stdout = "";
  let stderr = "";

  before(async () => {
    mkdirSync(path.join(run, "images"), { recursive: true });
    rows = makeRows(path.join(run, "images"));
    writeFileSync(path.join(run, "run.json"), JSON.stringify({ suite: "gedit-bench", language: "en" }));
    writeFileSync(path.join(run, "results.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    // the report the runner writes, from the same rows
    report = buildReport(rows, "gedit-bench");
    summary = markdown(report);
    const r = await runCli(["bench", "export", run, "--format", "gedit-csv", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    ({ stdout, stderr } = r);
  });

  it("lays the files out where calculate_statistics.py looks: <out>/<model_name>/<backbone>/eval_results_new/<model_name>_<task>_gpt_score.csv", () => {
    for (const name of ["tiny-editor-best", "tiny-editor-rewards_5_5_5"]) {
      const dir = path.join(out, name, "gpt4o", "eval_results_new");
      const expected = [...GEDIT_TASKS.map((t) => `${name}_${t}_gpt_score.csv`), `${name}_combined_gpt_score.csv`].sort();
      expect(readdirSync(dir).sort(), name).to.deep.equal(expected);
    }
    expect(readdirSync(out).sort()).to.deep.equal(["tiny-editor-best", "tiny-editor-rewards_5_5_5"]);
  });

  it("writes the official header, with its spelling, and Python's csv dialect", () => {
    const file = readFileSync(path.join(out, "tiny-editor-best", "gpt4o", "eval_results_new", "tiny-editor-best_text_change_gpt_score.csv"), "utf8");
    expect(file.split("\r\n")[0]).to.equal(HEADER);
    expect(file.endsWith("\r\n")).to.equal(true);
    // a field holding quotes, a line break and Chinese text is quoted as Python's csv writer does
    expect(file).to.contain(`,"make it ""bright"", then\nadd a sign: 欢迎",`);
    const parsed = parse(file, { columns: true }) as Array<Record<string, string>>;
    expect(parsed.find((p) => p.instruction === ODD), "the instruction reads back unchanged").to.not.equal(undefined);
  });

  it("holds every scored row once, with its figures, and no unscored or failed row", () => {
    const combined = (name: string) => parse(readFileSync(path.join(out, name, "gpt4o", "eval_results_new", `${name}_combined_gpt_score.csv`)), { columns: true }) as Array<Record<string, string>>;
    for (const [name, preset] of [["tiny-editor-best", GROUP_A], ["tiny-editor-rewards_5_5_5", GROUP_B]]) {
      const mine = rows.filter((r) => r.preset === preset);
      const scored = mine.filter((r) => r.status === "ok" && r.viescore?.sc.status === "scored" && r.viescore.pq.status === "scored");
      const csv = combined(name);
      expect(csv.length, name).to.equal(scored.length);
      const byEdited = new Map(csv.map((c) => [c.edited_image, c]));
      expect(byEdited.size, "edited_image is unique per row").to.equal(csv.length);
      for (const r of scored) {
        const c = byEdited.get(path.resolve(run, "images", r.edited!))!;
        expect(c, r.key).to.not.equal(undefined);
        expect(Number(c.sementics_score), r.key).to.equal(r.viescore!.sc.score);
        expect(Number(c.quality_score), r.key).to.equal(r.viescore!.pq.score);
        expect(c.intersection_exist).to.equal(r.gedit!.intersection ? "True" : "False");
        expect(c.instruction_language).to.equal(r.gedit!.language);
        expect(c.instruction).to.equal(r.instruction);
        expect(c.source_image).to.equal(path.resolve(r.image));
        // each task file holds its own task's rows
        const perTask = parse(readFileSync(path.join(out, name, "gpt4o", "eval_results_new", `${name}_${r.gedit!.task}_gpt_score.csv`)), { columns: true }) as Array<Record<string, string>>;
        expect(perTask.some((p) => p.edited_image === c.edited_image), r.key).to.equal(true);
      }
    }
    const all = combined("tiny-editor-best").map((c) => c.edited_image).join("\n");
    expect(all).to.not.contain("motion_change_en_10");
    expect(all).to.not.contain("style_change_en_11");
    expect(stdout).to.contain(`${MODEL} / ${GROUP_A}: scored rows written (en ${rows.filter((r) => r.preset === GROUP_A && r.gedit!.language === "en").length - 2}, cn 9)`);
    expect(stdout).to.contain("left out: 1 unscored, 1 failed");
  });

  it("aggregated as calculate_statistics.py does, gives our English table to the last printed digit", () => {
    for (const [name, group] of [["tiny-editor-best", `${MODEL} / ${GROUP_A}`], ["tiny-editor-rewards_5_5_5", `${MODEL} / ${GROUP_B}`]]) {
      const official = officialStatistics(out, name, "gpt4o", "en");
      expectSameTable(official, ourTable(summary, group, "en"), group);
      // and report.json's figures themselves, not only their printing; numpy sums pairwise, so the
      // real script's doubles may differ in the last bit (5.41060606060606 vs 5.410606060606061 once)
      const ours = report.groups.find((g) => g.group === group)!.gedit!.en!;
      const figs = [ours.full.sc, ours.full.pq, ours.full.o, ours.intersection.sc, ours.intersection.pq, ours.intersection.o];
      [...official.average, ...official.intersection].forEach((x, i) => expect(Math.abs(figs[i].value! - x), `${group} figure ${i}`).to.be.lessThan(1e-12));
    }
    expect(stdout).to.contain(`check with (in Step1X-Edit/GEdit-Bench): python calculate_statistics.py --model_name tiny-editor-best --save_path ${path.resolve(out)} --backbone gpt4o --language en`);
  });

  it("says where the official script will print nan, and that cn needs --cn-as zh", () => {
    expect(stderr).to.contain("tiny-editor-best: cn full set: no scored row in color_alter, material_alter,");
    expect(stderr).to.contain("prints nan for them and for its Average; our table averages the 3 task types it has");
    expect(stderr).to.contain("export with --cn-as zh");
    const official = officialStatistics(out, "tiny-editor-best", "gpt4o", "zh");
    expect(official.average.map(pyFixed3)).to.deep.equal(["nan", "nan", "nan"]);
  });

  it("with --cn-as zh, the script's --language zh gives our Chinese table", async () => {
    const zh = path.join(root, "official-zh");
    const r = await runCli(["bench", "export", run, "--format", "gedit-csv", "--out", zh, "--cn-as", "zh", "--backbone", "qwen25vl"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.not.contain("--cn-as zh");
    expect(r.stdout).to.contain("--backbone qwen25vl --language zh");
    const official = officialStatistics(zh, "tiny-editor-rewards_5_5_5", "qwen25vl", "zh");
    expectSameTable(official, ourTable(summary, `${MODEL} / ${GROUP_B}`, "cn"), "cn");
    // group A's Chinese rows cover three task types: the script prints nan where our table says n/a
    const a = officialStatistics(zh, "tiny-editor-best", "qwen25vl", "zh");
    const ours = ourTable(summary, `${MODEL} / ${GROUP_A}`, "cn");
    for (const t of ["background_change", "subject-add", "text_change"]) expect(ours.get(t)!.slice(1, 4), t).to.deep.equal(a.task[t].full.map(pyFixed3));
    expect(a.task.color_alter.full.map(pyFixed3)).to.deep.equal(["nan", "nan", "nan"]);
  });

  it("names the model folder with --model-name on a one-group run, and picks qwen25vl for a Qwen judge", async () => {
    const one = path.join(root, "one");
    mkdirSync(one);
    const qwen = rows.filter((r) => r.preset === GROUP_B).map((r) => ({ ...r, scorer: { ...r.scorer!, model: "Qwen/Qwen2.5-VL-72B-Instruct-AWQ" } }));
    writeFileSync(path.join(one, "run.json"), JSON.stringify({ suite: "gedit-bench" }));
    writeFileSync(path.join(one, "results.jsonl"), qwen.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const dest = path.join(root, "one-out");
    const [r, twoGroups] = await Promise.all([
      runCli(["bench", "export", one, "--format", "gedit-csv", "--out", dest, "--model-name", "ours"]),
      runCli(["bench", "export", run, "--format", "gedit-csv", "--out", path.join(root, "two-out"), "--model-name", "ours"]),
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(existsSync(path.join(dest, "ours", "qwen25vl", "eval_results_new", "ours_subject-add_gpt_score.csv"))).to.equal(true);
    expect(twoGroups.code).to.equal(1);
    expect(twoGroups.stderr.trim().split("\n")).to.have.length(1);
    expect(twoGroups.stderr).to.contain("has 2 (");
  });

  describe("refusals, one line each", () => {
    const results = new Map<string, RunResult>();
    const cases: Record<string, string[]> = {};

    // the four CLI runs at once: each starts a whole node process
    before(async () => {
      const other = path.join(root, "sample-run");
      mkdirSync(other);
      writeFileSync(path.join(other, "run.json"), JSON.stringify({ suite: "sample" }));
      const plain = rows.slice(0, 3).map(({ gedit: _gedit, viescore: _v, ...r }) => r);
      writeFileSync(path.join(other, "results.jsonl"), plain.map((r) => JSON.stringify(r)).join("\n") + "\n");
      const local = path.join(root, "local-run");
      mkdirSync(local);
      writeFileSync(path.join(local, "run.json"), JSON.stringify({ suite: "gedit-bench" }));
      const unjudged = rows.slice(0, 3).map(({ viescore: _v, ...r }) => ({ ...r, scorer: { backend: "local", protocol: "local", version: "local-v1", model: "local" } }));
      writeFileSync(path.join(local, "results.jsonl"), unjudged.map((r) => JSON.stringify(r)).join("\n") + "\n");
      cases.notGedit = [other, "--format", "gedit-csv", "--out", path.join(root, "x")];
      cases.format = [run, "--format", "parquet", "--out", path.join(root, "y")];
      cases.missing = [path.join(root, "nowhere"), "--format", "gedit-csv", "--out", path.join(root, "z")];
      cases.local = [local, "--format", "gedit-csv", "--out", path.join(root, "w")];
      await Promise.all(Object.entries(cases).map(async ([k, args]) => results.set(k, await runCli(["bench", "export", ...args]))));
    });

    const refused = (k: string, says: string) => {
      const r = results.get(k)!;
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
      expect(r.stderr).to.not.match(/\n\s+at /);
      expect(r.stderr).to.contain(says);
    };

    it("a run that is not GEdit-Bench", () => {
      refused("notGedit", "is a sample run, not GEdit-Bench");
      expect(existsSync(path.join(root, "x"))).to.equal(false);
    });

    it("an unknown --format", () => refused("format", '--format must be gedit-csv, got "parquet"'));

    it("a missing RUN folder", () => refused("missing", "nowhere does not exist"));

    it("a GEdit run with no VIEScore figures (local scorer)", () => refused("local", "has no VIEScore SC and PQ figures (scored by the local scorer)"));
  });
});
