import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type EditorModel, type Rewards, edit, loadModel } from "../../editor/index.js";
import { JudgeScorer, type ScoreResult, judgeConfigFrom } from "../../reward/index.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { decodeRaster } from "../../raster/raster.js";
import { type SyntheticCase, scoreSynthetic } from "../../reward/local/synthetic.js";
import { loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";
import { type RoundSettings, needFor, nextRound, refine, verdictOf } from "../../src/refine/index.js";
import { FakeJudge, type RecordedRequest } from "../support/fake-judge.js";
import { ROOT, TINY, runCli, tempDir } from "../helpers.js";

const score = (f?: number, p?: number, q?: number, yes?: boolean): ScoreResult => {
  const cell = (s?: number, y?: boolean) =>
    s === undefined ? { status: "not_judged" as const, reason: "cannot tell", passes: [] } : { status: "scored" as const, score: s, yesRate: y === undefined ? undefined : y ? 1 : 0, reason: "because", passes: [] };
  return { backend: "judge", protocol: "mrc", promptVersion: "v1", model: "m", passes: 1, perspectives: { following: cell(f, yes), preserving: cell(p), quality: cell(q) }, latencyMs: 0, cached: false };
};

describe("refinement: verdicts and the next round's settings", () => {
  const first: RoundSettings = { instruction: "make the mug red", rewards: [5, 5, 5], textGuidance: 3, imageGuidance: 1.5, seed: 10, from: "source" };

  it("a level L is met by a score of L - 1.5; a yes/no answer decides following; unjudged perspectives neither pass nor fail", () => {
    expect(needFor(5)).to.equal(3.5);
    const v = verdictOf(score(4, 2, undefined, false), [5, 5, 5]);
    expect(v.perspectives.following).to.include({ judged: true, met: false, score: 0 });
    expect(v.perspectives.preserving).to.include({ judged: true, met: false });
    expect(v.perspectives.quality.judged).to.equal(false);
    expect(v.met).to.equal(false);
    expect(verdictOf(score(undefined, 4, 4), [5, 5, 5]).met).to.equal(true);
    expect(verdictOf(score(2, 2, 2), [3, 3, 3]).met).to.equal(true);
  });

  it("following short -> more text guidance, less image guidance, new seed; preserving short -> more image guidance and its level raised", () => {
    const f = nextRound(first, verdictOf(score(1, 5, 5), [5, 5, 5]), 1, first);
    expect(f.settings.textGuidance).to.equal(4.5);
    expect(f.settings.imageGuidance).to.be.below(1.5);
    expect(f.settings.seed).to.not.equal(first.seed);
    expect(f.settings.from).to.equal("last"); // the default: carry a half-done edit further
    expect(f.changes.join(" ")).to.match(/text guidance 3 -> 4.5 \(following 1 < 3.5 \("because"\)\)/);
    const p = nextRound({ ...first, rewards: [5, 2, 5] }, verdictOf(score(5, 1, 5), [5, 2, 5]), 1, first);
    expect(p.settings.imageGuidance).to.equal(1.5); // level 2 asks for 0.5: a score of 1 meets it
    expect(p.settings.rewards).to.deep.equal([5, 2, 5]);
    const p2 = nextRound({ ...first, rewards: [5, 4, 5] }, verdictOf(score(5, 1, 5), [5, 4, 5]), 1, first);
    expect(p2.settings.imageGuidance).to.be.above(1.5);
    expect(p2.settings.rewards).to.deep.equal([5, 5, 5]);
    expect(p2.settings.from).to.equal("source"); // a preservation failure starts again from the source
    const z = nextRound({ ...first, textGuidance: 0 }, verdictOf(score(0, 5, 5), [5, 5, 5]), 1, first);
    expect(z.settings.textGuidance).to.equal(1.5); // a scale of 0 still moves
  });

  it("quality short -> its level raised to 5; the guidance factors (x1.5 or +1.5 text, x0.85 / x1.3 image) and their bounds", () => {
    const q = nextRound({ ...first, rewards: [5, 5, 3] }, verdictOf(score(5, 5, 0), [5, 5, 3]), 1, first);
    expect(q.settings.rewards).to.deep.equal([5, 5, 5]);
    expect(q.settings).to.include({ textGuidance: 3, imageGuidance: 1.5, from: "source" }); // quality alone moves no guidance
    expect(q.changes[1]).to.match(/^quality level 3 -> 5 \(quality 0 < 1.5/);
    // following short: text x1.5 when that is more than +1.5, image x0.85
    const f = nextRound({ ...first, textGuidance: 6, imageGuidance: 2 }, verdictOf(score(1, 5, 5), [5, 5, 5]), 1, first);
    expect(f.settings.textGuidance).to.equal(9);
    expect(f.settings.imageGuidance).to.be.closeTo(1.7, 1e-12);
    // bounds: text at most 12, image at least 1 (following) and at most 4 (preserving)
    expect(nextRound({ ...first, textGuidance: 10, imageGuidance: 1.1 }, verdictOf(score(1, 5, 5), [5, 5, 5]), 1, first).settings).to.include({ textGuidance: 12, imageGuidance: 1 });
    const p = nextRound({ ...first, imageGuidance: 2 }, verdictOf(score(5, 1, 5), [5, 5, 5]), 1, first);
    expect(p.settings.imageGuidance).to.be.closeTo(2.6, 1e-12);
    expect(nextRound({ ...first, imageGuidance: 3.5 }, verdictOf(score(5, 1, 5), [5, 5, 5]), 1, first).settings.imageGuidance).to.equal(4);
    // both short: following's text rule, preservation keeps the image guidance and raises its level
    const b = nextRound({ ...first, rewards: [5, 3, 5] }, verdictOf(score(1, 0, 5), [5, 3, 5]), 1, first);
    expect(b.settings).to.include({ textGuidance: 4.5, imageGuidance: 1.5 });
    expect(b.settings.rewards).to.deep.equal([5, 5, 5]);
    // each round's seed is the first seed plus 7919 per round, whatever failed
    expect(nextRound(first, verdictOf(score(1, 5, 5), [5, 5, 5]), 3, first).settings.seed).to.equal(10 + 3 * 7919);
  });
});

/**
 * A judge that tells the truth about one property: whether the backdrop (the top rows of the
 * image) now has the colour the instruction names, judged from the image it was sent.
 */
function truthfulBackground(palette: Record<string, [number, number, number]>) {
  const names = Object.keys(palette).sort((a, b) => b.length - a.length);
  const top = async (png: Buffer) => {
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const rows = Math.floor(info.height * 0.3);
    const sum = [0, 0, 0];
    for (let i = 0; i < rows * info.width; i++) for (let k = 0; k < 3; k++) sum[k] += data[i * 3 + k] / 255;
    return sum.map((s) => s / (rows * info.width));
  };
  const nearest = (c: number[]) =>
    Object.entries(palette).reduce((best, [n, rgb]) => (Math.hypot(...rgb.map((v, k) => v - c[k])) < Math.hypot(...palette[best].map((v, k) => v - c[k])) ? n : best), names[0]);
  const verdict = async (instruction: string, edited: Buffer) => {
    const asked = names.find((n) => instruction.replaceAll("gray", "grey").includes(n))!;
    const seen = nearest(await top(edited));
    return { asked, seen, yes: seen === asked };
  };
  const handler = async (r: RecordedRequest) => {
    if (FakeJudge.perspective(r) !== "following") return { reply: '{"reasoning": "nothing else changed", "answer": "yes", "score": 5}' };
    const instruction = /instruction was: "([^"]*)"/.exec(FakeJudge.prompt(r))![1];
    const [, edited] = FakeJudge.images(r);
    const v = await verdict(instruction, edited);
    const reasoning = v.yes ? `the background is ${v.seen}` : `the background is ${v.seen}, not ${v.asked}`;
    return { reply: JSON.stringify({ reasoning, answer: v.yes ? "yes" : "no", score: v.yes ? 5 : 0 }) };
  };
  return { handler, verdict };
}

