/**
 * Edits made elsewhere, read from a folder: GEdit-Bench's own layout
 * (`fullset/<task_type>/<en|cn>/<key>.<png|jpg|jpeg|webp>`, as its official scripts write and read
 * it) or, for any suite, an `outputs.jsonl` manifest of `{"id": "<sample id>", "path": "..."}`
 * lines with paths relative to the manifest. The folder is checked before any judge is paid:
 * what is missing, extra, undecodable or of another shape than its source.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { Sample, Suite } from "../suites.js";
import type { EditOutcome, EditTask, Editor } from "./types.js";

export const MANIFEST = "outputs.jsonl";
export const OUTPUT_EXTENSIONS = ["png", "jpg", "jpeg", "webp"] as const;
/** Aspect ratios this far apart (relative) are listed: editors round sides to multiples of 8..64. */
export const ASPECT_TOLERANCE = 0.02;

export interface OutputsCheck {
  dir: string;
  layout: "gedit" | "manifest";
  /** Samples looked for. */
  samples: number;
  /** Sample id -> file, for the decodable ones. */
  usable: Map<string, string>;
  missing: Array<{ id: string; expected: string }>;
  undecodable: Array<{ id: string; path: string; error: string }>;
  /** Files (or manifest ids) that belong to no sample of the suite. */
  extra: string[];
  aspect: Array<{ id: string; path: string; edit: string; source: string }>;
  /** Manifest lines that cannot be used (not JSON, no id or path, a path outside the folder, an id twice). */
  problems: string[];
}

const IMAGE = new RegExp(`\\.(${OUTPUT_EXTENSIONS.join("|")})$`, "i");

/** Where GEdit-Bench's scripts put a sample's edit (without the extension). */
export const geditPath = (s: Sample) => (s.gedit ? path.posix.join("fullset", s.gedit.task, s.gedit.language, s.gedit.key) : null);

/** The path outputs-template proposes for a sample: GEdit-Bench's own, else one file per id. */
export const templatePath = (s: Sample) => (geditPath(s) ? `${geditPath(s)}.png` : `${s.id.replace(/[^A-Za-z0-9_.-]+/g, "_")}.png`);

function walk(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, base, out);
    else if (e.isFile()) out.push(path.relative(base, full).split(path.sep).join("/"));
  }
  return out;
}

/** `rel` resolved below `dir`, or null when it would leave it (by `..`, an absolute path or a link). */
function inside(dir: string, rel: string): string | null {
  if (path.isAbsolute(rel)) return null;
  const full = path.resolve(dir, rel);
  const within = (p: string, root: string) => {
    const r = path.relative(root, p);
    return r !== "" && !r.startsWith("..") && !path.isAbsolute(r);
  };
  if (!within(full, dir)) return null;
  if (existsSync(full) && !within(realpathSync(full), realpathSync(dir))) return null;
  return full;
}

/** Sample id -> relative path claimed for it, from the manifest or GEdit-Bench's layout. */
function locate(dir: string, suite: Suite, samples: Sample[], c: OutputsCheck): Map<string, string> {
  const claimed = new Map<string, string>();
  const known = new Set(suite.samples.map((s) => s.id));
  if (c.layout === "manifest") {
    const lines = readFileSync(path.join(dir, MANIFEST), "utf8").split("\n");
    lines.forEach((line, n) => {
      if (!line.trim()) return;
      const where = `${MANIFEST}:${n + 1}`;
      let r: { id?: unknown; path?: unknown };
      try {
        r = JSON.parse(line);
      } catch {
        c.problems.push(`${where}: not JSON`);
        return;
      }
      if (typeof r.id !== "string" || typeof r.path !== "string") return void c.problems.push(`${where}: needs "id" and "path" strings`);
      if (!known.has(r.id)) return void c.extra.push(`${r.id} (${MANIFEST}:${n + 1}, not a sample of ${suite.name})`);
      if (claimed.has(r.id)) return void c.problems.push(`${where}: ${r.id} listed twice`);
      if (!inside(dir, r.path)) return void c.problems.push(`${where}: ${r.path} is outside the folder`);
      claimed.set(r.id, path.posix.normalize(r.path));
    });
    return claimed;
  }
  const files = new Set(existsSync(path.join(dir, "fullset")) ? walk(path.join(dir, "fullset")).map((f) => `fullset/${f}`) : []);
  for (const s of samples) {
    const base = geditPath(s);
    const found = base && OUTPUT_EXTENSIONS.map((e) => `${base}.${e}`).find((f) => files.has(f));
    if (found) claimed.set(s.id, found);
  }
  return claimed;
}

