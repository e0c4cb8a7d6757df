import { expect } from "chai";
import { renderDetail, runDetailBench } from "../../benchmarks/evaluation/detail.js";

describe("full-resolution benchmark (a slice: one scene per edit kind at 512 px)", function () {
  this.timeout(120_000);
  it("keep returns the untouched product photo far closer to the source than off, and keeps the stripes of a recoloured product", async () => {
    const r = await runDetailBench({ perKind: 1, sizes: [512] });
    const row = (kind: string, mode: string) => r.rows.find((x) => x.kind === kind && x.mode === mode)!;
    for (const kind of ["recolour", "remove", "add"]) {
      expect(row(kind, "keep").psnr_outside_db, kind).to.be.above(row(kind, "off").psnr_outside_db + 5);
      expect(row(kind, "keep").kept_fraction, kind).to.be.above(0.5);
    }
    expect(row("recolour", "keep").texture_kept).to.be.above(3 * row("recolour", "off").texture_kept!);
    expect(renderDetail(r)).to.match(/\| 512 \| recolour \| keep \|/);
  });
});
