/**
 * Which image formats this server really decodes, found by trying at start-up rather than by
 * reading sharp's format table: the prebuilt image library lists HEIF but has no HEVC decoder,
 * so a phone's HEIC photo would be accepted and then fail. An upload is refused at once (sync and
 * async alike) unless its format, and for HEIF its codec, passed the probe.
 */
import sharp, { type Sharp } from "sharp";

export interface DecodableFormats {
  /** sharp format names, e.g. jpeg, png, webp, gif, tiff, heif (AVIF). */
  formats: string[];
  /** HEIF codecs that decode: av1 (AVIF) and/or hevc (HEIC). */
  heifCodecs: string[];
  /** What the OpenAPI document and error messages name. */
  names: string[];
}

const RASTER = ["jpeg", "png", "webp", "gif", "tiff"] as const;

async function roundTrip(encode: (img: Sharp) => Sharp): Promise<boolean> {
  try {
    const bytes = await encode(sharp({ create: { width: 8, height: 8, channels: 3, background: "#c83" } })).toBuffer();
    await sharp(bytes).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

let probed: Promise<DecodableFormats> | undefined;

export function decodableFormats(): Promise<DecodableFormats> {
  probed ??= (async () => {
    const formats: string[] = [];
    const names: string[] = [];
    for (const f of RASTER) {
      if (await roundTrip((i) => i.toFormat(f))) {
        formats.push(f);
        names.push(f.toUpperCase());
      }
    }
    const heifCodecs: string[] = [];
    if (await roundTrip((i) => i.heif({ compression: "av1" }))) (heifCodecs.push("av1"), names.push("AVIF"));
    if (await roundTrip((i) => i.heif({ compression: "hevc" }))) (heifCodecs.push("hevc"), names.push("HEIC"));
    if (heifCodecs.length) formats.push("heif");
    return { formats, heifCodecs, names };
  })();
  return probed;
}
