import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { loadPresets } from "../../src/presets/index.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY, TINY_NO_REWARDS } from "../helpers.js";

const quiet = pino({ level: "silent" });
const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

function form(fields: Record<string, string>): FormData {
  const f = new FormData();
  f.append("image", new Blob([new Uint8Array(photo)]), "photo.png");
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

describe("HTTP fast-path fields and the fast preset (real port, tiny models)", function () {
  this.timeout(60_000);
  const fast = loadPresets().fast;

  for (const [label, dir, deepCache] of [["a folder with the outer UNet graph", TINY, true], ["a folder without one", TINY_NO_REWARDS, false]] as const) {
    describe(label, () => {
      let s: RunningServer;
      let modelDir = dir;
      before(async () => {
        if (!deepCache) {
          // the no-reward fixture re-exported without its outer graph: an older converted folder
          const { copyFolder } = await import("../helpers.js");
          const { rmSync, writeFileSync } = await import("node:fs");
          modelDir = copyFolder(dir);
          rmSync(path.join(modelDir, "unet_shallow"), { recursive: true });
          const m = JSON.parse(readFileSync(path.join(modelDir, "reward-edit.json"), "utf8"));
          delete m.deep_cache;
          writeFileSync(path.join(modelDir, "reward-edit.json"), JSON.stringify(m));
        }
        s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir, workers: 1, queueSize: 4, maxUploadBytes: 2_000_000, maxPixels: 4_000_000 }, {});
      });
      after(() => s.stop());
      const post = (fields: Record<string, string>) => fetch(`${s.url}/v1/edits`, { method: "POST", body: form({ instruction: "make the mug red", seed: "3", response_format: "json", ...fields }) });

      it("preset=fast edits with the preset's sampler, steps, guidance and interval; its DeepCache only where the model has the graph", async () => {
        const res = await post({ preset: "fast" });
        expect(res.status).to.equal(200);
        const body = await res.json();
        const p = body.parameters;
        expect(p).to.include({ scheduler: fast.scheduler, steps: fast.steps, imageGuidance: fast.image_guidance, preset: "fast" });
        expect(p.guidanceInterval).to.deep.equal(fast.guidance_interval);
        expect(p.cacheInterval).to.equal(deepCache ? fast.cache_interval : 1);
      });

      it("explicit fields win over the preset's and are echoed", async () => {
        const res = await post({ preset: "fast", scheduler: "unipc", karras_sigmas: "true", guidance_interval: "0.5,10", adaptive_guidance: "0.999", steps: "5" });
        expect(res.status).to.equal(200);
        const p = (await res.json()).parameters;
        expect(p).to.include({ scheduler: "unipc", karrasSigmas: true, adaptiveGuidance: 0.999, steps: 5 });
        expect(p.guidanceInterval).to.deep.equal([0.5, 10]);
      });

      it("bad fast-path fields answer 400 naming the field, and the server keeps serving", async () => {
        const cases: Array<[Record<string, string>, string]> = [
          [{ guidance_interval: "5,1" }, "guidance_interval"],
          [{ guidance_interval: "abc" }, "guidance_interval"],
          [{ adaptive_guidance: "2" }, "adaptive_guidance"],
          [{ cache_interval: "0" }, "cache_interval"],
          [{ karras_sigmas: "maybe" }, "karras_sigmas"],
          [{ scheduler: "dpmpp-3m" }, "scheduler"],
          [{ scheduler: "euler-a", karras_sigmas: "true" }, "karras_sigmas"],
          ...(deepCache ? [] : [[{ cache_interval: "3" }, "cache_interval"] as [Record<string, string>, string]]),
        ];
        for (const [fields, field] of cases) {
          const res = await post(fields);
          expect(res.status, JSON.stringify(fields)).to.equal(400);
          const body = await res.json();
          expect(body.error.field, JSON.stringify(fields)).to.equal(field);
        }
        expect((await post({ steps: "2" })).status).to.equal(200);
      });
    });
  }

  it("GET /v1/presets describes the fast preset with its sampling fields", async () => {
    const s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, {});
    try {
      const presets = (await (await fetch(`${s.url}/v1/presets`)).json()).presets as Array<Record<string, unknown>>;
      const p = presets.find((x) => x.name === "fast")!;
      expect(p).to.include({ scheduler: "dpmpp-2m", steps: fast.steps, cache_interval: fast.cache_interval });
      expect(p.guidance_interval).to.deep.equal(fast.guidance_interval);
    } finally {
      await s.stop();
    }
  });
});
