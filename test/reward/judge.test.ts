import { expect } from "chai";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { JudgeScorer, type JudgeConfig, judgeConfigFrom, parseReply, parseScoreList } from "../../reward/index.js";
import { startServer } from "../../src/server/server.js";
import { baseForm } from "../support/forms.js";
import { FakeJudge } from "../support/fake-judge.js";
import { imageDataUrl } from "../../reward/judge/judge.js";
import { PHOTOS, runCli, tempDir } from "../helpers.js";

const source = readFileSync(path.join(PHOTOS, "coffee.png"));
const edited = readFileSync(path.join(PHOTOS, "chelsea.png"));
const input = { source, edited, instruction: "make the mug red" };
const KEY = "sk-test-secret-123456";

describe("reply parsing (pure)", () => {
  const cases: Array<[string, string, number | undefined, boolean | undefined]> = [
    ["plain JSON", '{"reasoning": "ok", "answer": "yes", "score": 4}', 4, true],
    ["code-fenced JSON", '```json\n{"answer": "no", "score": 1}\n```', 1, false],
    ["prose around JSON, reasoning first", 'Let me look. The mug {is} red.\n{"reasoning": "mug red", "answer": "Yes", "score": 5}\nHope that helps', 5, true],
    ["python-dict style with trailing comma", "{'reasoning': 'meh', 'answer': 'no', 'score': 2,}", 2, false],
    ["bare keys", "{reasoning: \"x\", answer: \"yes\", score: 3}", 3, true],
    ["prose only", "The edit is decent. Answer: yes. Score: 3/5", 3, true],
    ["score as string", '{"answer": "yes", "score": "4"}', 4, true],
  ];
  for (const [name, text, score, yes] of cases) {
    it(`reads ${name}`, () => {
      const r = parseReply(text);
      expect(r.kind).to.equal("verdict");
      if (r.kind === "verdict") expect([r.verdict.score, r.verdict.yes]).to.deep.equal([score, yes]);
    });
  }
  it("never invents: out of range, missing score, refusals and empty replies", () => {
    expect(parseReply('{"answer": "yes", "score": 7}')).to.deep.equal({ kind: "unusable", why: "score out of range 0..5" });
    expect(parseReply('{"answer": "yes"}').kind).to.equal("unusable");
    expect(parseReply("I'm sorry, but I can't help with evaluating this image.").kind).to.equal("refusal");
    expect(parseReply("").kind).to.equal("unusable");
    expect(parseReply("{broken json ::: }").kind).to.equal("unusable");
  });
  it("reads pairwise winners", () => {
    const r = parseReply('{"reasoning": "B is cleaner", "winner": "B"}', "winner");
    expect(r.kind === "verdict" && r.verdict.winner).to.equal("B");
  });
});

