import { expect } from "chai";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { ScoreResult } from "../../reward/index.js";
import { imageDataUrl } from "../../reward/judge/judge.js";
import { icc11, meanOfRepeats, repeatability } from "../../src/benchmark/repeatability.js";
import { type ResultRow, readRows } from "../../src/benchmark/results.js";
import { FakeJudge, type RecordedRequest } from "../support/fake-judge.js";
import { TINY, copyFolder, runCli, tempDir } from "../helpers.js";

describe("repeatability statistics (pure, against values worked out by hand)", () => {
  it("ICC(1,1) on a small repeat table", () => {
    // items [1,2], [3,5], [4,4]: means 1.5, 4, 4, grand mean 19/6
    // MSB = 2 * ((1.5 - 19/6)^2 + 2 (4 - 19/6)^2) / 2 = 25/6; MSW = (0.5 + 2 + 0) / 3 = 5/6
    // ICC = (25/6 - 5/6) / (25/6 + 5/6) = 2/3
    expect(icc11([[1, 2], [3, 5], [4, 4]])).to.be.closeTo(2 / 3, 1e-12);
    // no disagreement within items: 1; all of the variance within items: (0 - 2) / (0 + 2) = -1
    expect(icc11([[1, 1], [3, 3]])).to.equal(1);
    expect(icc11([[1, 3], [3, 1]])).to.equal(-1);
    // undefined is reported as such, never as 0: no variance at all, one item, one repeat
    expect(icc11([[2, 2], [2, 2]])).to.equal(null);
    expect(icc11([[1, 2]])).to.equal(null);
    expect(icc11([[1], [2]])).to.equal(null);
  });

  it("the mean of the repeats: scores averaged over the scored repeats, following yes when the mean yes-rate is at least 1/2", () => {
    const result = (following: { yesRate?: number; score?: number; status?: "scored" | "unscored" }, quality: number | undefined): ScoreResult => ({
      backend: "judge",
      protocol: "mrc",
      promptVersion: "mrc-v1",
      model: "m",
      passes: 1,
      perspectives: {
        following: { status: following.status ?? "scored", score: following.score, yesRate: following.yesRate, passes: [] },
        preserving: { status: "scored", score: 5, passes: [] },
        quality: quality === undefined ? { status: "unscored", passes: [] } : { status: "scored", score: quality, passes: [] },
      },
      latencyMs: 1,
      cached: false,
      usage: { promptTokens: 10, completionTokens: 1 },
      judge: { host: "h", model: "m", answeredModel: "m-1", promptHash: "x", protocol: "mrc", protocolVersion: "mrc-v1" },
    });
    const m = meanOfRepeats([result({ yesRate: 1, score: 4 }, 2), result({ yesRate: 0, score: 2 }, undefined), result({ yesRate: 1, score: 3 }, 5)]);
    expect(m.perspectives.following).to.include({ status: "scored", score: 3, yesRate: 2 / 3 });
    expect(m.perspectives.quality).to.include({ status: "scored", score: 3.5 });
    expect(m.usage).to.deep.equal({ promptTokens: 30, completionTokens: 3 });
    expect(m.judge).to.include({ repeats: 3, answeredModel: "m-1" });
    expect(meanOfRepeats([result({ yesRate: 0 }, 1), result({ yesRate: 1 }, 1)]).perspectives.following.yesRate).to.equal(0.5);
    expect(meanOfRepeats([result({ status: "unscored" }, undefined), result({ status: "unscored" }, undefined)]).perspectives.quality.status).to.equal("unscored");
  });

  it("per figure: edits with a missing repeat are left out and counted", () => {
    const row = (quality: Array<number | undefined>): ResultRow =>
      ({ status: "ok", repeats: quality.map((q) => ({ quality: q === undefined ? { status: "unscored" } : { status: "scored", score: q } })) }) as unknown as ResultRow;
    const r = repeatability([row([1, 2]), row([3, 5]), row([4, 4]), row([2, undefined])])!;
    expect(r.repeats).to.equal(2);
    expect(r.figures.quality).to.deep.include({ n: 3, incomplete: 1, changedShare: 2 / 3 });
    expect(r.figures.quality!.icc).to.be.closeTo(2 / 3, 1e-12);
    // within-edit SDs: sqrt(0.5), sqrt(2), 0
    expect(r.figures.quality!.meanWithinSd).to.be.closeTo((Math.sqrt(0.5) + Math.sqrt(2)) / 3, 1e-12);
  });
});