describe("refinement with a loopback judge that checks the background colour (bundled model)", function () {
  this.timeout(180_000);
  let judge: FakeJudge;
  let model: EditorModel;
  const suite = path.join(ROOT, "models", "heldout");
  const palette = JSON.parse(readFileSync(path.join(suite, "palette.json"), "utf8")).backgrounds as Record<string, [number, number, number]>;
  const truthful = truthfulBackground(palette);
  const source = readFileSync(path.join(suite, "syn-0007-source.png")); // a red bottle on mint
  const instruction = "make the background dark blue";

  before(async () => {
    judge = await new FakeJudge().start();
    judge.handler = truthful.handler;
    model = await loadModel(BUNDLED_MODEL);
  });
  after(async () => {
    await judge.stop();
    await model.dispose();
  });

  const scorer = () => new JudgeScorer(judgeConfigFrom({ OPENAI_BASE_URL: judge.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "fake-vlm" })!);
  const runEdit = async (s: RoundSettings, image: Buffer) =>
    (await edit(model, { image, instruction: s.instruction, rewards: s.rewards, textGuidance: s.textGuidance, imageGuidance: s.imageGuidance, seed: s.seed })).image;

  it("a model that cannot edit is caught in every round: the rounds run out, each one changing the settings", async () => {
    const tiny = await loadModel(TINY);
    try {
      const run = async (s: RoundSettings, image: Buffer) =>
        (await edit(tiny, { image, instruction: s.instruction, rewards: s.rewards, textGuidance: s.textGuidance, imageGuidance: s.imageGuidance, seed: s.seed, steps: 3 })).image;
      const r = await refine({ source, instruction, rewards: [5, 5, 5], textGuidance: 3, imageGuidance: 1.5, seed: 3, rounds: 3 }, run, scorer());
      expect(r.rounds).to.have.length(3);
      expect(r.stopped).to.equal("rounds");
      for (const [k, round] of r.rounds.entries()) {
        expect((await truthful.verdict(instruction, round.image)).yes).to.equal(false);
        expect(round.verdict.perspectives.following).to.include({ judged: true, met: false, score: 0 });
        if (k === 0) continue;
        expect(round.settings.textGuidance).to.be.above(r.rounds[k - 1].settings.textGuidance);
        expect(round.settings.seed).to.not.equal(r.rounds[k - 1].settings.seed);
        expect(round.changes[1]).to.match(/^text guidance .* \(following 0 < 3.5 \("the background is [\w ]+, not dark blue"\)\)/);
      }
      expect(r.rounds[r.best].verdict.merit).to.equal(Math.max(...r.rounds.map((x) => x.verdict.merit)));
    } finally {
      await tiny.dispose();
    }
  });

  it("where the bundled model's first round misses, a later round is really fixed: the judge passes it and the truth agrees", async () => {
    // world v2's held-out colour/backdrop pairs: on v1's scenes the shipped editor missed none of
    // 50 backgrounds, so there was nothing to refine
    const pairs = path.join(ROOT, "models", "heldout-v2", "pairs");
    const truth = truthfulBackground(JSON.parse(readFileSync(path.join(pairs, "palette.json"), "utf8")).colours);
    judge.handler = truth.handler;
    // the truth is the exact synthetic scorer (the scene's recorded backdrop shade, over its own
    // region), a different measurement from the judge's (the top rows' nearest colour)
    const suite = await loadSyntheticSuite(pairs);
    const exact = async (c: SyntheticCase, png: Buffer) => scoreSynthetic(c, await decodeRaster(png), suite.palette).following;
    const cases = suite.cases.filter((c) => c.record.kind === "background");
    let missed = 0;
    let fixed: { id: string; first: boolean; last: boolean } | undefined;
    try {
      for (const [i, c] of cases.entries()) {
        const src = readFileSync(sourceFile(suite, c.record.id));
        const r = await refine({ source: src, instruction: c.record.instruction, rewards: [5, 5, 5], textGuidance: 3, imageGuidance: 1.5, seed: 100 + i, rounds: 3 }, runEdit, scorer());
        if (r.rounds[0].verdict.met) continue;
        missed++;
        if (r.stopped === "met") {
          const last = r.rounds[r.rounds.length - 1];
          fixed = { id: c.record.id, first: await exact(c, r.rounds[0].image), last: await exact(c, last.image) };
          console.log(`      ${c.record.id} "${c.record.instruction}": missed in round 1, met in round ${r.rounds.length} (${missed} first-round misses searched)`);
          break;
        }
      }
    } finally {
      judge.handler = truthful.handler;
    }
    expect(missed, `no first round missed in ${cases.length} background edits: nothing to refine`).to.be.greaterThan(0);
    expect(fixed, "a missed first round that a later round fixed").to.not.equal(undefined);
    // the exact scorer agrees: round 1 did not follow, the round that ended the loop does
    expect(fixed).to.deep.include({ first: false, last: true });
  });

  it("a first round that already passes ends the loop after one edit", async () => {
    const r = await refine({ source, instruction, rewards: [5, 5, 5], textGuidance: 3, imageGuidance: 1.5, seed: 3, rounds: 3 }, runEdit, scorer());
    expect(r.rounds).to.have.length(1);
    expect(r.stopped).to.equal("met");
  });

  it("CLI: edit --refine writes the best round, every round and rounds.json", async () => {
    const dir = tempDir();
    const src = path.join(dir, "src.png");
    await sharp(source).toFile(src);
    const r = await runCli(
      ["edit", "--model", TINY, "--steps", "3", "--image", src, "--instruction", instruction, "--seed", "3", "--refine", "3", "--rounds-dir", path.join(dir, "rounds"), "--out", path.join(dir, "out.png")],
      { OPENAI_BASE_URL: judge.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "fake-vlm" },
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/round 1: following 0\.0 \(short\)/);
    const rounds = JSON.parse(readFileSync(path.join(dir, "rounds", "rounds.json"), "utf8"));
    expect(rounds.stopped).to.equal("rounds");
    expect(rounds.rounds).to.have.length(3);
    expect(rounds.rounds[1].settings.textGuidance).to.equal(4.5);
    expect(readFileSync(path.join(dir, "out.png")).equals(readFileSync(path.join(dir, "rounds", `round-${rounds.best}.png`)))).to.equal(true);
    const bad = await runCli(["edit", "--image", src, "--instruction", "x", "--refine", "0", "--out", path.join(dir, "o.png")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/--refine/);
  });

  it("without a judge the local scorer drives the rounds and the CLI says what it cannot judge", async () => {
    const dir = tempDir();
    const src = path.join(dir, "src.png");
    await sharp(source).toFile(src);
    const r = await runCli(["edit", "--image", src, "--instruction", instruction, "--seed", "3", "--refine", "2", "--out", path.join(dir, "out.png")], {
      REWARD_EDIT_JUDGE_MODEL: "",
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/local scorer .* not whether the instruction was followed/);
    expect(r.stderr).to.match(/round 1: following not judged/);
  });
});
