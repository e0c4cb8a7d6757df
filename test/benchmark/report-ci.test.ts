import { expect } from "chai";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { geditTables } from "../../src/benchmark/gedit-metrics.js";
import { groupMetrics } from "../../src/benchmark/metrics.js";
import { writeReport } from "../../src/benchmark/report.js";
import type { ResultRow } from "../../src/benchmark/results.js";
import { parseStatsOptions } from "../../src/cli/bench-compare.js";
import { CliError } from "../../src/cli/errors.js";
import { runCli, tempDir } from "../helpers.js";

type Status = "ok" | "edit_failed" | "refused" | "missing";

/** A row as results.ts writes it; `f` following yes/no, `p` and `q` 0..5, undefined = that answer unscored. */
function row(o: { model?: string; sample: string; seed?: number; category?: string; status?: Status; f?: boolean; p?: number; q?: number; judge?: Record<string, unknown>; sweep?: { perspective: string; level: number } }): ResultRow {
  const model = o.model ?? "editor-a";
  const seed = o.seed ?? 0;
  const status = o.status ?? "ok";
  const cell = (v: number | undefined, yes?: boolean) => (v === undefined ? { status: "unscored" as const, raw: "no idea" } : { status: "scored" as const, score: v, ...(yes === undefined ? {} : { yes }) });
  return {
    key: `${model}|best|${seed}|${o.sample}`,
    sample: o.sample,
    category: (o.category ?? "local") as ResultRow["category"],
    instruction: "make it red",
    image: "/nonexistent/source.png",
    model,
    preset: "best",
    seed,
    status: status as ResultRow["status"],
    latency: { editMs: 10, scoreMs: 5 },
    ...(status === "ok"
      ? { scores: { following: o.f === undefined ? cell(undefined) : cell(o.f ? 5 : 1, o.f), preserving: cell(o.p), quality: cell(o.q) }, scorer: { backend: "judge", protocol: "mrc", version: "mrc-v1", model: "fake-vlm" } }
      : { error: status === "refused" ? "content policy" : "gone" }),
    ...(o.judge ? { judge: o.judge } : {}),
    ...(o.sweep ? { sweep: o.sweep } : {}),
  } as ResultRow;
}

const JUDGE = { host: "127.0.0.1", model: "gpt-4.1", answeredModel: "gpt-4.1-2025-04-14", temperature: 0, maxTokens: 512, promptHash: "abc", protocol: "mrc", protocolVersion: "1" };

