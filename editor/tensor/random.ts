/**
 * Seeded Gaussian noise. xoshiro128** seeded through splitmix32 gives a long, well-mixed stream;
 * Box-Muller turns pairs of uniforms into normals. Same seed => the same floats on every machine,
 * which is what makes same-seed edits byte-identical.
 */
export class Generator {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let x = (Math.floor(seed) >>> 0) ^ Math.floor(seed / 2 ** 32);
    const splitmix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix();
    this.s1 = splitmix();
    this.s2 = splitmix();
    this.s3 = splitmix();
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result / 4294967296;
  }

  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log stays finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Fills `out` with standard normals (torch.randn's role), returning it. The same stream as
   * calling normal() out.length times, but with the state in locals: a scheduler draws a latent's
   * worth of noise every step, and field access plus the boxed `spare` made that 0.16 ms per
   * 4096 values, most of the loop's time outside ONNX Runtime.
   */
  randn(out: Float32Array): Float32Array {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spare !== null) {
      out[i++] = this.spare;
      this.spare = null;
    }
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const TWO_PI = 2 * Math.PI;
    while (i < n) {
      // two xoshiro128** draws, exactly as uniform() makes them: u1 in (0, 1], u2 in [0, 1)
      let u1 = 0;
      let u2 = 0;
      for (let d = 0; d < 2; d++) {
        const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl(s3, 11);
        if (d === 0) u1 = 1 - r / 4294967296;
        else u2 = r / 4294967296;
      }
      const radius = Math.sqrt(-2 * Math.log(u1));
      out[i++] = radius * Math.cos(TWO_PI * u2);
      const second = radius * Math.sin(TWO_PI * u2);
      if (i < n) out[i++] = second;
      else this.spare = second;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
