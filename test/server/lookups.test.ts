import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { getPreset, loadPresets } from "../../src/presets/index.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";

describe("presets and reward levels are looked up as data, not as JavaScript objects", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, {});
  });
  after(() => s.stop());
  const post = (fields: Record<string, string>) => {
    const f = new FormData();
    f.append("image", new Blob([new Uint8Array(readFileSync(path.join(PHOTOS, "coffee.png")))]), "photo.png");
    f.append("instruction", "make the mug red");
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    return fetch(`${s.url}/v1/edits`, { method: "POST", body: f });
  };

  it("Object's own property names are unknown presets (400 naming preset), in the library and over HTTP", async () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect(() => getPreset(loadPresets(), name), name).to.throw(/unknown preset/);
      const res = await post({ preset: name });
      expect(res.status, name).to.equal(400);
      expect((await res.json()).error.field, name).to.equal("preset");
    }
  });

  it("a JSON rewards array takes numbers only: true, null or a nested array is a 400 naming rewards", async () => {
    for (const rewards of ["[true,null,[5]]", "[5,5,null]", '[5,5,"x"]', "[[5],5,5]"]) {
      const res = await post({ rewards });
      expect(res.status, rewards).to.equal(400);
      expect((await res.json()).error.field, rewards).to.equal("rewards");
    }
    expect((await post({ rewards: "[5,4.5,\"3\"]", steps: "2" })).status).to.equal(200);
  });
});
