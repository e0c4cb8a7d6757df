/**
 * The small GEdit-Bench set the tests share: six keys in three task types, written as `datasets`
 * writes the split with `save_to_disk` (Arrow IPC) and with `push_to_hub` (Parquet, made here with
 * hyparquet-writer, the image columns as structs {bytes: binary, path: string}).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { loopbackHubEnv } from "./hub-server.js";
import { Binary, Bool, Field, Struct, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { parquetWriteBuffer } from "hyparquet-writer";
import sharp from "sharp";
import { PHOTOS } from "../helpers.js";

/**
 * Six GEdit-Bench keys in three task types, each with an English and a Chinese row, as the
 * published split has them; k2 and k6 lie outside the intersection subset.
 */
/** A CLI environment whose Hub, caches and judge are the test's own (loopback Hub at hubUrl, fake judge at judgeUrl). */
export const benchEnv = (root: string, hubUrl: string, judgeUrl: string): NodeJS.ProcessEnv =>
  loopbackHubEnv(hubUrl, root, { OPENAI_BASE_URL: judgeUrl, OPENAI_API_KEY: "k", REWARD_EDIT_JUDGE_MODEL: "fake-vlm" });

export const KEYS = [
  { key: "k1", task: "background_change", inter: true, photo: "coffee.png", en: "put the cup on a sandy beach", cn: "把杯子放在沙滩上" },
  { key: "k2", task: "background_change", inter: false, photo: "chelsea.png", en: "replace the wall with a forest", cn: "把墙换成森林" },
  { key: "k3", task: "color_alter", inter: true, photo: "astronaut.png", en: "make the suit bright red", cn: "把衣服变成红色" },
  { key: "k4", task: "color_alter", inter: true, photo: "coffee.png", en: "turn the saucer blue", cn: "把碟子变成蓝色" },
  { key: "k5", task: "subject-add", inter: true, photo: "chelsea.png", en: "add a red ball beside the cat", cn: "在猫旁边加一个红球" },
  { key: "k6", task: "subject-add", inter: false, photo: "astronaut.png", en: "add a small flag", cn: "加一面小旗子" },
];


export type Image = { bytes: Uint8Array; path: string | null };
const IMAGE = new Struct([new Field("bytes", new Binary(), true), new Field("path", new Utf8(), true)]);

/** One Arrow IPC stream file as `datasets` writes a shard of a split. */
export function arrowFile(rows: GeditRow[]): Buffer {
  const table = new Table({
    task_type: vectorFromArray(rows.map((r) => r.task), new Utf8()),
    key: vectorFromArray(rows.map((r) => r.key), new Utf8()),
    instruction: vectorFromArray(rows.map((r) => r.instruction), new Utf8()),
    instruction_language: vectorFromArray(rows.map((r) => r.language), new Utf8()),
    input_image: vectorFromArray(rows.map((r) => r.image), IMAGE),
    input_image_raw: vectorFromArray(rows.map((r) => r.raw), IMAGE),
    Intersection_exist: vectorFromArray(rows.map((r) => r.inter), new Bool()),
  });
  return Buffer.from(tableToIPC(table, "stream"));
}

/**
 * The split's twelve rows (each key in English, then Chinese). input_image is the raw photo squeezed
 * to 320 x 320 and made grey, so a request shows which of the two the judge was sent, and at which size.
 */
export async function geditRows(): Promise<GeditRow[]> {
  const rows: GeditRow[] = [];
  for (const k of KEYS) {
    const raw = readFileSync(path.join(PHOTOS, k.photo));
    const judged = await sharp(raw).resize(320, 320, { fit: "fill" }).grayscale().png().toBuffer();
    for (const language of ["en", "cn"] as const) {
      rows.push({ task: k.task, key: k.key, instruction: k[language], language, image: { bytes: judged, path: null }, raw: { bytes: raw, path: `${k.key}.png` }, inter: k.inter });
    }
  }
  return rows;
}

