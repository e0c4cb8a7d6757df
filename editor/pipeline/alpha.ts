/**
 * Transparent inputs (product cutouts). The model edits colour only, so a source with alpha is
 * edited as its colour flattened onto a neutral grey; the result then gets the source's own alpha
 * back at full resolution, and its colour is taken off that grey again where the edit changed a
 * partly transparent pixel, so soft edges carry no grey fringe over another backdrop.
 * `background` is OpenAI's images field: auto keeps what came in, transparent keeps the source's
 * alpha, opaque flattens the result onto `backgroundColour`.
 */

export const BACKGROUNDS = ["auto", "transparent", "opaque"] as const;
export type Background = (typeof BACKGROUNDS)[number];

/** The colour a transparent source is edited on: neither light nor dark, no hue for the edit to pick up. */
export const NEUTRAL = 128;
export const NEUTRAL_HEX = "#808080";
export const DEFAULT_BACKGROUND_COLOUR = "#ffffff";

export type Rgb = [number, number, number];

/** "#rrggbb" (either case) to its three bytes; null for anything else. */
export function parseHexColour(text: string): Rgb | null {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(text);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
}

/** Whether any pixel of interleaved RGBA is less than fully opaque. */
export function anyTransparent(rgba: Buffer): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] < 255) return true;
  return false;
}

/** Straight (not premultiplied) RGBA over a solid colour, as 8-bit RGB. */
export function flattenRgba(rgba: Buffer, colour: Rgb): Buffer {
  const n = rgba.length / 4;
  const out = Buffer.alloc(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3] / 255;
    for (let c = 0; c < 3; c++) out[3 * i + c] = Math.round(a * rgba[4 * i + c] + (1 - a) * colour[c]);
  }
  return out;
}

/**
 * The edited colour (`rgb`, on the neutral grey) with the source's alpha, as straight RGBA.
 * `source` is the source's straight RGBA at the same size; `flatSource`, when given, the source
 * flattened onto the grey at that size: a pixel the edit left exactly as it was gets the source's
 * own colour (the inverse of flattening would only approximate it where alpha is small).
 * Elsewhere the colour is unflattened, c = (e - (1 - a) * grey) / a, so the result over the
 * grey is the edit itself.
 */
export function restoreAlpha(rgb: Buffer, source: Buffer, flatSource: Buffer | null): Buffer {
  const n = rgb.length / 3;
  const out = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    const a8 = source[4 * i + 3];
    out[4 * i + 3] = a8;
    const unchanged = flatSource !== null && rgb[3 * i] === flatSource[3 * i] && rgb[3 * i + 1] === flatSource[3 * i + 1] && rgb[3 * i + 2] === flatSource[3 * i + 2];
    if (a8 === 0 || (unchanged && a8 < 255)) {
      // fully transparent: the colour is invisible, the source's keeps the file as it was
      out[4 * i] = source[4 * i];
      out[4 * i + 1] = source[4 * i + 1];
      out[4 * i + 2] = source[4 * i + 2];
      continue;
    }
    if (a8 === 255) {
      out[4 * i] = rgb[3 * i];
      out[4 * i + 1] = rgb[3 * i + 1];
      out[4 * i + 2] = rgb[3 * i + 2];
      continue;
    }
    const a = a8 / 255;
    for (let c = 0; c < 3; c++) {
      const v = (rgb[3 * i + c] - (1 - a) * NEUTRAL) / a;
      out[4 * i + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/**
 * Whether the result keeps the source's alpha. Only a source with some transparency has any to
 * keep; JPEG cannot carry it (a request for transparent JPEG is refused before this), so with
 * auto a JPEG result is flattened onto the background colour.
 */
export function keepsAlpha(background: Background, format: "png" | "jpeg" | "webp"): boolean {
  return background !== "opaque" && format !== "jpeg";
}