describe("VLM judge against a chat-completions server on 127.0.0.1", function () {
  this.timeout(30_000);
  let server: FakeJudge;
  const config = (o: Partial<JudgeConfig> = {}): JudgeConfig => ({
    baseURL: server.url,
    apiKey: KEY,
    model: "judge-model-1",
    protocol: "mrc",
    timeoutMs: 5_000,
    concurrency: 4,
    passes: 1,
    maxRetries: 2,
    temperature: 0,
    imageSide: 128,
    ...o,
  });
  beforeEach(async () => {
    server = await new FakeJudge().start();
  });
  afterEach(() => server.stop());

  it("mrc: three calls with the right shape; scores, raw replies, version and latency recorded", async () => {
    server.handler = (r) => ({ reply: `{"reasoning": "${FakeJudge.perspective(r)} ok", "answer": "yes", "score": ${{ following: 4, preserving: 5, quality: 3 }[FakeJudge.perspective(r)]}}` });
    const r = await new JudgeScorer(config()).score(input);
    expect(server.requests).to.have.length(3);
    for (const req of server.requests) {
      expect(req.headers.authorization).to.equal(`Bearer ${KEY}`);
      expect(req.body.model).to.equal("judge-model-1");
      expect(req.body.temperature).to.equal(0);
      expect(req.body.messages[0].role).to.equal("system");
      const content = req.body.messages[1].content as Array<{ type: string; image_url?: { url: string } }>;
      const images = content.filter((c) => c.type === "image_url");
      expect(images).to.have.length(FakeJudge.perspective(req) === "quality" ? 1 : 2);
      for (const img of images) expect(img.image_url!.url).to.match(/^data:image\/jpeg;base64,\/9j\//);
      expect(FakeJudge.prompt(req)).to.contain(FakeJudge.perspective(req) === "quality" ? "visual quality" : "make the mug red");
    }
    expect(r).to.include({ backend: "judge", protocol: "mrc", promptVersion: "mrc-v1", model: "judge-model-1", passes: 1, cached: false });
    expect(r.perspectives.following).to.include({ status: "scored", score: 4, yesRate: 1 });
    expect(r.perspectives.preserving.score).to.equal(5);
    expect(r.perspectives.quality.score).to.equal(3);
    expect(r.perspectives.quality.passes[0].raw).to.contain('"score": 3');
    expect(r.perspectives.quality.passes[0].latencyMs).to.be.a("number");
    expect(JSON.stringify(r)).to.not.contain(KEY);
  });

  it("malformed JSON is retried once; twice malformed is recorded unscored with its raw text", async () => {
    server.handler = (r) =>
      FakeJudge.perspective(r) === "quality"
        ? { reply: "{score: ??? broken" }
        : server.requests.filter((x) => FakeJudge.perspective(x) === FakeJudge.perspective(r)).length === 1
          ? { reply: "{'answer': yes, 'score': }" }
          : { reply: '{"answer": "no", "score": 2}' };
    const r = await new JudgeScorer(config()).score(input);
    expect(r.perspectives.following).to.include({ status: "scored", score: 2 });
    expect(r.perspectives.following.passes[0].attempts).to.equal(2);
    expect(r.perspectives.quality.status).to.equal("unscored");
    expect(r.perspectives.quality.score).to.equal(undefined);
    expect(r.perspectives.quality.passes[0]).to.include({ raw: "{score: ??? broken", attempts: 2 });
    expect(server.requests).to.have.length(6);
  });

  it("prose around JSON is read; a score out of range is never clamped", async () => {
    server.handler = (r) =>
      FakeJudge.perspective(r) === "following"
        ? { reply: 'Looking at both images, the mug is now red.\n{"reasoning": "red mug", "answer": "yes", "score": 5}\nThat is my verdict.' }
        : FakeJudge.perspective(r) === "preserving"
          ? { reply: '{"answer": "yes", "score": 9}' }
          : { reply: '{"answer": "yes", "score": 4}' };
    const r = await new JudgeScorer(config()).score(input);
    expect(r.perspectives.following.score).to.equal(5);
    expect(r.perspectives.preserving.status).to.equal("unscored");
    expect(r.perspectives.preserving.passes[0].attempts).to.equal(2);
  });

  it("refusals are detected and recorded as refused (text and structured refusal)", async () => {
    server.handler = (r) =>
      FakeJudge.perspective(r) === "quality" ? { refusal: "I can't assist with that." } : { reply: "I'm sorry, but I can't help evaluate these images." };
    const r = await new JudgeScorer(config()).score(input);
    for (const p of ["following", "preserving", "quality"] as const) expect(r.perspectives[p].status).to.equal("refused");
  });

  it("429 with Retry-After is honoured before retrying", async () => {
    server.handler = (_r, n) => (n === 1 ? { status: 429, retryAfter: 1 } : { reply: '{"answer": "yes", "score": 4}' });
    const r = await new JudgeScorer(config({ concurrency: 1 })).score(input);
    expect(r.perspectives.following.status).to.equal("scored");
    expect(server.requests[1].at - server.requests[0].at).to.be.at.least(900);
  });

  it("500s are retried; a judge that keeps failing leaves the sample unscored, never scored", async () => {
    server.handler = (_r, n) => (n <= 2 ? { status: 500 } : { reply: '{"answer": "yes", "score": 3}' });
    const ok = await new JudgeScorer(config({ concurrency: 1 })).score(input);
    expect(ok.perspectives.following.status).to.equal("scored");
    server.handler = () => ({ status: 503 });
    const bad = await new JudgeScorer(config({ maxRetries: 1 })).score(input);
    expect(bad.perspectives.following.status).to.equal("unscored");
    expect(bad.perspectives.following.passes[0].raw).to.match(/request failed: 503/);
  });

  it("a reply slower than the timeout is abandoned and recorded unscored", async () => {
    server.handler = () => ({ delayMs: 1500, reply: '{"answer": "yes", "score": 4}' });
    const r = await new JudgeScorer(config({ timeoutMs: 300, maxRetries: 0 })).score(input);
    expect(r.perspectives.following.status).to.equal("unscored");
    expect(r.perspectives.following.passes[0].raw).to.match(/timed out/i);
  });

  it("a dropped connection is retried", async () => {
    server.handler = (_r, n) => (n === 1 ? { drop: true } : { reply: '{"answer": "yes", "score": 4}' });
    const r = await new JudgeScorer(config({ concurrency: 1 })).score(input);
    expect(r.perspectives.following.status).to.equal("scored");
    expect(server.requests.length).to.equal(4);
  });

  it("multi-round: analysis first, rating in a second turn of the same conversation", async () => {
    server.handler = (r) => (r.body.messages.length === 2 ? { reply: "The mug changed from white to red; nothing else moved." } : { reply: '{"answer": "yes", "score": 5}' });
    const r = await new JudgeScorer(config({ protocol: "multi-round" })).score(input);
    expect(r).to.include({ protocol: "multi-round", promptVersion: "multi-round-v1" });
    expect(server.requests).to.have.length(6);
    const second = server.requests.find((q) => q.body.messages.length === 4)!;
    expect(second.body.messages[2]).to.deep.equal({ role: "assistant", content: "The mug changed from white to red; nothing else moved." });
    expect(second.body.messages[3].content).to.match(/Reply with JSON only/);
    expect(r.perspectives.following.passes[0].raw).to.contain("---");
  });

  it("several passes are averaged with their spread", async () => {
    let k = 0;
    server.handler = () => ({ reply: `{"answer": "${k % 2 ? "no" : "yes"}", "score": ${[3, 5][k++ % 2]}}` });
    const r = await new JudgeScorer(config({ passes: 2, concurrency: 1 })).score(input);
    expect(r.passes).to.equal(2);
    expect(r.perspectives.following).to.include({ score: 4, spread: 1, yesRate: 0.5 });
  });

  it("pairwise: ranks N candidates by win rate over all pairs, a tie counting 0.5", async () => {
    const c = [source, edited, readFileSync(path.join(PHOTOS, "astronaut.png"))];
    const oneUrl = await imageDataUrl(edited, 128);
    // candidate 1 beats everyone; 0 and 2 tie
    server.handler = (r) => {
      const urls = (r.body.messages[1].content as Array<{ image_url?: { url: string } }>).filter((x) => x.image_url).map((x) => x.image_url!.url);
      const [a, b] = urls.slice(-2);
      return { reply: `{"reasoning": "x", "winner": "${a === oneUrl ? "A" : b === oneUrl ? "B" : "tie"}"}` };
    };
    const r = await new JudgeScorer(config()).rank(source, "make the mug red", c);
    expect(server.requests).to.have.length(9);
    expect(r.ranking[0]).to.include({ index: 1, winRate: 1 });
    expect(r.ranking.slice(1).map((x) => [x.index, x.winRate])).to.deep.equal([[0, 0.25], [2, 0.25]]);
    expect(r.comparisons.every((x) => x.status === "scored")).to.equal(true);
  });

  it("a disk cache answers a repeated scoring run without calling the judge", async () => {
    const dir = tempDir();
    const judge = new JudgeScorer(config({ cacheDir: dir }));
    await judge.score(input);
    const second = await judge.score(input);
    expect(second.cached).to.equal(true);
    expect(server.requests).to.have.length(3);
    expect(judge.cache!.hits / (judge.cache!.hits + judge.cache!.misses)).to.equal(0.5);
    // a different model is a different key
    await new JudgeScorer(config({ cacheDir: dir, model: "judge-model-2" })).score(input);
    expect(server.requests).to.have.length(6);
  });

  for (const limit of [2, 4]) {
    it(`concurrency ${limit}: at most ${limit} requests in flight, and that many used`, async () => {
      let inFlight = 0;
      let most = 0;
      server.handler = async () => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 80));
        inFlight--;
        return { reply: '{"answer": "yes", "score": 4}' };
      };
      // three perspectives x three passes: nine calls issued at once
      const r = await new JudgeScorer(config({ concurrency: limit, passes: 3 })).score(input);
      expect(server.requests).to.have.length(9);
      expect(r.perspectives.following.status).to.equal("scored");
      expect(most).to.equal(limit);
    });
  }

  it("REWARD_EDIT_JUDGE_CACHE: a second CLI process is answered from the disk cache", async () => {
    const cache = tempDir();
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY, REWARD_EDIT_JUDGE_MODEL: "judge-env", REWARD_EDIT_JUDGE_CACHE: cache };
    const args = ["score", "--source", path.join(PHOTOS, "coffee.png"), "--edited", path.join(PHOTOS, "chelsea.png"), "--instruction", "make the mug red"];
    const first = await runCli(args, env);
    expect(first.code, first.stderr).to.equal(0);
    expect(server.requests).to.have.length(3);
    expect(readdirSync(cache).length).to.be.greaterThan(0);
    const second = await runCli(args, env);
    expect(second.code, second.stderr).to.equal(0);
    expect(server.requests).to.have.length(3);
    const [a, b] = [JSON.parse(first.stdout), JSON.parse(second.stdout)];
    expect(b.cached).to.equal(true);
    expect(b.perspectives).to.deep.equal(a.perspectives);
  });

  it("CLI score --protocol multi-round: two turns per perspective; a protocol it does not know is one line", async () => {
    server.handler = (r) => (r.body.messages.length === 2 ? { reply: "The mug is now red." } : { reply: '{"answer": "yes", "score": 5}' });
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY, REWARD_EDIT_JUDGE_MODEL: "judge-env" };
    const args = ["score", "--source", path.join(PHOTOS, "coffee.png"), "--edited", path.join(PHOTOS, "chelsea.png"), "--instruction", "make the mug red"];
    const r = await runCli([...args, "--protocol", "multi-round"], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ protocol: "multi-round", promptVersion: "multi-round-v1" });
    expect(server.requests.map((q) => q.body.messages.length).sort()).to.deep.equal([2, 2, 2, 4, 4, 4]);
    const bad = await runCli([...args, "--protocol", "pairwise"], env);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim()).to.equal('reward-edit: --protocol must be mrc, multi-round or viescore, got "pairwise"');
  });

  it("a config file (REWARD_EDIT_JUDGE_CONFIG) is read, the environment overrides it, and a bad one is one line naming the key", async () => {
    const dir = tempDir();
    const file = path.join(dir, "judge.json");
    writeFileSync(file, JSON.stringify({ baseURL: server.url, apiKey: KEY, model: "judge-file", protocol: "multi-round", passes: 2, concurrency: 3, timeoutMs: 9000 }));
    expect(judgeConfigFrom({ REWARD_EDIT_JUDGE_CONFIG: file })).to.include({ model: "judge-file", protocol: "multi-round", passes: 2, concurrency: 3, timeoutMs: 9000, maxRetries: 3 });
    expect(judgeConfigFrom({ REWARD_EDIT_JUDGE_CONFIG: file, REWARD_EDIT_JUDGE_MODEL: "judge-env", REWARD_EDIT_JUDGE_PASSES: "1" })).to.include({ model: "judge-env", protocol: "multi-round", passes: 1 });
    server.handler = (r) => (r.body.messages.length === 2 ? { reply: "The mug is now red." } : { reply: '{"answer": "yes", "score": 5}' });
    const args = ["score", "--source", path.join(PHOTOS, "coffee.png"), "--edited", path.join(PHOTOS, "chelsea.png"), "--instruction", "make the mug red"];
    const r = await runCli(args, { REWARD_EDIT_JUDGE_CONFIG: file });
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ backend: "judge", model: "judge-file", protocol: "multi-round", passes: 2 });
    // two passes of three perspectives, two turns each
    expect(server.requests).to.have.length(12);
    expect(server.requests.every((q) => q.body.model === "judge-file")).to.equal(true);
    for (const [content, key] of [[{ model: "m", concurrency: 0 }, "concurrency"], [{ model: "m", colour: "red" }, "colour"]] as const) {
      writeFileSync(file, JSON.stringify(content));
      const bad = await runCli(args, { REWARD_EDIT_JUDGE_CONFIG: file });
      expect(bad.code).to.equal(1);
      expect(bad.stderr.trim().split("\n"), key).to.have.length(1);
      expect(bad.stderr, key).to.match(/judge configuration: /).and.to.contain(key);
    }
  });

  it("configuration from the standard variables; the CLI prints JSON and never the key", async () => {
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY, REWARD_EDIT_JUDGE_MODEL: "judge-env" };
    const c = judgeConfigFrom(env);
    expect(c).to.include({ baseURL: server.url, model: "judge-env", protocol: "mrc" });
    expect(judgeConfigFrom({})).to.equal(null);
    const r = await runCli(["score", "--source", path.join(PHOTOS, "coffee.png"), "--edited", path.join(PHOTOS, "chelsea.png"), "--instruction", "make the mug red", "--passes", "2"], env);
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    expect(out).to.include({ backend: "judge", model: "judge-env", passes: 2 });
    expect(r.stdout + r.stderr).to.not.contain(KEY);
  });
});

