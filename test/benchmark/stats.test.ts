import { expect } from "chai";
import { bootstrapCI, cohensKappa, figure, holm, kendallTauB, paired, poolSingletons, ranks, rng, signFlipP, spearman } from "../../src/benchmark/stats.js";

const close = (a: number | null, b: number, eps = 1e-9) => a !== null && Math.abs(a - b) <= eps;

describe("benchmark statistics (DESIGN.md 11), against values worked out by hand", () => {
  it("sign-flip p, exact: d = 1, 2, -3, 4 enumerated by hand; a zero difference counts for nothing", () => {
    // the 16 sign assignments of the magnitudes 1, 2, 3, 4 give the sums
    //   10, 8, 6, 4, 2, 4, 2, 0, 0, -2, -4, -2, -4, -6, -8, -10;
    // the observed sum is 1 + 2 - 3 + 4 = 4, and |sum| >= 4 in 10 of them
    expect(signFlipP([1, 2, -3, 4])).to.equal(10 / 16);
    expect(signFlipP([1, 2, -3, 4, 0, 0])).to.equal(10 / 16);
    // weights that scale every term alike (a pooled mean) change nothing
    expect(signFlipP([1, 2, -3, 4], [0.25, 0.25, 0.25, 0.25])).to.equal(10 / 16);
    // all equal signs: only the two extreme assignments reach the observed |sum|
    expect(signFlipP([1, 1, 1])).to.equal(2 / 8);
    expect(signFlipP([0, 0])).to.equal(1);
    expect(signFlipP([])).to.equal(null);
  });

  it("sign-flip p beyond 16 pairs: 20,000 seeded flips, reproducible, never 0", () => {
    const d = Array.from({ length: 30 }, (_, i) => 1 + (i % 3));
    // no random assignment of 30 signs reaches all-positive in 20,000 tries: p = 1 / 20,001
    expect(signFlipP(d, undefined, { seed: 3 })).to.equal(1 / 20_001);
    const mixed = Array.from({ length: 40 }, (_, i) => (i % 2 ? 1 : -1) * (1 + (i % 5)) + 0.3);
    const p = signFlipP(mixed, undefined, { seed: 7 })!;
    expect(signFlipP(mixed, undefined, { seed: 7 })).to.equal(p);
    expect(p).to.be.above(0).and.below(1);
  });

  it("Holm: sorted ascending, (k - i + 1) p, made monotone, capped at 1; nulls left out of k", () => {
    // sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    const adj = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(close(adj[i], v), `${i}: ${adj[i]}`).to.equal(true));
    expect(holm([null, 0.5, 0.6])).to.deep.equal([null, 1, 1]);
  });

  it("Spearman with ties (average ranks), Kendall's tau-b with the tie correction, undefined as null", () => {
    expect(ranks([10, 20, 20, 30])).to.deep.equal([1, 2.5, 2.5, 4]);
    // ranks x 1, 2.5, 2.5, 4 and y 1, 3, 2, 4: sxy = 4.5, sxx = 4.5, syy = 5 -> rho = sqrt(0.9)
    expect(close(spearman([1, 2, 2, 3], [1, 3, 2, 4]), Math.sqrt(0.9))).to.equal(true);
    // of the 6 pairs: 5 concordant, 0 discordant, 1 tied in x only -> 5 / sqrt((6 - 1)(6 - 0))
    expect(close(kendallTauB([1, 2, 2, 3], [1, 3, 2, 4]), 5 / Math.sqrt(30))).to.equal(true);
    // x = 1..4, y = 2, 1, 4, 3: pairs (1,2) and (3,4) discordant, 4 concordant -> (4 - 2) / 6
    expect(close(kendallTauB([1, 2, 3, 4], [2, 1, 4, 3]), 2 / 6)).to.equal(true);
    expect(close(spearman([1, 2, 3, 4], [2, 1, 4, 3]), 0.6)).to.equal(true); // 1 - 6 * 4 / (4 * 15)
    expect(spearman([1, 2, 3], [5, 5, 5])).to.equal(null);
    expect(kendallTauB([2, 2, 2], [1, 2, 3])).to.equal(null);
  });

  it("Cohen's kappa on a 2 x 2 table; null when both raters always gave one answer", () => {
    // both yes 4, A yes B no 2, A no B yes 1, both no 3: p_o = 0.7, p_e = 0.6 x 0.5 + 0.4 x 0.5 = 0.5 -> 0.4
    const a = [...Array(4).fill(true), ...Array(2).fill(true), ...Array(1).fill(false), ...Array(3).fill(false)];
    const b = [...Array(4).fill(true), ...Array(2).fill(false), ...Array(1).fill(true), ...Array(3).fill(false)];
    expect(close(cohensKappa(a, b), 0.4)).to.equal(true);
    expect(cohensKappa([true, true], [true, true])).to.equal(null);
    expect(cohensKappa([true, false], [false, true])).to.equal(-1);
  });

  it("the bootstrap interval of a mean is within 10 % of the normal-theory width, and the same for the same seed", () => {
    const next = rng(42);
    // Box-Muller normals, mean 3, sd 1.5
    const xs = Array.from({ length: 2000 }, () => 3 + 1.5 * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
    const normal = (2 * 1.96 * sd) / Math.sqrt(xs.length);
    const f = figure([xs], "pooled", { B: 2000, seed: 0 });
    expect(f.n).to.equal(2000);
    expect(close(f.value, m)).to.equal(true);
    const width = f.ci![1] - f.ci![0];
    expect(Math.abs(width - normal) / normal, `bootstrap ${width} vs normal ${normal}`).to.be.below(0.1);
    expect(f.ci![0]).to.be.below(m);
    expect(f.ci![1]).to.be.above(m);
    expect(figure([xs], "pooled", { B: 2000, seed: 0 })).to.deep.equal(f);
    expect(figure([xs], "pooled", { B: 2000, seed: 1 }).ci).to.not.deep.equal(f.ci);
    // the fast path of a mean draws what the generic bootstrap of any figure draws
    const generic = bootstrapCI([xs.slice(0, 300), xs.slice(300, 400)], (s) => (s[0].reduce((a, b) => a + b, 0) / s[0].length + s[1].reduce((a, b) => a + b, 0) / s[1].length) / 2, { B: 300, seed: 5 });
    const fast = figure([xs.slice(0, 300), xs.slice(300, 400)], "meanOfMeans", { B: 300, seed: 5 }).ci!;
    generic!.forEach((v, i) => expect(close(fast[i], v, 1e-12)).to.equal(true));
  });

  it("resampling stays within strata: a one-sample stratum never moves, the mean of task means keeps its structure", () => {
    // stratum 1 resamples to means 0, 1 or 2; stratum 2 is always 10 -> every resample's figure is 5, 5.5 or 6
    const f = figure([[0, 2], [10]], "meanOfMeans", { B: 500, seed: 0 });
    expect(f.value).to.equal(5.5);
    expect(f.ci![0]).to.be.at.least(5);
    expect(f.ci![1]).to.be.at.most(6);
    expect(figure([[0, 2], [10]], "pooled", { B: 10 }).value).to.equal(4);
    expect(figure([], "pooled")).to.deep.equal({ value: null, ci: null, n: 0 });
    expect(bootstrapCI([[1]], () => null)).to.equal(null);
  });

  it("one-sample strata: a pooled mean draws them together (an honest width, not zero); a mean of task means keeps them apart", () => {
    // five categories of one sample each, one followed: drawn within themselves the interval would be [20, 20]
    const strata = [[100], [0], [0], [0], [0]];
    expect(poolSingletons(strata)).to.deep.equal([[100, 0, 0, 0, 0]]);
    expect(poolSingletons([[1, 2], [3], [4]])).to.deep.equal([[1, 2], [3, 4]]);
    expect(poolSingletons([[1, 2], [3]])).to.deep.equal([[1, 2], [3]]);
    expect(poolSingletons(strata, "meanOfMeans")).to.deep.equal(strata);
    const pooled = figure(strata, "pooled", { B: 2000, seed: 0 });
    expect(pooled.value).to.equal(20);
    expect(pooled.ci![0]).to.equal(0);
    expect(pooled.ci![1]).to.be.at.least(60);
    expect(figure(strata, "meanOfMeans", { B: 200, seed: 0 }).ci).to.deep.equal([20, 20]);
  });

  it("paired comparison: B - A, wins by the figure's direction, p from the sign-flip test, 'not distinguishable' when the interval holds 0", () => {
    const pairs = [
      { a: 3, b: 4, stratum: "x" },
      { a: 2, b: 4, stratum: "x" },
      { a: 4, b: 1, stratum: "y" },
      { a: 1, b: 5, stratum: "y" },
      { a: 2, b: 2, stratum: "y" },
    ];
    const r = paired(pairs, "pooled", { B: 500, seed: 0 });
    // d = 1, 2, -3, 4, 0: mean 4 / 5
    expect(close(r.diff, 0.8)).to.equal(true);
    expect(r.p).to.equal(10 / 16);
    expect(r.wins).to.deep.equal({ a: 1, b: 3, ties: 1 });
    expect(r.distinguishable).to.equal(false);
    expect(paired(pairs, "pooled", { higherIsBetter: false, B: 10 }).wins).to.deep.equal({ a: 3, b: 1, ties: 1 });
    // mean of stratum means: x (1 + 2) / 2 = 1.5, y (-3 + 4 + 0) / 3 = 1/3
    expect(close(paired(pairs, "meanOfMeans", { B: 10 }).diff, (1.5 + 1 / 3) / 2)).to.equal(true);
    const clear = paired(Array.from({ length: 20 }, (_, i) => ({ a: 1, b: 2 + (i % 3), stratum: "s" })), "pooled", { B: 500 });
    expect(clear.distinguishable).to.equal(true);
    expect(clear.p).to.equal(1 / 20_001);
  });
});