/** The data set's files at their repository paths, as `save_to_disk` writes the split (Arrow). */
export async function geditFiles(): Promise<Map<string, Buffer>> {
  const rows = await geditRows();
  return new Map([
    ["train/data-00000-of-00002.arrow", arrowFile(rows.slice(0, 7))],
    ["train/data-00001-of-00002.arrow", arrowFile(rows.slice(7))],
    ["train/dataset_info.json", Buffer.from(JSON.stringify({ features: { task_type: { dtype: "string", _type: "Value" } } }))],
    ["train/state.json", Buffer.from(JSON.stringify({ _data_files: [{ filename: "data-00000-of-00002.arrow" }, { filename: "data-00001-of-00002.arrow" }], _split: "train" }))],
    ["README.md", Buffer.from("# GEdit-Bench (test copy)\n")],
    ["assets/overview.png", readFileSync(path.join(PHOTOS, "coffee.png"))],
  ]);
}


export interface GeditRow {
  task: string;
  key: string;
  instruction: string;
  language: string;
  image: Image;
  raw: Image;
  inter: boolean;
}

/** The features `push_to_hub` records in the file's `huggingface` metadata and in the README's YAML. */
const FEATURES = {
  task_type: { dtype: "string", _type: "Value" },
  key: { dtype: "string", _type: "Value" },
  instruction: { dtype: "string", _type: "Value" },
  instruction_language: { dtype: "string", _type: "Value" },
  input_image: { _type: "Image" },
  input_image_raw: { _type: "Image" },
  Intersection_exist: { dtype: "bool", _type: "Value" },
};

const text = (name: string) => ({ name, type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type: "OPTIONAL" as const });
const image = (name: string) => [
  { name, repetition_type: "OPTIONAL" as const, num_children: 2 },
  { name: "bytes", type: "BYTE_ARRAY" as const, repetition_type: "OPTIONAL" as const },
  text("path"),
];

/**
 * One Parquet file as `push_to_hub` writes a shard of a split: the same columns, the images as
 * structs {bytes: binary, path: string}, rows in groups of `rowGroupSize`, Snappy-compressed as
 * pyarrow's default is (`codec` labels the pages with another codec, for the refusal).
 */
export function parquetFile(rows: GeditRow[], rowGroupSize = 4, codec?: { name: "ZSTD"; compress: (b: Uint8Array) => Uint8Array }): Buffer {
  const schema = [
    { name: "schema", num_children: 7 },
    text("task_type"),
    text("key"),
    text("instruction"),
    text("instruction_language"),
    ...image("input_image"),
    ...image("input_image_raw"),
    { name: "Intersection_exist", type: "BOOLEAN" as const, repetition_type: "OPTIONAL" as const },
  ];
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "task_type", data: rows.map((r) => r.task) },
      { name: "key", data: rows.map((r) => r.key) },
      { name: "instruction", data: rows.map((r) => r.instruction) },
      { name: "instruction_language", data: rows.map((r) => r.language) },
      { name: "input_image", data: rows.map((r) => r.image) },
      { name: "input_image_raw", data: rows.map((r) => r.raw) },
      { name: "Intersection_exist", data: rows.map((r) => r.inter) },
    ],
    schema,
    rowGroupSize,
    ...(codec ? { codec: codec.name, compressors: { [codec.name]: codec.compress } } : {}),
    kvMetadata: [{ key: "huggingface", value: JSON.stringify({ info: { features: FEATURES } }) }],
  });
  return Buffer.from(buffer);
}

/** The README `push_to_hub` writes: the features and the split's files in its YAML. */
const README = `---
dataset_info:
  features:
${Object.entries(FEATURES)
  .map(([name, f]) => `  - name: ${name}\n    dtype: ${"dtype" in f ? f.dtype : "image"}`)
  .join("\n")}
  splits:
  - name: train
    num_examples: 12
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
# GEdit-Bench (test copy, Parquet)
`;

/** The data set's files as `push_to_hub` lays them out: data/train-0000k-of-0000n.parquet and a README. */
export async function geditParquetFiles(): Promise<Map<string, Buffer>> {
  const rows = await geditRows();
  // shards cut elsewhere than the Arrow ones, and row groups across the cut: the batching is exercised
  return new Map([
    ["data/train-00000-of-00002.parquet", parquetFile(rows.slice(0, 5), 3)],
    ["data/train-00001-of-00002.parquet", parquetFile(rows.slice(5), 4)],
    ["README.md", Buffer.from(README)],
  ]);
}
