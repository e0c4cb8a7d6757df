import { expect } from "chai";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { JudgeScorer, type JudgeConfig, judgeConfigFrom } from "../../reward/index.js";
import { MASK_NOTE } from "../../reward/judge/prompts.js";
import { checkJudges } from "../../src/benchmark/merge.js";
import { readRows } from "../../src/benchmark/results.js";
import { FakeJudge } from "../support/fake-judge.js";
import { PHOTOS, ROOT, TINY, runCli, tempDir } from "../helpers.js";

const input = { source: readFileSync(path.join(PHOTOS, "coffee.png")), edited: readFileSync(path.join(PHOTOS, "chelsea.png")), instruction: "make the mug red" };
/** A provider answers the alias with its dated snapshot. */
const SNAPSHOT: Record<string, string> = { "gpt-4o": "gpt-4o-2024-08-06" };
/** The hash of the prompt templates, worked out here from the file itself. */
const hashOf = (protocol: string) =>
  createHash("sha256")
    .update(JSON.stringify(JSON.parse(readFileSync(path.join(ROOT, "reward", "judge", "prompts", `${protocol}-v1.json`), "utf8"))))
    .update("\n")
    .update(MASK_NOTE)
    .digest("hex");

describe("judge pinning: who judged, with what settings, for how many tokens", function () {
  // CLI runs: about 5 s each on an idle machine, several times that on a loaded one
  this.timeout(180_000);
  let server: FakeJudge;
  const config = (o: Partial<JudgeConfig> = {}): JudgeConfig => ({
    baseURL: server.url,
    apiKey: "k",
    model: "gpt-4o",
    protocol: "mrc",
    timeoutMs: 5_000,
    concurrency: 4,
    passes: 1,
    maxRetries: 0,
    temperature: 0,
    imageSide: 64,
    ...o,
  });
  beforeEach(async () => {
    server = await new FakeJudge().start();
    server.answeredModel = (asked) => SNAPSHOT[asked] ?? asked;
    server.usage = () => ({ prompt_tokens: 100, completion_tokens: 7 });
  });
  afterEach(() => server.stop());

  it("the result records host, configured and answered model, temperature, seed, max tokens, prompt hash and protocol version; seed and max_tokens are sent", async () => {
    const r = await new JudgeScorer(config({ seed: 42, maxTokens: 300 })).score(input);
    expect(server.requests).to.have.length(3);
    for (const q of server.requests) expect([q.body.model, q.body.temperature, q.body.seed, q.body.max_tokens]).to.deep.equal(["gpt-4o", 0, 42, 300]);
    expect(r.judge).to.deep.equal({
      host: new URL(server.url).host,
      model: "gpt-4o",
      answeredModel: "gpt-4o-2024-08-06",
      temperature: 0,
      seed: 42,
      maxTokens: 300,
      promptHash: hashOf("mrc"),
      protocol: "mrc",
      protocolVersion: "mrc-v1",
    });
    expect(r.usage).to.deep.equal({ promptTokens: 300, completionTokens: 21 });
    // unset, neither is sent
    await new JudgeScorer(config()).score(input);
    expect(server.requests.slice(3).every((q) => !("seed" in q.body) && !("max_tokens" in q.body))).to.equal(true);
  });

  it("tokens are summed over passes, the retry of an unusable reply and both turns of multi-round", async () => {
    let broken = true;
    server.handler = (q) => {
      if (FakeJudge.perspective(q) !== "quality" || !broken) return { reply: '{"answer": "yes", "score": 4}' };
      broken = false;
      return { reply: "no score here" };
    };
    // mrc, two passes: 6 calls and one retry
    const two = await new JudgeScorer(config({ passes: 2 })).score(input);
    expect(server.requests).to.have.length(7);
    expect(two.usage).to.deep.equal({ promptTokens: 700, completionTokens: 49 });
    // multi-round: the analysis turn and the rating turn both count
    server.handler = (q) => (q.body.messages.length === 2 ? { reply: "The mug is red." } : { reply: '{"answer": "yes", "score": 5}' });
    const mr = await new JudgeScorer(config({ protocol: "multi-round" })).score(input);
    expect(server.requests).to.have.length(13);
    expect(mr.usage).to.deep.equal({ promptTokens: 600, completionTokens: 42 });
    expect(mr.judge).to.include({ protocol: "multi-round", protocolVersion: "multi-round-v1", promptHash: hashOf("multi-round") });
    expect(hashOf("multi-round")).to.not.equal(hashOf("mrc"));
  });

  it("a cached answer costs 0 tokens and keeps who answered it; repeat 2 is not answered from repeat 1's cache entry", async () => {
    const cacheDir = tempDir();
    const judge = new JudgeScorer(config({ cacheDir }));
    await judge.score(input);
    const again = await judge.score(input);
    expect(server.requests).to.have.length(3);
    expect(again).to.include({ cached: true });
    expect(again.usage).to.deep.equal({ promptTokens: 0, completionTokens: 0 });
    expect(again.judge!.answeredModel).to.equal("gpt-4o-2024-08-06");
    const second = await judge.score(input, { repeat: 1 });
    expect(server.requests).to.have.length(6);
    expect(second.cached).to.equal(false);
    // another temperature or seed is another judge: not answered from the cache either
    await new JudgeScorer(config({ cacheDir, seed: 1 })).score(input);
    await new JudgeScorer(config({ cacheDir, temperature: 0.7 })).score(input);
    expect(server.requests).to.have.length(12);
  });

  it("seed, max tokens, temperature and price come from the config file or the environment; a bad price is one line naming it", async () => {
    const file = path.join(tempDir(), "judge.json");
    writeFileSync(file, JSON.stringify({ model: "gpt-4o", seed: 3, maxTokens: 200, price: [2.5, 10] }));
    expect(judgeConfigFrom({ REWARD_EDIT_JUDGE_CONFIG: file })).to.deep.include({ seed: 3, maxTokens: 200, price: [2.5, 10], temperature: 0 });
    expect(
      judgeConfigFrom({ REWARD_EDIT_JUDGE_CONFIG: file, REWARD_EDIT_JUDGE_SEED: "9", REWARD_EDIT_JUDGE_MAX_TOKENS: "50", REWARD_EDIT_JUDGE_TEMPERATURE: "0.5", REWARD_EDIT_JUDGE_PRICE: "0.15,0.6" }),
    ).to.deep.include({ seed: 9, maxTokens: 50, temperature: 0.5, price: [0.15, 0.6] });
    expect(() => judgeConfigFrom({ REWARD_EDIT_JUDGE_MODEL: "m", REWARD_EDIT_JUDGE_PRICE: "cheap" })).to.throw(/judge configuration: price/);
    const bad = await runCli(["bench", "--suite", "sample", "--model", TINY, "--limit", "1", "--price", "1", "--out", path.join(tempDir(), "x")], { REWARD_EDIT_JUDGE_MODEL: "gpt-4o", OPENAI_BASE_URL: server.url });
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim()).to.equal('reward-edit: --price must be IN,OUT (dollars per million prompt and completion tokens), got "1"');
  });

  it("bench rows carry the snapshot and the tokens; report.json and summary.md give the judge line and the cost at --price", async () => {
    const out = path.join(tempDir(), "run");
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "gpt-4o", REWARD_EDIT_JUDGE_SEED: "7" };
    const r = await runCli(["bench", "--suite", "sample", "--model", TINY, "--steps", "1", "--limit", "2", "--backend", "judge", "--price", "2.5,10", "--out", out], env);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(2);
    for (const row of rows) {
      expect(row.judge).to.include({ model: "gpt-4o", answeredModel: "gpt-4o-2024-08-06", seed: 7, temperature: 0, protocol: "mrc", promptHash: hashOf("mrc") });
      expect(row.judgeUsage).to.deep.equal({ promptTokens: 300, completionTokens: 21 });
      expect(row.latency.editMs).to.be.greaterThan(0);
    }
    const report = JSON.parse(readFileSync(path.join(out, "report.json"), "utf8"));
    expect(report.judge).to.include({ mixed: false });
    expect(report.judge.judges).to.have.length(1);
    expect(report.judge.line).to.equal(`Judge: gpt-4o (answered gpt-4o-2024-08-06) at ${new URL(server.url).host}, temperature 0, seed 7, mrc-v1 prompts sha256 ${hashOf("mrc").slice(0, 12)}`);
    // 600 prompt tokens at $2.50 and 42 completion tokens at $10 per million
    expect(report.cost).to.include({ judgedRows: 2, promptTokens: 600, completionTokens: 42 });
    expect(report.cost.dollars).to.be.closeTo((600 * 2.5 + 42 * 10) / 1e6, 1e-12);
    expect(report.cost.price).to.deep.equal({ input: 2.5, output: 10 });
    const edits = rows.map((x) => x.latency.editMs).sort((a, b) => a - b);
    expect(report.cost.editLatencyMs).to.deep.equal({ p50: edits[0], p95: edits[1] });
    expect(report.cost.line).to.contain("600 prompt + 42 completion judge tokens over 2 rows, estimated $0.0019 at $2.5/$10 per million");
    const summary = readFileSync(path.join(out, "summary.md"), "utf8");
    expect(summary).to.contain(report.judge.line).and.to.contain(report.cost.line);
    expect(r.stdout).to.contain(report.cost.line);
    // --refine 2 --judge-repeats 2, no --price: the best round is repeat 1, one more repeat is asked;
    // the tokens of both rounds and the repeat are summed, and there are no dollars
    const twice = path.join(tempDir(), "twice");
    server.handler = () => ({ reply: '{"answer": "no", "score": 1}' });
    const r2 = await runCli(["bench", "--suite", "sample", "--model", TINY, "--steps", "1", "--limit", "1", "--backend", "judge", "--refine", "2", "--judge-repeats", "2", "--out", twice], env);
    expect(r2.code, r2.stderr).to.equal(0);
    const [row] = readRows(path.join(twice, "results.jsonl"));
    expect(row.refine!.rounds).to.equal(2);
    expect(row.repeats).to.have.length(2);
    expect(row.judge).to.include({ repeats: 2 });
    expect(row.judgeUsage).to.deep.equal({ promptTokens: 900, completionTokens: 63 });
    const again = JSON.parse(readFileSync(path.join(twice, "report.json"), "utf8"));
    expect(again.cost).to.not.have.property("dollars");
    expect(again.cost.line).to.contain("no price given");
    // a judge that never moved: ICC undefined, nothing changed
    expect(again.judge.repeatability.figures.quality).to.include({ icc: null, changedShare: 0, meanWithinSd: 0 });
  });

  it("bench merge refuses shards judged by different snapshots in one line, and with --allow-mixed-judges merges them and says so", async () => {
    const base = tempDir();
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "gpt-4o" };
    const shard = async (i: number, snapshot: string) => {
      server.answeredModel = () => snapshot;
      const r = await runCli(["bench", "--suite", "sample", "--model", TINY, "--steps", "1", "--limit", "2", "--backend", "judge", "--shard", `${i}/2`, "--out", path.join(base, `s${i}`)], env);
      expect(r.code, r.stderr).to.equal(0);
      return path.join(base, `s${i}`);
    };
    const s0 = await shard(0, "gpt-4o-2024-08-06");
    const s1 = await shard(1, "gpt-4o-2024-11-20");
    const refused = await runCli(["bench", "merge", "--out", path.join(base, "m"), s0, s1]);
    expect(refused.code).to.equal(1);
    const line = refused.stderr.trim();
    expect(line.split("\n")).to.have.length(1);
    expect(line).to.match(/^reward-edit: the rows were judged by 2 different judges: /);
    expect(line).to.contain(`answered gpt-4o-2024-08-06) at ${new URL(server.url).host}`).and.to.contain(`[1 rows in ${s0}]`);
    expect(line).to.contain("answered gpt-4o-2024-11-20)").and.to.contain(`[1 rows in ${s1}]`);
    expect(line).to.contain("give --allow-mixed-judges to merge them anyway");
    const merged = path.join(base, "mixed");
    const ok = await runCli(["bench", "merge", "--allow-mixed-judges", "--out", merged, s0, s1]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stderr).to.contain("Judges MIXED (2 judges");
    const report = JSON.parse(readFileSync(path.join(merged, "report.json"), "utf8"));
    expect(report.judge.mixed).to.equal(true);
    expect(report.judge.mixedJudges).to.have.length(2);
    expect(report.judge.mixedJudges.join(" ")).to.contain("gpt-4o-2024-08-06").and.to.contain("gpt-4o-2024-11-20");
    expect(readFileSync(path.join(merged, "summary.md"), "utf8")).to.contain("Judges MIXED (2 judges; merged with --allow-mixed-judges");
    // rows of one judge pass the check, whatever their repeat count
    const one = readRows(path.join(s0, "results.jsonl"));
    expect(() => checkJudges([{ dir: s0, rows: one }, { dir: "copy", rows: one.map((x) => ({ ...x, judge: { ...x.judge!, repeats: 3 } })) }])).to.not.throw();
  });
});
