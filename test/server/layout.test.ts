import { expect } from "chai";
import { ConfigError, serverConfigFrom } from "../../src/config/server.js";
import { modelBytes, workerLayout } from "../../src/config/workers.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { TINY } from "../helpers.js";

describe("worker layout (REWARD_EDIT_WORKERS, ORT_THREADS)", () => {
  it("defaults to auto: a small model gets one single-threaded worker per core", () => {
    const c = serverConfigFrom({});
    expect(c.workers).to.equal("auto");
    expect(modelBytes(BUNDLED_MODEL)).to.be.within(1e6, 64e6);
    const l = workerLayout(c.workers, c.ortThreads, BUNDLED_MODEL, { cores: 4 });
    expect(l).to.include({ workers: 4, ortThreads: 1 });
    expect(l.reason).to.match(/one worker per core/);
  });

  it("a model over the threshold keeps one worker with every core", () => {
    const l = workerLayout("auto", 0, TINY, { cores: 8, smallModelBytes: 1000 });
    expect(l).to.include({ workers: 1, ortThreads: 8 });
  });

  it("explicit settings win, and threads default to cores / workers", () => {
    const c = serverConfigFrom({ REWARD_EDIT_WORKERS: "3", ORT_THREADS: "0" });
    expect(workerLayout(c.workers, c.ortThreads, TINY, { cores: 7 })).to.include({ workers: 3, ortThreads: 2 });
    expect(workerLayout(2, 5, TINY, { cores: 2 })).to.include({ workers: 2, ortThreads: 5 });
    expect(workerLayout(4, 0, TINY, { cores: 2 })).to.include({ workers: 4, ortThreads: 1 });
  });

  it("rejects a worker count that is neither auto nor 1..64, naming the variable", () => {
    for (const bad of ["0", "many", "65"]) {
      expect(() => serverConfigFrom({ REWARD_EDIT_WORKERS: bad })).to.throw(ConfigError, /REWARD_EDIT_WORKERS/);
    }
  });
});
