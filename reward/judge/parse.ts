/**
 * Reading a judge's reply. Pure functions, no I/O. Accepts JSON, dict-like and prose-wrapped
 * answers, repairs common sloppiness, and never invents a score: a reply without a usable
 * score in range yields `undefined` for it.
 */

export interface ParsedVerdict {
  score?: number;
  /** VIEScore: the whole list of sub-scores. */
  scores?: number[];
  yes?: boolean;
  winner?: "A" | "B" | "tie";
  reasoning?: string;
}

export type ParseOutcome = { kind: "verdict"; verdict: ParsedVerdict } | { kind: "refusal" } | { kind: "unusable"; why: string };

const REFUSAL =
  /\b(i['’]m sorry,? but|i am sorry,? but|i can(?:no|['’])t (?:help|assist|evaluate|comply|provide)|i(?: am|['’]m) (?:unable|not able) to|i won['’]t be able to|cannot assist with)/i;

/** Balanced {...} blocks in order of appearance (strings respected), so prose around JSON is skipped. */
function objectCandidates(text: string): string[] {
  const out: string[] = [];
  for (let start = text.indexOf("{"); start >= 0; start = text.indexOf("{", start + 1)) {
    let depth = 0;
    let quote: string | null = null;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (quote) {
        if (ch === "\\") i++;
        else if (ch === quote) quote = null;
        continue;
      }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === "{") depth++;
      else if (ch === "}" && --depth === 0) {
        out.push(text.slice(start, i + 1));
        break;
      }
    }
  }
  return out;
}

/** Python-dict style and trailing commas are the usual sins of chat models. */
function repair(s: string): string {
  return s
    .replace(/[“”]/g, '"')
    .replace(/[‘’]/g, "'")
    .replace(/'([^'\\]*(?:\\.[^'\\]*)*)'/g, (_, inner: string) => JSON.stringify(inner))
    .replace(/([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:/g, '$1"$2":')
    .replace(/,\s*([}\]])/g, "$1")
    .replace(/\bTrue\b/g, "true")
    .replace(/\bFalse\b/g, "false")
    .replace(/\bNone\b/g, "null");
}

function tryJson(s: string): Record<string, unknown> | undefined {
  for (const candidate of [s, repair(s)]) {
    try {
      const v = JSON.parse(candidate);
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* try the next form */
    }
  }
  return undefined;
}

function toScore(v: unknown): number | undefined | null {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim().split("/")[0]) : Number.NaN;
  if (!Number.isFinite(n)) return undefined;
  // out of range is not clamped: that would be inventing a score
  return n >= 0 && n <= 5 ? n : null;
}

function toYes(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v !== "string") return undefined;
  const s = v.trim().toLowerCase();
  if (s.startsWith("yes")) return true;
  if (s.startsWith("no")) return false;
  return undefined;
}

function toWinner(v: unknown): ParsedVerdict["winner"] {
  if (typeof v !== "string") return undefined;
  const s = v.trim().toLowerCase().replace(/^edit\s+/, "");
  if (s === "a") return "A";
  if (s === "b") return "B";
  if (s === "tie" || s === "equal" || s === "both") return "tie";
  return undefined;
}

const pick = (o: Record<string, unknown>, keys: string[]) => {
  const lower = new Map(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v]));
  for (const k of keys) if (lower.has(k)) return lower.get(k);
  return undefined;
};

function fromObject(o: Record<string, unknown>): ParsedVerdict | "out_of_range" {
  const score = toScore(pick(o, ["score", "rating", "final_score"]));
  if (score === null) return "out_of_range";
  return {
    score,
    yes: toYes(pick(o, ["answer", "yes_no", "verdict", "decision"])),
    winner: toWinner(pick(o, ["winner", "better", "choice"])),
    reasoning: (pick(o, ["reasoning", "reason", "analysis", "explanation"]) as string | undefined) ?? undefined,
  };
}

