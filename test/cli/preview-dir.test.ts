import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";

describe("reward-edit edit --preview-dir (issue 31)", function () {
  this.timeout(60_000);

  it("writes one PNG preview per step, each the photo's shape at latent size", async () => {
    const dir = tempDir();
    const previews = path.join(dir, "previews");
    const r = await runCli(["edit", "--model", TINY, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make the mug red", "--steps", "4", "--seed", "3", "--preview-dir", previews, "--out", path.join(dir, "out.png")]);
    expect(r.code, r.stderr).to.equal(0);
    expect(readdirSync(previews).sort()).to.deep.equal(["step-001.png", "step-002.png", "step-003.png", "step-004.png"]);
    const src = await sharp(path.join(PHOTOS, "coffee.png")).metadata();
    for (const f of readdirSync(previews)) {
      const m = await sharp(readFileSync(path.join(previews, f))).metadata();
      expect(m.format).to.equal("png");
      // the padding is cut off: the preview keeps the photo's aspect (to a latent pixel)
      expect(Math.abs(m.width! / m.height! - src.width! / src.height!)).to.be.lessThan(0.1);
    }
  });

  it("refuses --preview-dir with --refine in one line", async () => {
    const dir = tempDir();
    const r = await runCli(["edit", "--model", TINY, "--image", path.join(PHOTOS, "coffee.png"), "--instruction", "make the mug red", "--steps", "2", "--refine", "2", "--preview-dir", dir, "--out", path.join(dir, "out.png")]);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/--preview-dir .* does not combine with --refine/);
  });
});