/** The edit a request asks about is its last image. */
const editedUrl = (q: RecordedRequest) => {
  const user = q.body.messages.find((m) => m.role === "user")!;
  return (user.content as Array<{ type: string; image_url?: { url: string } }>).filter((c) => c.type === "image_url").at(-1)!.image_url!.url;
};

describe("bench rejudge: a finished run judged again, no editor, K repeats", function () {
  // CLI runs: about 5 s each on an idle machine, several times that on a loaded one
  this.timeout(240_000);

  it("judges the run's edits again with a judge whose answers move between repeats: ICC, within-edit SD and changed share as worked out by hand; repeats bypass the cache; cost at --price", async () => {
    const base = tempDir();
    // the run's editor lives in a folder that is gone before rejudging: any editor call would fail
    const model = copyFolder(TINY);
    const run = path.join(base, "run");
    const made = await runCli(["bench", "--suite", "sample", "--model", model, "--steps", "1", "--limit", "3", "--backend", "local", "--out", run]);
    expect(made.code, made.stderr).to.equal(0);
    rmSync(model, { recursive: true });
    const rows = readRows(path.join(run, "results.jsonl"));
    expect(rows).to.have.length(3);
    // which row a request is about, by the edit it was sent (the judge sends JPEGs fitted to 512)
    const urls = await Promise.all(rows.map((r) => imageDataUrl(readFileSync(path.join(run, "images", r.edited!)), 512)));
    expect(new Set(urls).size).to.equal(3);

    // per row and perspective, the n-th answer: row 0 steady, row 1 moves, row 2 moves a little
    const yes = [[true, true, true], [true, false, true], [false, false, false]];
    const quality = [[4, 4, 4], [2, 3, 4], [1, 1, 2]];
    const judge = await new FakeJudge().start();
    const asked = new Map<string, number>();
    judge.handler = (q) => {
      const i = urls.indexOf(editedUrl(q));
      const p = FakeJudge.perspective(q);
      const n = asked.get(`${i}|${p}`) ?? 0;
      asked.set(`${i}|${p}`, n + 1);
      if (i < 0 || n > 2) return { status: 400, body: '{"error": {"message": "unexpected request"}}' };
      if (p === "following") return { reply: `{"answer": "${yes[i][n] ? "yes" : "no"}", "score": 3}` };
      return { reply: `{"answer": "yes", "score": ${p === "quality" ? quality[i][n] : 5}}` };
    };
    const env = { OPENAI_BASE_URL: judge.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "judge-vlm", REWARD_EDIT_JUDGE_CACHE: tempDir() };
    try {
      // K = 1 first: the first answers, now in the cache
      const once = path.join(base, "once");
      const r1 = await runCli(["bench", "rejudge", run, "--out", once], env);
      expect(r1.code, r1.stderr).to.equal(0);
      expect(judge.requests).to.have.length(9);
      const judged = readRows(path.join(once, "results.jsonl"));
      expect(judged.map((r) => r.key)).to.deep.equal(rows.map((r) => r.key));
      for (const [i, r] of judged.entries()) {
        // the edit is the run's: same file, same settings and edit latency; only the judging is new
        expect(readFileSync(path.join(once, "images", r.edited!)).equals(readFileSync(path.join(run, "images", rows[i].edited!)))).to.equal(true);
        expect([r.settings, r.latency.editMs]).to.deep.equal([rows[i].settings, rows[i].latency.editMs]);
        expect(r.scorer).to.include({ backend: "judge", model: "judge-vlm" });
        expect(r.judge).to.include({ model: "judge-vlm", answeredModel: "judge-vlm", protocol: "mrc" });
        expect([r.scores!.following.yes, r.scores!.quality.score]).to.deep.equal([yes[i][0], quality[i][0]]);
        expect(r).to.not.have.property("repeats");
      }
      expect(JSON.parse(readFileSync(path.join(once, "run.json"), "utf8"))).to.include({ backend: "judge", protocol: "mrc" });

      // K = 3: repeat 1 comes from the cache, repeats 2 and 3 are asked
      const thrice = path.join(base, "thrice");
      const r3 = await runCli(["bench", "rejudge", run, "--out", thrice, "--judge-repeats", "3", "--price", "1,2"], env);
      expect(r3.code, r3.stderr).to.equal(0);
      expect(judge.requests).to.have.length(27);
      const rep = readRows(path.join(thrice, "results.jsonl"));
      for (const [i, r] of rep.entries()) {
        expect(r.repeats!.map((x) => [x.following!.yes, x.quality!.score])).to.deep.equal(yes[i].map((y, n) => [y, quality[i][n]]));
        expect(r.scores!.quality.score).to.be.closeTo((quality[i][0] + quality[i][1] + quality[i][2]) / 3, 1e-12);
        expect(r.judge).to.include({ repeats: 3 });
        // two asked repeats of three calls at 10 + 10 tokens; the cached one cost nothing
        expect(r.judgeUsage).to.deep.equal({ promptTokens: 60, completionTokens: 60 });
      }
      // following is yes on 2 of 3 repeats for row 1: the mean yes-rate 2/3 makes it yes
      expect(rep.map((r) => r.scores!.following.yes)).to.deep.equal([true, true, false]);
      const report = JSON.parse(readFileSync(path.join(thrice, "report.json"), "utf8"));
      const f = report.judge.repeatability.figures;
      expect(report.judge.repeatability.repeats).to.equal(3);
      // Quality [4,4,4], [2,3,4], [1,1,2]: MSB = 49/9, MSW = 4/9, ICC = (49/9 - 4/9) / (49/9 + 2 * 4/9) = 15/19
      expect(f.quality.icc).to.be.closeTo(15 / 19, 1e-12);
      expect(f.quality.meanWithinSd).to.be.closeTo((0 + 1 + Math.sqrt(1 / 3)) / 3, 1e-12);
      expect(f.quality).to.include({ n: 3, incomplete: 0 });
      expect(f.quality.changedShare).to.be.closeTo(2 / 3, 1e-12);
      // Following as 1/0, [1,1,1], [1,0,1], [0,0,0]: MSB = 7/9, MSW = 1/9, ICC = (7/9 - 1/9) / (7/9 + 2/9) = 2/3
      expect(f.following.icc).to.be.closeTo(2 / 3, 1e-12);
      expect(f.following.meanWithinSd).to.be.closeTo(Math.sqrt(1 / 3) / 3, 1e-12);
      expect(f.following.changedShare).to.be.closeTo(1 / 3, 1e-12);
      // Preserving never moved and never differed: ICC undefined (null), not 0
      expect(f.preserving).to.deep.equal({ n: 3, incomplete: 0, meanWithinSd: 0, icc: null, changedShare: 0 });
      expect(report.judge.line).to.contain("3 repeats per edit: Following ICC 0.67, within-edit SD 0.192, changed 33 % of 3; Preserving ICC undefined");
      expect(report.cost).to.include({ promptTokens: 180, completionTokens: 180 });
      expect(report.cost.dollars).to.be.closeTo((180 * 1 + 180 * 2) / 1e6, 1e-15);
      expect(r3.stdout).to.contain(report.judge.line).and.to.contain(report.cost.line);
      expect(JSON.parse(readFileSync(path.join(thrice, "run.json"), "utf8"))).to.include({ judgeRepeats: 3 });
    } finally {
      await judge.stop();
    }
  });

  it("refuses in one line: judging into the run itself, a folder that is no run, no judge configured", async () => {
    const dir = tempDir();
    const env = { OPENAI_BASE_URL: "http://127.0.0.1:9/v1", REWARD_EDIT_JUDGE_MODEL: "m" };
    const notRun = await runCli(["bench", "rejudge", dir, "--out", path.join(dir, "new")], env);
    expect(notRun.code).to.equal(1);
    expect(notRun.stderr.trim()).to.equal(`reward-edit: ${dir} is not a bench output folder (no results.jsonl or run.json)`);
    const same = await runCli(["bench", "rejudge", dir, "--out", dir], env);
    expect(same.stderr.trim()).to.equal("reward-edit: --out must be a new folder, not the run being judged again");
    const none = await runCli(["bench", "rejudge", dir, "--out", path.join(dir, "new")], { REWARD_EDIT_JUDGE_MODEL: "", REWARD_EDIT_JUDGE_CONFIG: "" });
    expect(none.stderr.trim()).to.equal("reward-edit: no judge configured: set REWARD_EDIT_JUDGE_MODEL (and OPENAI_BASE_URL)");
  });
});
