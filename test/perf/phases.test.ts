import { expect } from "chai";
import { PassThrough } from "node:stream";
import { PhaseProgress } from "../../benchmarks/perf/phases.js";

describe("bench phase progress", () => {
  it("off a terminal: one line per phase as it starts, with its estimate; skipped phases allowed, reordering refused", () => {
    const stream = new PassThrough();
    let text = "";
    stream.on("data", (d) => (text += d));
    const a = { name: "overhead", estimateS: 15 };
    const b = { name: "server", estimateS: 300 };
    const c = { name: "full scale", estimateS: 1500 };
    const p = new PhaseProgress([a, b, c], stream as unknown as NodeJS.WriteStream);
    p.start(a);
    p.start(c);
    expect(() => p.start(b)).to.throw(/server/);
    p.done();
    const lines = text.trim().split("\n");
    expect(lines[0]).to.equal("bench: 3 phases, about 30 min in all");
    expect(lines[1]).to.match(/^bench \[1\/3\] overhead \(about 15 s; 0 s so far\)$/);
    expect(lines[2]).to.match(/^bench \[3\/3\] full scale \(about 25 min; /);
    expect(lines[3]).to.match(/^bench: done in /);
  });
});