/** Prose fallback: "Score: 4/5", "Answer: yes", "Winner: B". */
function fromProse(text: string): ParsedVerdict | "out_of_range" {
  const m = /\b(?:score|rating)\s*(?:is|of|[:=])?\s*\**\s*(-?\d+(?:\.\d+)?)(?:\s*\/\s*5)?/i.exec(text);
  const score = m ? toScore(m[1]) : undefined;
  if (score === null) return "out_of_range";
  const a = /\banswer\s*(?:is|[:=])?\s*\**\s*"?(yes|no)\b/i.exec(text);
  const w = /\b(?:winner|better edit)\s*(?:is|[:=])?\s*\**\s*"?(?:edit\s+)?(A|B|tie)\b/i.exec(text);
  return { score, yes: a ? a[1].toLowerCase() === "yes" : undefined, winner: toWinner(w?.[1]) };
}

const usable = (v: ParsedVerdict, need: "score" | "winner") => (need === "score" ? v.score !== undefined : v.winner !== undefined);

export function parseReply(text: string | null | undefined, need: "score" | "winner" = "score"): ParseOutcome {
  if (!text || !text.trim()) return { kind: "unusable", why: "empty reply" };
  const body = text.replace(/```(?:json)?/gi, "");
  let outOfRange = false;
  for (const candidate of objectCandidates(body)) {
    const o = tryJson(candidate);
    if (!o) continue;
    const v = fromObject(o);
    if (v === "out_of_range") outOfRange = true;
    else if (usable(v, need)) return { kind: "verdict", verdict: v };
  }
  const prose = fromProse(body);
  if (prose === "out_of_range") outOfRange = true;
  else if (usable(prose, need)) return { kind: "verdict", verdict: prose };
  if (REFUSAL.test(text)) return { kind: "refusal" };
  return { kind: "unusable", why: outOfRange ? "score out of range 0..5" : `no ${need} found` };
}

/** A list of exactly `count` numbers in 0..max, or why it is not one. */
function toList(v: unknown, count: number, max: number): number[] | string {
  if (!Array.isArray(v)) return "score is not a list";
  const xs = v.map((x) => (typeof x === "number" ? x : typeof x === "string" && x.trim() !== "" ? Number(x.trim().split("/")[0]) : Number.NaN));
  if (xs.some((x) => !Number.isFinite(x))) return "score list holds something that is not a number";
  // the protocol asks for a fixed number of sub-scores: the minimum of a shorter list would not be the same measure
  if (xs.length !== count) return `score list has ${xs.length} entries, ${count} were asked for`;
  if (xs.some((x) => x < 0 || x > max)) return `sub-score out of range 0..${max}`;
  return xs;
}

/**
 * A VIEScore reply: `{"score": [..], "reasoning": ".."}` with `count` sub-scores in 0..max.
 * JSON is repaired as for the other protocols; a list written inside broken JSON or prose
 * (`"score": [7, 8]`) is still read. Nothing else is: an unusable reply stays unusable.
 */
export function parseScoreList(text: string | null | undefined, count = 2, max = 10): ParseOutcome {
  if (!text || !text.trim()) return { kind: "unusable", why: "empty reply" };
  const body = text.replace(/```(?:json)?/gi, "");
  let why = "no score list found";
  for (const candidate of objectCandidates(body)) {
    const o = tryJson(candidate);
    if (!o) continue;
    const list = toList(pick(o, ["score", "scores"]), count, max);
    if (typeof list === "string") {
      why = list;
      continue;
    }
    const reasoning = pick(o, ["reasoning", "reason", "analysis", "explanation"]);
    return { kind: "verdict", verdict: { scores: list, reasoning: typeof reasoning === "string" ? reasoning : undefined } };
  }
  const m = /["']?\bscores?\b["']?\s*[:=]\s*\[([^\]]*)\]/i.exec(body);
  if (m) {
    const list = toList(m[1].split(",").map((x) => x.replace(/["']/g, "")), count, max);
    if (typeof list !== "string") {
      const r = /["']?\breasoning\b["']?\s*[:=]\s*["']([^"']*)/i.exec(body);
      return { kind: "verdict", verdict: { scores: list, reasoning: r?.[1] } };
    }
    why = list;
  }
  if (REFUSAL.test(text)) return { kind: "refusal" };
  return { kind: "unusable", why };
}
