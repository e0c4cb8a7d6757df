import { expect } from "chai";
import { Writable } from "node:stream";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY } from "../helpers.js";

describe("access log: one line per request with a request id (issue 23, part)", function () {
  this.timeout(60_000);
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "info" }, sink), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: ["secret-key"] }, {});
  });
  after(() => s.stop());
  const access = () => lines.filter((l) => l.req && l.res);

  it("each answer is logged at info with its id, method, path and status, and the id comes back as x-request-id", async () => {
    lines.length = 0;
    const res = await fetch(`${s.url}/v1/presets`, { headers: { authorization: "Bearer secret-key" } });
    const id = res.headers.get("x-request-id")!;
    expect(id).to.match(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50));
    const mine = access().filter((l) => l.req.id === id);
    expect(mine).to.have.length(1);
    expect(mine[0]).to.deep.include({ level: 30 });
    expect(mine[0].req).to.deep.equal({ id, method: "GET", url: "/v1/presets" });
    expect(mine[0].res).to.deep.equal({ statusCode: 200 });
    expect(JSON.stringify(lines)).to.not.contain("secret-key");
  });

  it("a caller's x-request-id or traceparent becomes the id; a client error is an info line, not an error", async () => {
    lines.length = 0;
    const a = await fetch(`${s.url}/v1/presets`, { headers: { "x-request-id": "abc-123", authorization: "Bearer wrong" } });
    expect(a.status).to.equal(401);
    expect(a.headers.get("x-request-id")).to.equal("abc-123");
    const b = await fetch(`${s.url}/v1/models`, { headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", authorization: "Bearer secret-key" } });
    expect(b.headers.get("x-request-id")).to.equal("4bf92f3577b34da6a3ce929d0e0e4736");
    await new Promise((r) => setTimeout(r, 50));
    expect(access().map((l) => [l.req.id, l.res.statusCode, l.level])).to.deep.equal([
      ["abc-123", 401, 30],
      ["4bf92f3577b34da6a3ce929d0e0e4736", 200, 30],
    ]);
    expect(lines.filter((l) => l.level >= 50)).to.deep.equal([]);
  });

  it("probes and scrapes are not logged", async () => {
    lines.length = 0;
    for (const p of ["/healthz", "/readyz", "/metrics"]) await fetch(`${s.url}${p}`);
    await new Promise((r) => setTimeout(r, 50));
    expect(access()).to.deep.equal([]);
  });
});
