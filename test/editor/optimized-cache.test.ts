import { expect } from "chai";
import { readdirSync } from "node:fs";
import { readFileSync } from "node:fs";
import path from "node:path";
import { edit, loadModel } from "../../editor/index.js";
import { serverConfigFrom } from "../../src/config/server.js";
import { PHOTOS, TINY, tempDir } from "../helpers.js";

describe("ONNX Runtime's optimised graphs kept between loads (optimizedCacheDir)", function () {
  this.timeout(60_000);

  it("the first load writes one optimised graph per session, the next loads them, and edits give the same pixels", async () => {
    const dir = tempDir("ort-cache-");
    const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
    const run = async () => {
      const model = await loadModel(TINY, { optimizedCacheDir: dir });
      try {
        return (await edit(model, { image: photo, instruction: "make the mug red", steps: 2, seed: 8, encodeCache: null })).image;
      } finally {
        await model.dispose();
      }
    };
    const plain = await (async () => {
      const model = await loadModel(TINY);
      try {
        return (await edit(model, { image: photo, instruction: "make the mug red", steps: 2, seed: 8, encodeCache: null })).image;
      } finally {
        await model.dispose();
      }
    })();
    const first = await run();
    const entries = readdirSync(dir);
    // text encoder, VAE encoder and decoder, UNet, shallow UNet; no half-written folders left
    expect(entries).to.have.length(5);
    expect(entries.some((e) => e.endsWith(".tmp"))).to.equal(false);
    for (const e of entries) expect(readdirSync(path.join(dir, e))).to.include("model.onnx");
    const second = await run();
    expect(readdirSync(dir)).to.deep.equal(entries);
    expect(Buffer.compare(first, plain)).to.equal(0);
    expect(Buffer.compare(second, plain)).to.equal(0);
  });

  it("the server takes the folder from REWARD_EDIT_ORT_CACHE (empty by default: nothing written)", () => {
    expect(serverConfigFrom({}).ortCacheDir).to.equal("");
    expect(serverConfigFrom({ REWARD_EDIT_ORT_CACHE: "/var/cache/ort" }).ortCacheDir).to.equal("/var/cache/ort");
  });
});