describe("VIEScore protocol (GEdit-Bench's judge)", function () {
  this.timeout(30_000);
  it("reads the sub-score list from JSON, sloppy JSON and prose; never invents one", () => {
    const read = (t: string) => {
      const r = parseScoreList(t);
      return r.kind === "verdict" ? r.verdict.scores : r.kind === "unusable" ? r.why : r.kind;
    };
    expect(read('{"score": [7, 4], "reasoning": "ok"}')).to.deep.equal([7, 4]);
    expect(read('{"reasoning": "r", "score": ["8", "10"]}')).to.deep.equal([8, 10]);
    expect(read("```json\n{'reasoning': 'r', 'score': [3, 5],}\n```")).to.deep.equal([3, 5]);
    expect(read('Here: {"reasoning": "the "red" mug", "score": [6, 2]} done')).to.deep.equal([6, 2]);
    expect(read("score: [9, 9]")).to.deep.equal([9, 9]);
    expect(read('{"score": [11, 5]}')).to.equal("sub-score out of range 0..10");
    expect(read('{"score": [7]}')).to.equal("score list has 1 entries, 2 were asked for");
    expect(read('{"score": 7}')).to.equal("score is not a list");
    expect(read("The weather is nice.")).to.equal("no score list found");
    expect(read("")).to.equal("empty reply");
    expect(read("I'm sorry, but I can't help with that.")).to.equal("refusal");
  });

  let server: FakeJudge;
  beforeEach(async () => {
    server = await new FakeJudge().start();
  });
  afterEach(() => server.stop());
  const config = (o: Partial<JudgeConfig> = {}): JudgeConfig => ({ baseURL: server.url, apiKey: KEY, model: "vie-judge", protocol: "viescore", timeoutMs: 5_000, concurrency: 4, passes: 1, maxRetries: 0, temperature: 0, imageSide: 128, ...o });
  const isSc = (r: Parameters<typeof FakeJudge.images>[0]) => FakeJudge.images(r).length === 2;

  it("SC on source + edit + instruction, PQ on the edit alone; SC, PQ = min of their lists, O = sqrt(SC * PQ)", async () => {
    server.handler = (r) => ({ reply: isSc(r) ? '{"reasoning": "partly", "score": [4, 9]}' : '{"reasoning": "clean", "score": [8, 6]}' });
    const r = await new JudgeScorer(config()).score(input);
    expect(server.requests).to.have.length(2);
    const sc = server.requests.find(isSc)!;
    const pq = server.requests.find((q) => !isSc(q))!;
    expect(FakeJudge.prompt(sc)).to.contain('"make the mug red"').and.contain("Editing success").and.contain("Over-editing");
    expect(FakeJudge.prompt(pq)).to.not.contain("make the mug red");
    expect(FakeJudge.prompt(pq)).to.contain("Naturalness").and.contain("Artifacts");
    // the images travel after the text, as base64 JPEG
    const parts = (sc.body.messages[1].content as Array<{ type: string; image_url?: { url: string } }>).map((c) => c.type);
    expect(parts).to.deep.equal(["text", "image_url", "image_url"]);
    expect(r).to.include({ protocol: "viescore", promptVersion: "viescore-v1", model: "vie-judge" });
    expect(r.viescore!.sc).to.deep.include({ status: "scored", score: 4, lists: [[4, 9]], reason: "partly" });
    expect(r.viescore!.pq).to.deep.include({ status: "scored", score: 6, lists: [[8, 6]] });
    expect(r.viescore!.o).to.be.closeTo(Math.sqrt(24), 1e-12);
    // and the perspectives, halved onto the project's 0..5
    expect([r.perspectives.following.score, r.perspectives.preserving.score, r.perspectives.quality.score]).to.deep.equal([2, 4.5, 3]);
  });

  it("an unusable answer is asked once more, then unscored: no SC, no O, the replies kept", async () => {
    server.handler = (r) => ({ reply: isSc(r) ? "Nice picture!" : '{"score": [7, 7]}' });
    const r = await new JudgeScorer(config()).score(input);
    expect(server.requests.filter(isSc)).to.have.length(2);
    expect(r.viescore!.sc).to.deep.include({ status: "unscored", lists: [] });
    expect(r.viescore!.sc.score).to.equal(undefined);
    expect(r.viescore!.sc.raw).to.contain("Nice picture!");
    expect(r.viescore!.o).to.equal(undefined);
    expect(r.viescore!.pq.score).to.equal(7);
    expect(r.perspectives.following.status).to.equal("unscored");
  });

  it("CLI score --protocol viescore and POST /v1/scores with protocol=viescore", async () => {
    server.handler = (r) => ({ reply: isSc(r) ? '{"reasoning": "r", "score": [9, 4]}' : '{"reasoning": "r", "score": [9, 9]}' });
    const env = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY, REWARD_EDIT_JUDGE_MODEL: "vie-judge" };
    const cli = await runCli(["score", "--source", path.join(PHOTOS, "coffee.png"), "--edited", path.join(PHOTOS, "chelsea.png"), "--instruction", "make the mug red", "--protocol", "viescore"], env);
    expect(cli.code, cli.stderr).to.equal(0);
    expect(JSON.parse(cli.stdout).viescore).to.deep.include({ o: 6 });

    Object.assign(process.env, env);
    try {
      const s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", workers: 1 }, {});
      try {
        const post = (fields: Record<string, string>) => fetch(`${s.url}/v1/scores`, { method: "POST", body: baseForm({ instruction: "make the mug red", ...fields }, { source, edited }) });
        const v = (await (await post({ protocol: "viescore" })).json()) as { protocol: string; viescore: { sc: { score: number }; pq: { score: number }; o: number } };
        expect(v).to.deep.include({ protocol: "viescore" });
        expect([v.viescore.sc.score, v.viescore.pq.score, v.viescore.o]).to.deep.equal([4, 9, 6]);
        // the server's own protocol when none is asked for
        expect(((await (await post({})).json()) as { protocol: string }).protocol).to.equal("mrc");
        const bad = await post({ protocol: "viescore", backend: "local" });
        expect(bad.status).to.equal(400);
        expect(((await bad.json()) as { error: { field: string } }).error.field).to.equal("protocol");
        expect((await post({ protocol: "coin-toss" })).status).to.equal(400);
      } finally {
        await s.stop();
      }
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
  });
});
