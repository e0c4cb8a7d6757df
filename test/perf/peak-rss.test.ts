import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { parseVmHwm, peakRssBytes } from "../../benchmarks/perf/peak-rss.js";

describe("peak RSS of the perf cost children", () => {
  it("reads VmHWM (kB) from a /proc status text, and null without it", () => {
    expect(parseVmHwm("Name:\tnode\nVmPeak:\t 9000 kB\nVmHWM:\t   40464 kB\nVmRSS:\t 30000 kB\n")).to.equal(40464 * 1024);
    expect(parseVmHwm("Name:\tnode\n")).to.equal(null);
  });

  it("a child spawned while the parent holds 256 MB reports its own peak, not the parent's", function () {
    if (!existsSync("/proc/self/status")) this.skip();
    // touched, so it is resident: getrusage's maxRSS in a child would start at least this high
    const held = Buffer.alloc(256 * 2 ** 20, 1);
    const helper = new URL("../../benchmarks/perf/peak-rss.js", import.meta.url).href;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", `import { peakRssBytes } from ${JSON.stringify(helper)}; console.log(peakRssBytes())`], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    const child = Number(r.stdout.trim());
    expect(child).to.be.above(0);
    expect(child).to.be.below(held.length / 2);
    expect(peakRssBytes()).to.be.at.least(held.length);
  });
});
