import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { baseForm } from "../support/forms.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

describe("jobs belong to their key; per-key limits; DELETE of finished jobs (issue 23)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: ["key-a", "key-b"], maxJobsPerKey: 1, maxSteps: 1000 }, {});
  });
  after(() => s.stop());
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const submit = (key: string, fields: Record<string, string>) => fetch(`${s.url}/v1/jobs`, { method: "POST", headers: as(key), body: baseForm({ instruction: "make the mug red", ...fields }, { image: photo }) });
  const until = async (key: string, id: string, states: string[]) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const j = (await (await fetch(`${s.url}/v1/jobs/${id}`, { headers: as(key) })).json()) as { state: string };
      if (states.includes(j.state)) return j;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${j.state}`);
      await new Promise((r) => setTimeout(r, 30));
    }
  };

  it("another key sees no such job: 404 on status, result and DELETE; its own key sees it", async () => {
    const { id } = (await (await submit("key-a", { steps: "2" })).json()) as { id: string };
    await until("key-a", id, ["succeeded"]);
    for (const [method, p] of [["GET", `/v1/jobs/${id}`], ["GET", `/v1/jobs/${id}/result`], ["DELETE", `/v1/jobs/${id}`]]) {
      const r = await fetch(`${s.url}${p}`, { method, headers: as("key-b") });
      expect(r.status, `${method} ${p}`).to.equal(404);
    }
    expect((await fetch(`${s.url}/v1/jobs/${id}/result`, { headers: as("key-a") })).status).to.equal(200);
  });

  it("one key's jobs are limited (429 naming the limit) while another key is still served", async () => {
    const long = await submit("key-a", { steps: "1000", candidates: "3" });
    expect(long.status).to.equal(202);
    const { id } = (await long.json()) as { id: string };
    const refused = await submit("key-a", { steps: "2" });
    expect(refused.status).to.equal(429);
    const e = ((await refused.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).to.equal("key_limit");
    expect(e.message).to.match(/REWARD_EDIT_MAX_JOBS_PER_KEY/);
    expect(refused.headers.get("retry-after")).to.equal("5");
    const other = await submit("key-b", { steps: "2" });
    expect(other.status).to.equal(202);
    const otherId = ((await other.json()) as { id: string }).id;
    // once key A's job is over, A may submit again
    expect((await fetch(`${s.url}/v1/jobs/${id}`, { method: "DELETE", headers: as("key-a") })).status).to.equal(202);
    await until("key-a", id, ["cancelled"]);
    const again = await submit("key-a", { steps: "2" });
    expect(again.status).to.equal(202);
    await until("key-a", ((await again.json()) as { id: string }).id, ["succeeded"]);
    await until("key-b", otherId, ["succeeded"]);
  });

  it("DELETE of a finished job deletes it and its result (200); afterwards it is unknown", async () => {
    const { id } = (await (await submit("key-b", { steps: "2" })).json()) as { id: string };
    await until("key-b", id, ["succeeded"]);
    const del = await fetch(`${s.url}/v1/jobs/${id}`, { method: "DELETE", headers: as("key-b") });
    expect(del.status).to.equal(200);
    expect(await del.json()).to.deep.equal({ id, state: "succeeded", deleted: true });
    expect((await fetch(`${s.url}/v1/jobs/${id}`, { headers: as("key-b") })).status).to.equal(404);
    expect((await fetch(`${s.url}/v1/jobs/${id}/result`, { headers: as("key-b") })).status).to.equal(404);
  });
});
