import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { EditInputError, type EditorModel, type EditOptions, edit, loadModel } from "../../editor/index.js";
import { serverConfigFrom } from "../../src/config/server.js";
import { resolveParams } from "../../src/edit-params.js";
import { PresetSchema } from "../../src/presets/index.js";
import { editSchema } from "../../src/server/validation.js";
import { PHOTOS, TINY } from "../helpers.js";

describe("working resolution (--resolution / API resolution) on the tiny model", function () {
  this.timeout(60_000);
  let model: EditorModel;
  let photo: Buffer;
  before(async () => {
    model = await loadModel(TINY);
    photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  });
  after(() => model.dispose());
  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: photo, instruction: "make the mug red", steps: 1, textGuidance: 1, imageGuidance: 1, seed: 1, encodeCache: null, ...o });

  it("edits at the asked long side and returns the photo's size; above 512 px auto tiles the VAE", async () => {
    const def = await edit(model, base());
    expect([def.parameters.workingWidth, def.parameters.workingHeight]).to.deep.equal([64, 48]);
    const r = await edit(model, base({ resolution: 128 }));
    // 600x400 -> 128x85, padded to multiples of 8
    expect([r.parameters.workingWidth, r.parameters.workingHeight]).to.deep.equal([128, 88]);
    expect([r.width, r.height]).to.deep.equal([600, 400]);
    expect(r.parameters.vaeTile).to.equal(0);
    const big = await edit(model, base({ resolution: 576 }));
    expect([big.parameters.workingWidth, big.parameters.workingHeight]).to.deep.equal([576, 384]);
    expect(big.parameters.vaeTile).to.equal(256);
    expect([big.width, big.height]).to.deep.equal([600, 400]);
  });

  it("refuses a resolution that is no multiple of the model's size multiple, or out of range", async () => {
    for (const resolution of [100, 0, 4096, 64.5]) {
      const err = await edit(model, base({ resolution })).then(() => null, (e: unknown) => e);
      expect(err, String(resolution)).to.be.instanceOf(EditInputError).with.property("field", "resolution");
    }
  });

  it("comes from a preset, the API form or an explicit value", () => {
    const preset = { name: "big", ...PresetSchema.parse({ description: "large", rewards: [5, 5, 5], resolution: 768 }) };
    expect(resolveParams({ preset: "big" }, { big: preset }).sampling.resolution).to.equal(768);
    expect(resolveParams({ preset: "big", resolution: 1024 }, { big: preset }).sampling.resolution).to.equal(1024);
    expect(editSchema(serverConfigFrom({})).parse({ instruction: "x", resolution: "768" }).resolution).to.equal(768);
    expect(editSchema(serverConfigFrom({})).safeParse({ instruction: "x", resolution: "5000" }).success).to.equal(false);
  });
});
