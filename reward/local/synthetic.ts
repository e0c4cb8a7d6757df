/**
 * Exact scoring of edits in the synthetic product world (models/train/scenes.py), where the
 * scene description, the true target and the allowed region are all known: no judge needed.
 */
import { type Raster, meanAbsDiff, meanColour } from "./raster.js";

export type Rgb = [number, number, number];

export interface Palette {
  colours: Record<string, Rgb>;
  backgrounds: Record<string, Rgb>;
}

export interface SyntheticRecord {
  id: string;
  kind: "recolour" | "background" | "remove" | "add" | "grayscale" | "brighter";
  instruction: string;
  params: Record<string, unknown>;
  scene: { bg: string; gradient: boolean; objects: Array<{ kind: string; colour: string; slot: number }> };
}

export interface SyntheticCase {
  record: SyntheticRecord;
  source: Raster;
  target: Raster;
  /** 1 where the instruction allows change. */
  region: Uint8Array;
}

export interface SyntheticScore {
  /** Did the edit do what was asked (the named object/background has the requested colour/presence). */
  following: boolean;
  /** Mean absolute change outside the allowed region, 0..1 (null for global edits: no outside). */
  preservationError: number | null;
  /** Mean absolute error to the exact target inside the region, 0..1. */
  qualityError: number;
}

const dist = (a: Rgb, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

function nearest(c: Rgb, table: Record<string, Rgb>, scale = 1): string {
  let best = "";
  let bestD = Infinity;
  for (const [name, rgb] of Object.entries(table)) {
    const d = dist(c, [rgb[0] * scale, rgb[1] * scale, rgb[2] * scale]);
    if (d < bestD) [best, bestD] = [name, d];
  }
  return best;
}

/** Pixels of the region where source and target truly differ: the changed object itself. */
function changedPixels(c: SyntheticCase, threshold = 0.15): Uint8Array {
  const n = c.source.width * c.source.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (!c.region[i]) continue;
    let d = 0;
    for (let k = 0; k < 3; k++) d = Math.max(d, Math.abs(c.source.data[i * 3 + k] - c.target.data[i * 3 + k]));
    out[i] = d > threshold ? 1 : 0;
  }
  return out;
}

function closerToTarget(c: SyntheticCase, edited: Raster, mask: Uint8Array): boolean {
  const toTarget = meanAbsDiff(edited, c.target, mask);
  const toSource = meanAbsDiff(edited, c.source, mask);
  return toTarget !== null && toSource !== null && toTarget < toSource;
}

const saturation = (r: Raster) => {
  let s = 0;
  for (let i = 0; i < r.width * r.height; i++) {
    const p = r.data.subarray(i * 3, i * 3 + 3);
    s += Math.max(p[0], p[1], p[2]) - Math.min(p[0], p[1], p[2]);
  }
  return s / (r.width * r.height);
};

const luminance = (r: Raster) => {
  let s = 0;
  for (let i = 0; i < r.width * r.height; i++) s += 0.299 * r.data[i * 3] + 0.587 * r.data[i * 3 + 1] + 0.114 * r.data[i * 3 + 2];
  return s / (r.width * r.height);
};

export function followed(c: SyntheticCase, edited: Raster, palette: Palette): boolean {
  const { record: r } = c;
  switch (r.kind) {
    case "recolour":
    case "add": {
      // the changed pixels carry the requested colour, and resemble the target more than the source
      const mask = changedPixels(c);
      const mean = meanColour(edited, mask);
      // world v2 records the object's mean shading, so shades of one hue are told apart fairly
      const shade = typeof r.params.shade === "number" ? r.params.shade : 1;
      return mean !== null && nearest(mean, palette.colours, shade) === r.params.colour && closerToTarget(c, edited, mask);
    }
    case "background": {
      // upper part of the background: away from objects and their shadows
      const mask = new Uint8Array(edited.width * edited.height);
      for (let i = 0; i < mask.length; i++) mask[i] = c.region[i] && Math.floor(i / edited.width) < edited.height * 0.4 ? 1 : 0;
      const mean = meanColour(edited, mask);
      if (!mean) return false;
      // world v2 records the backdrop's mean pattern and shadow factor over this mask
      if (typeof r.params.shade === "number") return nearest(mean, palette.backgrounds, r.params.shade) === r.params.bg;
      // v1: a gradient background darkens with height: compare against the same average shading
      let ramp = 0;
      let n = 0;
      for (let i = 0; i < mask.length; i++) if (mask[i]) (ramp += 1 - (0.3 * Math.floor(i / edited.width)) / edited.height), n++;
      return nearest(mean, palette.backgrounds, r.scene.gradient ? ramp / n : 1) === r.params.bg;
    }
    case "remove": {
      // the removed object's pixels now look like the target (background) more than like the source (object)
      return closerToTarget(c, edited, changedPixels(c));
    }
    case "grayscale":
      return saturation(edited) < 0.5 * saturation(c.source);
    case "brighter":
      return luminance(edited) > luminance(c.source) + 0.05;
  }
}

export function scoreSynthetic(c: SyntheticCase, edited: Raster, palette: Palette): SyntheticScore {
  const outside = Uint8Array.from(c.region, (v) => 1 - v);
  return {
    following: followed(c, edited, palette),
    preservationError: meanAbsDiff(edited, c.source, outside),
    qualityError: meanAbsDiff(edited, c.target, c.region) ?? 0,
  };
}