/** The folder checked against the suite's first `limit` samples (extras: against the whole suite). */
export async function checkOutputs(dir: string, suite: Suite, o: { limit?: number } = {}): Promise<OutputsCheck> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--outputs ${dir} is not a folder`);
  const samples = suite.samples.slice(0, o.limit);
  const hasManifest = existsSync(path.join(dir, MANIFEST));
  const isGedit = suite.samples.some((s) => s.gedit);
  if (!hasManifest && !(isGedit && existsSync(path.join(dir, "fullset")))) {
    throw new Error(`${dir}: no ${MANIFEST}${isGedit ? " and no fullset/ folder (GEdit-Bench's layout)" : ""}; write one with \`reward-edit bench outputs-template --suite ${suite.name} --out ${dir}\``);
  }
  const c: OutputsCheck = { dir, layout: hasManifest ? "manifest" : "gedit", samples: samples.length, usable: new Map(), missing: [], undecodable: [], extra: [], aspect: [], problems: [] };
  const claimed = locate(dir, suite, suite.samples, c);

  // files that no sample of the suite claims (GEdit-Bench's generation writes <key>_SRCIMG copies of the sources: not edits)
  const used = new Set(claimed.values());
  const all = c.layout === "gedit" ? walk(path.join(dir, "fullset")).map((f) => `fullset/${f}`) : walk(dir).filter((f) => f !== MANIFEST);
  for (const f of all) if (IMAGE.test(f) && !used.has(f) && !/_SRCIMG\.[a-z]+$/i.test(f)) c.extra.push(f);

  const todo = samples.filter((s) => {
    const rel = claimed.get(s.id);
    if (rel && existsSync(path.join(dir, rel))) return true;
    c.missing.push({ id: s.id, expected: rel ?? (c.layout === "gedit" ? `${geditPath(s)}.{${OUTPUT_EXTENSIONS.join(",")}}` : `a ${MANIFEST} line for it`) });
    return false;
  });
  const ratio = (w: number, h: number) => w / h;
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(
      todo.slice(i, i + 8).map(async (s) => {
        const rel = claimed.get(s.id)!;
        const file = path.join(dir, rel);
        try {
          // a full decode: a cut-off file can still have a readable header
          const { info } = await sharp(file, { failOn: "error" }).raw().toBuffer({ resolveWithObject: true });
          c.usable.set(s.id, file);
          // the edit input's sides are rounded (GEdit-Bench: to 32): the judged source's shape counts as well
          const sources = await Promise.all([s.image, ...(s.judgeImage ? [s.judgeImage] : [])].map((f) => sharp(f).metadata()));
          const a = ratio(info.width, info.height);
          const fits = sources.some((m) => Math.abs(a - ratio(m.width!, m.height!)) / ratio(m.width!, m.height!) <= ASPECT_TOLERANCE);
          if (!fits) c.aspect.push({ id: s.id, path: rel, edit: `${info.width}x${info.height}`, source: `${sources[0].width}x${sources[0].height}` });
        } catch (e) {
          c.undecodable.push({ id: s.id, path: rel, error: (e as Error).message.split("\n")[0] });
        }
      }),
    );
  }
  const order = new Map(samples.map((s, i) => [s.id, i]));
  c.undecodable.sort((x, y) => order.get(x.id)! - order.get(y.id)!);
  c.aspect.sort((x, y) => order.get(x.id)! - order.get(y.id)!);
  c.extra.sort();
  return c;
}

/** The check as lines: a count line, then one line per finding. */
export function describeCheck(c: OutputsCheck): string[] {
  const lines = [
    `${c.dir} (${c.layout === "gedit" ? "GEdit-Bench layout" : MANIFEST}): ${c.usable.size} of ${c.samples} edits usable; ${c.missing.length} missing, ${c.undecodable.length} undecodable, ${c.extra.length} extra, ${c.aspect.length} of another aspect ratio, ${c.problems.length} manifest problems`,
  ];
  for (const m of c.missing) lines.push(`missing: ${m.id} (expected ${m.expected})`);
  for (const u of c.undecodable) lines.push(`undecodable: ${u.path} (${u.id}): ${u.error}`);
  for (const e of c.extra) lines.push(`extra: ${e}`);
  for (const a of c.aspect) lines.push(`aspect ratio: ${a.path} (${a.id}) is ${a.edit}, its source ${a.source}`);
  for (const p of c.problems) lines.push(`manifest: ${p}`);
  return lines;
}

/** The folder as an editor: a checked file is an ok edit; no file is `missing`; an undecodable one `edit_failed`. */
export class OutputsEditor implements Editor {
  readonly kind = "outputs" as const;
  readonly takesRewards = false;
  readonly concurrency = 1;
  readonly name: string;

  constructor(
    readonly label: string,
    private readonly check: OutputsCheck,
  ) {
    this.name = check.dir;
  }

  async edit(t: EditTask): Promise<EditOutcome> {
    const file = this.check.usable.get(t.sample.id);
    if (file) return { status: "ok", image: readFileSync(file), latencyMs: 0 };
    const bad = this.check.undecodable.find((u) => u.id === t.sample.id);
    if (bad) return { status: "edit_failed", error: `${bad.path}: not a decodable image (${bad.error})` };
    const m = this.check.missing.find((x) => x.id === t.sample.id);
    return { status: "missing", error: `no edit in ${this.check.dir} (expected ${m?.expected ?? "a file for it"})` };
  }

  async dispose(): Promise<void> {}
}
