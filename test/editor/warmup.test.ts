import { expect } from "chai";
import { type EditorModel, type Session, loadModel, modelEncodeCache, warmUp } from "../../editor/index.js";
import { TINY } from "../helpers.js";

describe("warm-up before readiness (tiny model, real ONNX sessions)", function () {
  this.timeout(30_000);
  let model: EditorModel;
  before(async () => {
    model = await loadModel(TINY);
  });
  after(() => model.dispose());

  it("runs every graph of the folder once, the shallow UNet included, and leaves the encode cache empty", async () => {
    const sessions: Record<string, Session> = { text: model.textEncoder, vaeEncoder: model.vaeEncoder, unet: model.unet, shallow: model.unetShallow!, vaeDecoder: model.vaeDecoder };
    const runs: Record<string, number> = {};
    for (const [k, s] of Object.entries(sessions)) {
      runs[k] = 0;
      const real = s.run.bind(s);
      (s as { run: Session["run"] }).run = (f, o) => (runs[k]++, real(f, o));
    }
    try {
      await warmUp(model);
    } finally {
      for (const s of Object.values(sessions)) delete (s as { run?: unknown }).run;
    }
    for (const k of Object.keys(sessions)) expect(runs[k], k).to.be.at.least(1);
    expect(modelEncodeCache(model)!.stats().entries).to.equal(0);
  });

  it("fails when a graph cannot run, so a server never reports such a model ready", async () => {
    (model.vaeDecoder as { run: Session["run"] }).run = async () => {
      throw new Error("vae_decoder: run failed");
    };
    try {
      const err = await warmUp(model).then(() => null, (e: Error) => e);
      expect(err?.message).to.match(/vae_decoder/);
    } finally {
      delete (model.vaeDecoder as { run?: unknown }).run;
    }
  });
});
