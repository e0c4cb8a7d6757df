/** The held-out synthetic scenes (models/heldout): source, exact target, allowed region, scene record. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { decodeMask, decodeRaster } from "../../reward/local/raster.js";
import type { Palette, SyntheticCase, SyntheticRecord } from "../../reward/local/synthetic.js";

export interface SyntheticSuite {
  dir: string;
  palette: Palette;
  cases: SyntheticCase[];
}

export async function loadSyntheticSuite(dir: string, limit?: number): Promise<SyntheticSuite> {
  const palette = JSON.parse(readFileSync(path.join(dir, "palette.json"), "utf8")) as Palette;
  const records = readFileSync(path.join(dir, "scenes.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SyntheticRecord)
    .slice(0, limit);
  const cases = await Promise.all(
    records.map(async (record) => ({
      record,
      source: await decodeRaster(path.join(dir, `${record.id}-source.png`)),
      target: await decodeRaster(path.join(dir, `${record.id}-target.png`)),
      region: await decodeMask(path.join(dir, `${record.id}-region.png`)),
    })),
  );
  return { dir, palette, cases };
}

export const sourceFile = (suite: SyntheticSuite, id: string) => path.join(suite.dir, `${id}-source.png`);
