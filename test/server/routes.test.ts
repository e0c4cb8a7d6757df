import { expect } from "chai";
import type express from "express";
import { pino } from "pino";
import { ALLOWED_METHODS } from "../../src/server/app.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY } from "../helpers.js";
import { baseForm } from "../support/forms.js";
import { expectJsonAnswer } from "../support/responses.js";

interface Layer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** Every (method, path) the app's routers serve, read from express's own routing table. */
function served(app: express.Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const l of stack) {
      // app.all (the 405 answers) registers every method: not a served route
      if (l.route && Object.keys(l.route.methods).length > 8) continue;
      if (l.route) {
        const p = (prefix + (l.route.path === "/" ? "" : l.route.path)) || "/";
        for (const m of Object.keys(l.route.methods)) if (m !== "_all") out.push(`${m.toUpperCase()} ${p}`);
      } else if (l.handle.stack) walk(l.handle.stack, prefix + (l.rawPath && l.rawPath !== "/" ? l.rawPath : ""));
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return [...new Set(out)].sort();
}

describe("routes: one router per resource, and the OpenAPI document describes exactly what is served (issue 22)", function () {
  this.timeout(30_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, {});
  });
  after(() => s.stop());

  it("every route the app serves is in the OpenAPI document, and every documented one is served", async () => {
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).filter((k) => ["get", "post", "put", "delete", "patch"].includes(k)).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ":$1")}`))
      .sort();
    const app = s.app;
    expect(served(app)).to.deep.equal(documented);
  });

  it("the 405 table names the same routes and methods (GET answers HEAD too)", () => {
    const fromTable = ALLOWED_METHODS.flatMap(([p, ms]) => ms.filter((m) => m !== "HEAD").map((m) => `${m} ${p}`)).sort();
    expect(fromTable).to.deep.equal(served(s.app));
    for (const [, ms] of ALLOWED_METHODS) if (ms.includes("GET")) expect(ms).to.include("HEAD");
  });

  it("the JSON answers match the response schemas /openapi.json is generated from (issue 41)", async () => {
    const url = (p: string) => `${s.url}${p}`;
    await expectJsonAnswer("Health", await fetch(url("/healthz")), 200);
    expect((await expectJsonAnswer("Ready", await fetch(url("/readyz")), 200)).ready).to.equal(true);
    expect((await expectJsonAnswer("Presets", await fetch(url("/v1/presets")), 200)).presets.length).to.be.greaterThan(0);
    expect((await expectJsonAnswer("Models", await fetch(url("/v1/models")), 200)).models).to.have.length(1);

    const edit = await expectJsonAnswer("EditResult", await fetch(url("/v1/edits"), { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "2", candidates: "2", response_format: "json" }) }), 200);
    expect(edit.candidates).to.have.length(2);
    const queued = await expectJsonAnswer("Job", await fetch(url("/v1/jobs"), { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "2" }) }), 202);
    let job = queued;
    for (let i = 0; i < 300 && job.state !== "succeeded"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = await expectJsonAnswer("Job", await fetch(url(`/v1/jobs/${queued.id}`)), 200);
    }
    expect(job.result).to.equal(`/v1/jobs/${job.id}/result`);
    await expectJsonAnswer("EditResult", await fetch(url(`${job.result}?format=json`)), 200);
    await expectJsonAnswer("JobDeleted", await fetch(url(`/v1/jobs/${job.id}`), { method: "DELETE" }), 200);
    // a cancelled job carries its error
    const long = await expectJsonAnswer("Job", await fetch(url("/v1/jobs"), { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "50", candidates: "4" }) }), 202);
    await expectJsonAnswer("Job", await fetch(url(`/v1/jobs/${long.id}`), { method: "DELETE" }), 202);

    const scores = await expectJsonAnswer("Scores", await fetch(url("/v1/scores"), { method: "POST", body: baseForm({ instruction: "make the mug red", backend: "local" }, { source: Buffer.from(edit.image, "base64"), edited: Buffer.from(edit.image, "base64") }) }), 200);
    expect(scores.backend).to.equal("local");

    expect((await expectJsonAnswer("Error", await fetch(url(`/v1/jobs/${job.id}`)), 404)).error.field).to.equal("id");
    expect((await expectJsonAnswer("Error", await fetch(url("/v1/edits"), { method: "POST", body: baseForm({ instruction: "x", colour: "red" }) }), 400)).error.field).to.equal("colour");
  });
});