describe("report figures with intervals: coverage, scored vs strict, report.json shapes, bench compare / agreement", function () {
  this.timeout(60_000);

  it("strict counts a refused edit as no and 0; scored leaves it out; an unscored judge answer is in neither, counted", () => {
    const rows = [
      row({ sample: "s1", f: true, p: 4, q: 3 }),
      row({ sample: "s2", f: true, p: 4, q: 3 }),
      row({ sample: "s3", f: false, p: 2, q: 5 }),
      row({ sample: "s4", f: true, p: 4, q: undefined }),
      row({ sample: "s5", status: "refused" }),
    ];
    const [g] = groupMetrics(rows, { bootstrap: 200 });
    const scored = g.aggregations.scored.overall;
    const strict = g.aggregations.strict.overall;
    // scored: following 3 yes of 4, preserving (4 + 4 + 2 + 4) / 4, quality (3 + 3 + 5) / 3 (s4's quality unscored)
    expect(scored.following).to.include({ value: 75, n: 4 });
    expect(scored.preserving).to.include({ value: 3.5, n: 4 });
    expect(scored.quality.value).to.be.closeTo(11 / 3, 1e-12);
    expect(scored.quality.n).to.equal(3);
    // strict: the refusal is one more "no" and one more 0; s4's unscored quality stays out
    expect(strict.following).to.include({ value: 60, n: 5 });
    expect(strict.preserving).to.include({ value: 14 / 5, n: 5 });
    expect(strict.quality).to.include({ value: 11 / 4, n: 4 });
    expect(g.overall).to.deep.equal(scored);
    expect(strict.unscored).to.equal(1);
    expect(strict.coverage).to.deep.equal({ rows: 5, scored: 3, share: 0.6, failed: 1, byStatus: { refused: 1 }, unscored: 1 });
    expect(g.failed).to.deep.equal([{ key: "editor-a|best|0|s5", status: "refused", error: "content policy" }]);
    expect(groupMetrics(rows, { aggregate: "strict", bootstrap: 200 })[0].overall).to.deep.equal(strict);

    // a scorer that never judges following: strict does not turn the refusal into 0 % following
    const local = rows.map((r) => (r.scores ? { ...r, scores: { ...r.scores, following: { status: "not_judged" as const } } } : r));
    expect(groupMetrics(local, { bootstrap: 50 })[0].aggregations.strict.overall.following).to.deep.equal({ value: null, ci: null, n: 0 });
  });

  it("GEdit-Bench strict: a failed edit is 0 in its task, and the set stays the mean of task means", () => {
    const g = (task: string, sc: number | null, pq?: number): ResultRow => ({
      ...row({ sample: `${task}${sc}${pq}`, status: sc === null ? "missing" : "ok" }),
      gedit: { task, language: "en", intersection: true, key: "k" },
      ...(sc === null ? {} : { viescore: { sc: { status: "scored" as const, score: sc, lists: [] }, pq: pq === undefined ? { status: "unscored" as const, lists: [] } : { status: "scored" as const, score: pq, lists: [] } } }),
    });
    const rows = [g("color_alter", 4, 9), g("color_alter", 8, 1), g("color_alter", null), g("ps_human", 6, 6), g("ps_human", 2)];
    const scored = geditTables(rows, { bootstrap: 100 }).en!.full;
    const strict = geditTables(rows, { aggregate: "strict", bootstrap: 100 }).en!.full;
    expect(scored.tasks.color_alter.sc).to.include({ value: 6, n: 2 });
    expect(strict.tasks.color_alter.sc).to.include({ value: 4, n: 3 });
    expect(strict.tasks.color_alter.o.value).to.be.closeTo((6 + Math.sqrt(8) + 0) / 3, 1e-12);
    // ps_human: 6 (the row with PQ unscored is in neither)
    expect(strict.sc.value).to.be.closeTo((4 + 6) / 2, 1e-12);
    expect(scored.sc.value).to.be.closeTo((6 + 6) / 2, 1e-12);
    expect(strict.coverage).to.include({ rows: 5, scored: 3, failed: 1, unscored: 1 });
    expect(strict.sc.ci![0]).to.be.at.most(strict.sc.value!);
  });

  it("report.json: every figure {value, ci, n}, both aggregations, the bootstrap's B and seed, paired comparison; summary and HTML print intervals, coverage, forest plot, sweep curves, judge and cost lines", async () => {
    const out = tempDir();
    const rows: ResultRow[] = [];
    for (let i = 0; i < 12; i++) {
      const category = i % 2 ? "local" : "remove";
      rows.push(row({ sample: `s${i}`, category, f: i % 3 !== 0, p: 2 + (i % 3), q: 3, sweep: { perspective: "following", level: i % 6 } }));
      rows.push(i === 5 ? row({ model: "editor-b", sample: `s${i}`, category, status: "refused" }) : row({ model: "editor-b", sample: `s${i}`, category, f: true, p: 4 + (i % 2), q: 3 }));
    }
    for (const r of rows.filter((x) => x.status === "ok")) {
      r.judge = { host: "127.0.0.1", model: "gpt-4.1", answeredModel: "gpt-4.1-2025-04-14", temperature: 0, promptHash: "ab".repeat(32), protocol: "mrc", protocolVersion: "mrc-v1" };
      r.judgeUsage = { promptTokens: 50, completionTokens: 5 };
    }
    await writeReport(rows, out, "test-suite", undefined, { bootstrap: 300, seed: 9, price: [2, 8] });
    const report = JSON.parse(readFileSync(path.join(out, "report.json"), "utf8"));
    expect(report).to.include({ aggregate: "scored" });
    expect(report.bootstrap).to.include({ B: 300, seed: 9, level: 0.95 });
    const a = report.groups[0];
    for (const fig of [a.overall.following, a.overall.preserving, a.overall.quality, a.categories.local.following, a.aggregations.strict.overall.quality]) {
      expect(fig).to.have.all.keys("value", "ci", "n");
      expect(fig.ci).to.have.length(2);
      expect(fig.ci[0]).to.be.at.most(fig.value);
      expect(fig.ci[1]).to.be.at.least(fig.value);
    }
    expect(a.overall.coverage).to.include({ rows: 12, scored: 12 });
    expect(report.groups[1].overall.coverage).to.include({ rows: 12, scored: 11, failed: 1 });
    const c = report.comparison;
    expect(c).to.include({ a: "editor-a / best", b: "editor-b / best", pairs: 12, aggregate: "scored" });
    const pres = c.figures.find((f: { key: string }) => f.key === "preserving");
    expect(pres.overall.n).to.equal(11);
    expect(Object.keys(pres.tasks)).to.deep.equal(["local", "remove"]);
    expect(pres.tasks.local).to.have.property("pHolm");
    expect(pres.overall.distinguishable).to.equal(true);
    expect(report.sweep[0]).to.include({ model: "editor-a", perspective: "following" });
    expect(report.sweep[0].points).to.have.length(6);
    expect(report.judge).to.include({ mixed: false });
    expect(report.cost).to.include({ promptTokens: 1150, completionTokens: 115, judgedRows: 23 });
    expect(report.cost.dollars).to.be.closeTo((1150 * 2 + 115 * 8) / 1e6, 1e-12);

    const md = readFileSync(path.join(out, "summary.md"), "utf8");
    expect(md).to.match(/\| \*\*overall\*\* \| 12 \| 12\/12 \| \d+\.\d %? ?\[\d+\.\d, \d+\.\d\] % \| \d\.\d\d \[\d\.\d\d, \d\.\d\d\] \|/);
    expect(md).to.contain("coverage 11/12 scored (91.7 %); 1 refused");
    expect(md).to.contain("Headline aggregation: **scored**").and.contain("Strict overall: Following");
    expect(md).to.contain("Judge: gpt-4.1 (answered gpt-4.1-2025-04-14) at 127.0.0.1, temperature 0").and.contain("Cost: 1,150 prompt + 115 completion judge tokens over 23 rows, estimated $0.0032");
    expect(md).to.contain("## Comparison: editor-b / best minus editor-a / best").and.contain("Holm");
    const html = readFileSync(path.join(out, "report.html"), "utf8");
    expect(html).to.contain('class="forest"').and.contain('class="sweep"').and.contain('class="coverage"').and.contain('class="judge"');
    expect(html).to.not.match(/https?:\/\//);
  });

  it("bench compare and bench agreement on two run folders: pairs on sample + seed, refuses mixed judges unless told, one clear line on bad input", async () => {
    const base = tempDir();
    const write = (name: string, rs: ResultRow[]) => {
      mkdirSync(path.join(base, name), { recursive: true });
      writeFileSync(path.join(base, name, "results.jsonl"), rs.map((r) => JSON.stringify(r)).join("\n") + "\n");
      return path.join(base, name);
    };
    const aRows: ResultRow[] = [];
    const bRows: ResultRow[] = [];
    const cRows: ResultRow[] = [];
    for (let i = 0; i < 10; i++) {
      aRows.push(row({ sample: `s${i}`, category: i < 5 ? "local" : "add", f: i % 2 === 0, p: 1 + (i % 5), q: 3, judge: JUDGE }));
      // run B: one more point of preserving on every sample, and s9 only in A
      if (i < 9) bRows.push(row({ sample: `s${i}`, category: i < 5 ? "local" : "add", f: i % 3 === 0, p: 2 + (i % 5), q: 3, judge: { ...JUDGE, usage: { promptTokens: i } } }));
      cRows.push(row({ sample: `s${i}`, category: i < 5 ? "local" : "add", f: i % 2 === 0, p: 1 + (i % 5), q: 3, judge: { ...JUDGE, answeredModel: "gpt-4.1-2025-06-01" } }));
    }
    const [a, b, c] = [write("runA", aRows), write("runB", bRows), write("runC", cRows)];
    const out = path.join(base, "cmp");
    const r = await runCli(["bench", "compare", a, b, "--out", out, "--bootstrap", "500"]);
    expect(r.code, r.stderr).to.equal(0);
    const cmp = JSON.parse(readFileSync(path.join(out, "compare.json"), "utf8"));
    expect(cmp).to.include({ pairs: 9, onlyA: 1, onlyB: 0 });
    expect(cmp.bootstrap).to.deep.equal({ B: 500, seed: 0 });
    const pres = cmp.figures.find((f: { key: string }) => f.key === "preserving");
    expect(pres.overall).to.include({ n: 9, diff: 1, p: 2 / 512, distinguishable: true });
    expect(pres.overall.wins).to.deep.equal({ a: 0, b: 9, ties: 0 });
    expect(pres.overall.ci).to.deep.equal([1, 1]);
    expect(Object.keys(pres.tasks)).to.deep.equal(["add", "local"]);
    // per task 4 and 5 pairs all +1: exact p 2/16 and 2/32, Holm over 2: 2 x 1/16 = 1/8, then max(1/8, 1/8)
    expect(pres.tasks.local.p).to.equal(2 / 32);
    expect(pres.tasks.add.p).to.equal(2 / 16);
    expect(pres.tasks.local.pHolm).to.equal(1 / 8);
    expect(pres.tasks.add.pHolm).to.equal(1 / 8);
    // four identical differences: the interval has no width, but Holm's p says not distinguishable
    expect(pres.tasks.add.distinguishable).to.equal(false);
    const quality = cmp.figures.find((f: { key: string }) => f.key === "quality");
    expect(quality.overall).to.include({ diff: 0, p: 1, distinguishable: false });
    expect(r.stdout).to.contain("| Preserving | 9 |").and.contain("not distinguishable");
    expect(readFileSync(path.join(out, "compare.md"), "utf8")).to.contain("# Comparison:");

    const mixed = await runCli(["bench", "compare", a, c, "--out", path.join(base, "mixed")]);
    expect(mixed.code).to.equal(1);
    expect(mixed.stderr.trim().split("\n")).to.have.length(1);
    expect(mixed.stderr).to.contain("judged by different judges").and.contain("--allow-mixed-judges").and.contain("gpt-4.1-2025-06-01");
    const allowed = await runCli(["bench", "compare", a, c, "--allow-mixed-judges", "--bootstrap", "100", "--out", path.join(base, "mixed")]);
    expect(allowed.code, allowed.stderr).to.equal(0);
    expect(JSON.parse(readFileSync(path.join(base, "mixed", "compare.json"), "utf8")).mixedJudges).to.have.length(2);
    expect(allowed.stdout).to.contain("Mixed judges");
    const bad = await runCli(["bench", "compare", a, path.join(base, "nowhere")]);
    expect([bad.code, bad.stderr.trim()]).to.deep.equal([1, `reward-edit: ${path.join(base, "nowhere")} has no results.jsonl (not a bench output folder)`]);
    expect(() => parseStatsOptions({ aggregate: "lenient" })).to.throw(CliError, '--aggregate must be scored or strict, got "lenient"');
    expect(() => parseStatsOptions({ bootstrap: "0" })).to.throw(CliError, "--bootstrap must be in 1..1000000");

    const agree = await runCli(["bench", "agreement", a, b, "--out", path.join(base, "agree")]);
    expect(agree.code, agree.stderr).to.equal(0);
    const g = JSON.parse(readFileSync(path.join(base, "agree", "agreement.json"), "utf8"));
    expect(g.rows).to.equal(9);
    const p = g.figures.find((f: { key: string }) => f.key === "preserving");
    // B = A + 1 on every shared row: perfectly monotone, one point apart
    expect(p).to.include({ n: 9, spearman: 1, kendallTauB: 1, meanAbsDiff: 1 });
    // quality is 3 everywhere: no variance, so undefined, not 0
    expect(g.figures.find((f: { key: string }) => f.key === "quality")).to.include({ spearman: null, kendallTauB: null, meanAbsDiff: 0 });
    // following yes/no on s0..s8: A yes on even i (0,2,4,6,8), B yes on i % 3 == 0 (0,3,6):
    // both yes 0, 6 (2); A yes only 2, 4, 8 (3); B yes only 3 (1); both no 1, 5, 7 (3) -> p_o 5/9, p_e (5/9)(3/9) + (4/9)(6/9)
    const pe = (5 / 9) * (3 / 9) + (4 / 9) * (6 / 9);
    expect(g.following.n).to.equal(9);
    expect(g.following.kappa).to.be.closeTo((5 / 9 - pe) / (1 - pe), 1e-12);
    expect(agree.stdout).to.contain("Cohen's kappa").and.contain("undefined");
  });
});
