/**
 * No-reference quality measures: noise (Immerkær's fast estimate), sharpness (variance of the
 * Laplacian) and JPEG-style blockiness (8x8 boundary steps vs interior steps).
 */
import type { Raster } from "./raster.js";

export interface QualityMeasures {
  /** Estimated noise standard deviation, 0..1 units. */
  noiseSigma: number;
  /** Variance of the Laplacian of the luminance (higher = sharper). */
  laplacianVariance: number;
  /** Mean step across 8-pixel block boundaries / mean step inside blocks (1 = no blocking). */
  blockiness: number;
}

function luma(r: Raster): Float32Array {
  const y = new Float32Array(r.width * r.height);
  for (let i = 0; i < y.length; i++) y[i] = 0.299 * r.data[i * 3] + 0.587 * r.data[i * 3 + 1] + 0.114 * r.data[i * 3 + 2];
  return y;
}

export function qualityMeasures(r: Raster): QualityMeasures {
  const { width: w, height: h } = r;
  const y = luma(r);
  let noiseSum = 0;
  let lapSum = 0;
  let lapSq = 0;
  let n = 0;
  for (let j = 1; j < h - 1; j++)
    for (let i = 1; i < w - 1; i++) {
      const k = j * w + i;
      // Immerkær's mask [1 -2 1; -2 4 -2; 1 -2 1] cancels image structure to first order
      const m =
        y[k - w - 1] - 2 * y[k - w] + y[k - w + 1] - 2 * y[k - 1] + 4 * y[k] - 2 * y[k + 1] + y[k + w - 1] - 2 * y[k + w] + y[k + w + 1];
      noiseSum += Math.abs(m);
      const lap = y[k - w] + y[k + w] + y[k - 1] + y[k + 1] - 4 * y[k];
      lapSum += lap;
      lapSq += lap * lap;
      n++;
    }
  const noiseSigma = n ? (Math.sqrt(Math.PI / 2) * noiseSum) / (6 * n) : 0;
  const lapMean = n ? lapSum / n : 0;
  let boundary = 0;
  let interior = 0;
  let nb = 0;
  let ni = 0;
  for (let j = 0; j < h; j++)
    for (let i = 1; i < w; i++) {
      const step = Math.abs(y[j * w + i] - y[j * w + i - 1]);
      if (i % 8 === 0) (boundary += step), nb++;
      else (interior += step), ni++;
    }
  const blockiness = nb && ni && interior > 1e-9 ? boundary / nb / (interior / ni) : 1;
  return { noiseSigma, laplacianVariance: n ? lapSq / n - lapMean * lapMean : 0, blockiness };
}

/**
 * A 0..5 figure from the measures: noise and blocking cost points; with the source's measures,
 * so does lost sharpness (an edit much blurrier than its source). Thresholds were set on the
 * synthetic corruptions.
 */
export function qualityFigure(m: QualityMeasures, source?: QualityMeasures): number {
  const noisePenalty = Math.min(3, Math.max(0, (m.noiseSigma - 0.01) / 0.03));
  const blockPenalty = Math.min(2, Math.max(0, (m.blockiness - 1.3) / 0.5));
  const blurPenalty = source ? Math.min(2, Math.max(0, Math.log10((source.laplacianVariance + 1e-6) / (m.laplacianVariance + 1e-6)) - 0.3)) : 0;
  return Math.max(0, Math.min(5, 5 - noisePenalty - blockPenalty - blurPenalty));
}
