import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readRows } from "../../src/benchmark/results.js";
import { loadSuite, parseRealEditEntry } from "../../src/benchmark/suites.js";
import { launchChromium } from "../support/browser.js";
import { FakeJudge } from "../support/fake-judge.js";
import { CLI, TINY, runCli, tempDir } from "../helpers.js";

const strip = (rows: ReturnType<typeof readRows>) => rows.map(({ latency: _l, ...r }) => r);

describe("benchmark runner", function () {
  this.timeout(180_000);

  it("parses Real-Edit entries defensively and loads every suite kind", async () => {
    expect(parseRealEditEntry("1. local: make the cup blue")).to.deep.equal({ category: "local", instruction: "make the cup blue" });
    expect(parseRealEditEntry("3) Style - make it a watercolour")).to.deep.equal({ category: "style", instruction: "make it a watercolour" });
    expect(parseRealEditEntry("7.Background: a beach")).to.deep.equal({ category: "background", instruction: "a beach" });
    expect(parseRealEditEntry("2. turn the sky pink")).to.deep.equal({ category: "other", instruction: "turn the sky pink" });
    const sample = await loadSuite("sample");
    expect(new Set(sample.samples.map((s) => s.category))).to.deep.equal(new Set(["local", "remove", "add", "texture", "background", "global", "style"]));
    expect(sample.samples.filter((s) => s.synthetic)).to.have.length(5);
    const dir = tempDir();
    writeFileSync(path.join(dir, "suite.jsonl"), `{"id": "a", "image": "${sample.samples[0].image}", "instruction": "x", "category": "global"}\n`);
    expect((await loadSuite("jsonl", path.join(dir, "suite.jsonl"))).samples[0]).to.include({ id: "a", category: "global" });
    expect((await loadSuite("synthetic")).samples.length).to.be.at.least(120);
  });

  it("--refine N: synthetic scenes are refined with their exact truth; rows record the rounds and what changed", async () => {
    const out = path.join(tempDir(), "refined");
    const r = await runCli(["bench", "--suite", "synthetic", "--model", TINY, "--steps", "2", "--limit", "2", "--refine", "2", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(2);
    for (const row of rows) {
      // random weights wreck the scene: both rounds run, the second with a new seed and a guidance change
      expect(row.refine).to.include({ rounds: 2, stopped: "rounds" });
      expect(row.refine!.changes[0]).to.deep.equal([]);
      expect(row.refine!.changes[1].join("; ")).to.match(/^seed \d+ -> \d+; (text|image) guidance/);
      expect(row.truth).to.have.property("following");
    }
    const bad = await runCli(["bench", "--suite", "synthetic", "--model", TINY, "--refine", "9", "--out", path.join(tempDir(), "x")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/--refine/);
  });

  it("a run killed mid-way resumes with no duplicate and no lost row, equal to an uninterrupted run", async () => {
    const out = path.join(tempDir(), "run");
    const args = ["bench", "--suite", "sample", "--model", TINY, "--steps", "25", "--out", out];
    const child = spawn(process.execPath, [CLI, ...args], { stdio: "ignore" });
    const file = path.join(out, "results.jsonl");
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        const n = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0;
        if (n >= 3) {
          clearInterval(t);
          child.kill("SIGKILL");
          resolve();
        }
      }, 5);
      child.on("exit", () => (clearInterval(t), reject(new Error("finished before it could be killed"))));
    });
    await new Promise((r) => child.once("exit", r));
    const before = readRows(file).length;
    expect(before).to.be.within(3, 11);
    const r = await runCli(args);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.contain(`${12 - before} edits run, ${before} resumed`);
    const rows = readRows(file);
    expect(rows).to.have.length(12);
    expect(new Set(rows.map((x) => x.key)).size).to.equal(12);
    expect(readFileSync(file, "utf8").endsWith("\n")).to.equal(true);
    // and the resumed run equals one that was never interrupted: the same rows, the same images
    const whole = path.join(tempDir(), "whole");
    expect((await runCli([...args.slice(0, -1), whole])).code).to.equal(0);
    const byKey = (rs: ReturnType<typeof readRows>) => strip(rs).sort((x, y) => x.key.localeCompare(y.key));
    expect(byKey(rows)).to.deep.equal(byKey(readRows(path.join(whole, "results.jsonl"))));
    for (const row of rows) expect(readFileSync(path.join(out, "images", row.edited!)).equals(readFileSync(path.join(whole, "images", row.edited!))), row.key).to.equal(true);
  });

  it("shards merged equal one run; the HTML report opens in Chromium with every sample and no console error", async () => {
    const base = tempDir();
    const common = ["bench", "--suite", "sample", "--model", TINY, "--steps", "3", "--seeds", "0,1", "--limit", "5"];
    const single = path.join(base, "single");
    expect((await runCli([...common, "--out", single])).code).to.equal(0);
    for (const i of [0, 1, 2]) expect((await runCli([...common, "--shard", `${i}/3`, "--out", path.join(base, `s${i}`)])).code).to.equal(0);
    const merged = path.join(base, "merged");
    const m = await runCli(["bench", "merge", "--out", merged, ...[0, 1, 2].map((i) => path.join(base, `s${i}`))]);
    expect(m.code, m.stderr).to.equal(0);
    const a = readRows(path.join(single, "results.jsonl")).sort((x, y) => x.key.localeCompare(y.key));
    const b = readRows(path.join(merged, "results.jsonl"));
    expect(b).to.have.length(10);
    expect(strip(b)).to.deep.equal(strip(a));
    const ra = JSON.parse(readFileSync(path.join(single, "report.json"), "utf8"));
    const rb = JSON.parse(readFileSync(path.join(merged, "report.json"), "utf8"));
    const noLatency = (r: { groups: Array<{ latencyMs: unknown }> }) => r.groups.map(({ latencyMs: _l, ...g }) => g);
    expect(noLatency(rb)).to.deep.equal(noLatency(ra));

    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("request", (req) => !req.url().startsWith("file:") && !req.url().startsWith("data:") && errors.push(`network: ${req.url()}`));
      await page.goto(`file://${path.join(merged, "report.html")}`);
      expect(await page.locator("figure.card").count()).to.equal(10);
      expect(await page.locator("figure.card img[alt='change map']").count()).to.equal(10);
      expect(await page.locator("svg[role=img]").count()).to.be.greaterThan(2);
      expect(errors).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it("a judge failure appears as unscored in the results and the reports, never as a score", async () => {
    const judge = await new FakeJudge().start();
    judge.handler = (r) => (FakeJudge.perspective(r) === "quality" ? { reply: "I would rather talk about the weather." } : { reply: '{"reasoning": "ok", "answer": "yes", "score": 4}' });
    try {
      const out = path.join(tempDir(), "judged");
      const r = await runCli(["bench", "--suite", "sample", "--model", TINY, "--steps", "2", "--limit", "3", "--backend", "judge", "--out", out], {
        OPENAI_BASE_URL: judge.url,
        OPENAI_API_KEY: "k",
        REWARD_EDIT_JUDGE_MODEL: "fake-vlm",
      });
      expect(r.code, r.stderr).to.equal(0);
      const rows = readRows(path.join(out, "results.jsonl"));
      expect(rows.every((x) => x.scores!.quality.status === "unscored" && x.scores!.quality.score === undefined)).to.equal(true);
      expect(rows.every((x) => x.scores!.following.yes === true)).to.equal(true);
      const report = JSON.parse(readFileSync(path.join(out, "report.json"), "utf8"));
      expect(report.groups[0].overall).to.include({ unscored: 3 });
      expect(report.groups[0].overall.following).to.deep.equal({ value: 100, ci: [100, 100], n: 3 });
      expect(report.groups[0].overall.quality).to.deep.equal({ value: null, ci: null, n: 0 });
      expect(report.groups[0].unscoredSamples).to.have.length(3);
      expect(readFileSync(path.join(out, "summary.md"), "utf8")).to.match(/Unscored \(3\)/);
      expect(readFileSync(path.join(out, "report.html"), "utf8")).to.contain("weather");
    } finally {
      await judge.stop();
    }
  });
});
