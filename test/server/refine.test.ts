import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { FakeJudge } from "../support/fake-judge.js";
import { ROOT, TINY } from "../helpers.js";
import { baseForm } from "../support/forms.js";
import { expectResponse } from "../support/responses.js";

const quiet = pino({ level: "silent" });
const scene = readFileSync(path.join(ROOT, "models", "heldout", "syn-0007-source.png"));

describe("HTTP refine_rounds (real port, tiny model, loopback judge)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  let judge: FakeJudge;
  const saved = { ...process.env };
  const url = (p: string) => `${s.url}${p}`;
  const form = (fields: Record<string, string>) => baseForm(fields, { image: scene });

  before(async () => {
    judge = await new FakeJudge().start();
    // a model with random weights never follows: the judge says so, every round
    judge.handler = (r) =>
      FakeJudge.perspective(r) === "following"
        ? { reply: '{"reasoning": "the background did not change", "answer": "no", "score": 0}' }
        : { reply: '{"reasoning": "fine", "answer": "yes", "score": 5}' };
    Object.assign(process.env, { OPENAI_BASE_URL: judge.url, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "fake-vlm" });
    s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, queueSize: 4, maxUploadBytes: 2_000_000, maxPixels: 4_000_000 }, {});
  });
  after(async () => {
    await s.stop();
    await judge.stop();
    // restored key by key: assigning a new object to process.env would leave Node's real environment
    // (what worker threads started later inherit) holding the judge, and change every later test
    for (const k of ["OPENAI_BASE_URL", "OPENAI_API_KEY", "REWARD_EDIT_JUDGE_MODEL"]) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it("returns every round (image, settings, what changed, scores) and the chosen one", async () => {
    const res = await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "make the background dark blue", steps: "2", seed: "4", refine_rounds: "3", response_format: "json" }) });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).to.equal(200);
    expectResponse("EditResult", body);
    expect(body.refine).to.include({ scorer: "judge", stopped: "rounds" });
    expect(body.refine.rounds).to.have.length(3);
    const [r1, r2, r3] = body.refine.rounds;
    expect(r1).to.include({ round: 1, seed: 4, text_guidance: 3, met: false });
    expect(r1.changes).to.deep.equal([]);
    expect(r2.text_guidance).to.equal(4.5);
    expect(r3.text_guidance).to.be.above(r2.text_guidance);
    expect(r2.changes.join(" ")).to.match(/text guidance 3 -> 4.5 \(following 0 < 3.5 \("the background did not change"\)\)/);
    expect(r2.scores.perspectives.following).to.include({ status: "scored", score: 0 });
    for (const r of body.refine.rounds) expect(Buffer.from(r.image, "base64").subarray(1, 4).toString()).to.equal("PNG");
    expect(body.image).to.equal(body.refine.rounds[body.refine.chosen_round - 1].image);
    expect(body.candidates).to.have.length(3);
    // 3 rounds x 3 perspectives, scored in the worker; the response did not score again
    expect(judge.requests.length).to.equal(9);
  });

  it("a job reports progress over all rounds' steps", async () => {
    const res = await fetch(url("/v1/jobs"), { method: "POST", body: form({ instruction: "make the background dark blue", steps: "2", refine_rounds: "2" }) });
    expect(res.status).to.equal(202);
    const { id } = await res.json();
    let view;
    for (let i = 0; i < 200; i++) {
      view = await (await fetch(url(`/v1/jobs/${id}`))).json();
      if (view.state === "succeeded" || view.state === "failed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(view.state).to.equal("succeeded");
    expect(view.steps).to.equal(4);
  });

  it("refuses bad refine_rounds with a 400 naming the field, and keeps serving", async () => {
    for (const [fields, pattern] of [
      [{ refine_rounds: "0" }, /refine_rounds/],
      [{ refine_rounds: "9" }, /refine_rounds/],
      [{ refine_rounds: "two" }, /refine_rounds/],
      [{ refine_rounds: "2", candidates: "2" }, /either candidates .* or refine_rounds/],
    ] as const) {
      const res = await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "x", steps: "2", ...fields }) });
      const body = await res.json();
      expect(res.status).to.equal(400);
      expect(body.error.field).to.equal("refine_rounds");
      expect(body.error.message).to.match(pattern);
    }
    expect((await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "x", steps: "2" }) })).status).to.equal(200);
  });
});
