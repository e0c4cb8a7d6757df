/**
 * CLIP's byte-level BPE tokenizer, built in stages from a model folder's tokenizer/ files:
 * normalise -> pre-tokenise -> byte-map -> BPE -> add special tokens -> pad/truncate.
 * Names follow Hugging Face (input_ids, max_length) so outputs compare 1:1 with transformers.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

/** CLIP's pre-tokeniser pattern: specials, English contractions, letter runs, single digits, punctuation runs. */
const PRE_TOKENIZE =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/gu;

const END_OF_WORD = "</w>";
/** Longest run of bytes merged as one (see bpeWord); CLIP's longest vocabulary entry is far shorter. */
const MAX_BPE_WORD = 128;

/** GPT-2/CLIP's reversible table from bytes to printable code points (no whitespace or control chars). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  }
  return table;
}

export interface TokenizerConfig {
  model_max_length: number;
  bos_token: string;
  eos_token: string;
  pad_token: string;
  unk_token: string;
  do_lower_case: boolean;
}

export interface EncodeOptions {
  /** Defaults to the tokenizer's model_max_length (77 for CLIP). */
  max_length?: number;
  padding?: "max_length" | false;
  truncation?: boolean;
}

type SpecialToken = string | { content: string };
const tokenText = (t: SpecialToken | undefined, fallback: string): string =>
  t === undefined ? fallback : typeof t === "string" ? t : t.content;

export class CLIPTokenizer {
  readonly config: TokenizerConfig;
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly pad_token_id: number;
  private readonly vocab: Map<string, number>;
  private readonly idToToken: string[];
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder = bytesToUnicode();
  private readonly byteDecoder: Map<string, number>;
  private readonly cache = new Map<string, string[]>();

  constructor(vocab: Record<string, number>, merges: string[], config: Partial<Record<string, unknown>> = {}) {
    this.vocab = new Map(Object.entries(vocab));
    this.idToToken = [];
    for (const [t, id] of this.vocab) this.idToToken[id] = t;
    this.ranks = new Map();
    merges.forEach((m, i) => this.ranks.set(m, i));
    this.byteDecoder = new Map(this.byteEncoder.map((c, b) => [c, b]));
    const eos = tokenText(config.eos_token as SpecialToken | undefined, "<|endoftext|>");
    this.config = {
      model_max_length: Number(config.model_max_length ?? 77),
      bos_token: tokenText(config.bos_token as SpecialToken | undefined, "<|startoftext|>"),
      eos_token: eos,
      pad_token: tokenText(config.pad_token as SpecialToken | undefined, eos),
      unk_token: tokenText(config.unk_token as SpecialToken | undefined, eos),
      do_lower_case: config.do_lower_case === undefined ? true : Boolean(config.do_lower_case),
    };
    this.bos_token_id = this.idOf(this.config.bos_token, "bos_token");
    this.eos_token_id = this.idOf(this.config.eos_token, "eos_token");
    this.pad_token_id = this.idOf(this.config.pad_token, "pad_token");
  }

  /** Reads vocab.json, merges.txt and tokenizer_config.json from a tokenizer folder. */
  static async fromFolder(dir: string): Promise<CLIPTokenizer> {
    const read = (f: string) => readFile(path.join(dir, f), "utf8");
    const [vocabText, mergesText, configText] = await Promise.all([
      read("vocab.json"),
      read("merges.txt"),
      read("tokenizer_config.json").catch(() => "{}"),
    ]);
    const merges = mergesText
      .split("\n")
      .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith("#version")));
    return new CLIPTokenizer(JSON.parse(vocabText), merges, JSON.parse(configText));
  }

  get vocab_size(): number {
    return this.vocab.size;
  }

  private idOf(token: string, what: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`tokenizer: ${what} "${token}" is not in vocab.json`);
    return id;
  }

  /** transformers' CLIP normaliser (fast tokenizer): NFC, collapse whitespace, lower-case. */
  normalize(text: string): string {
    const t = text.normalize("NFC").replace(/\s+/gu, " ").trim();
    return this.config.do_lower_case ? t.toLowerCase() : t;
  }

  /** BPE over one pre-token (its bytes mapped to printable chars), appended to `out`. */
  private bpeWord(mapped: string, out: string[], limit: number): void {
    const chars = Array.from(mapped);
    // Different to HF: a word longer than MAX_BPE_WORD is merged in pieces of that many bytes
    // (only the last ends the word), so a 200,000-character "word" costs linear work; no
    // instruction has such a word, and CLIP's 77 tokens are used up long before the first cut.
    for (let at = 0; at < chars.length && out.length < limit; at += MAX_BPE_WORD) {
      const end = Math.min(chars.length, at + MAX_BPE_WORD);
      const piece = chars.slice(at, end).join("");
      for (const t of this.bpe(piece, end === chars.length)) {
        if (out.length >= limit) return;
        out.push(t);
      }
    }
  }

  private bpe(piece: string, endsWord: boolean): string[] {
    const key = endsWord ? piece + END_OF_WORD : piece;
    const cached = this.cache.get(key);
    if (cached) return cached;
    let parts = Array.from(piece);
    if (endsWord) parts[parts.length - 1] += END_OF_WORD;
    while (parts.length > 1) {
      let best = Infinity;
      let bestPair = "";
      for (let i = 0; i < parts.length - 1; i++) {
        const pair = `${parts[i]} ${parts[i + 1]}`;
        const r = this.ranks.get(pair);
        if (r !== undefined && r < best) {
          best = r;
          bestPair = pair;
        }
      }
      if (best === Infinity) break;
      // merge every occurrence of the best pair, left to right, as CLIP's reference bpe() does
      const [a, b] = bestPair.split(" ");
      const next: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(parts[i]);
      }
      parts = next;
    }
    if (this.cache.size < 10_000) this.cache.set(key, parts);
    return parts;
  }

  /**
   * Text to BPE token strings, without special tokens; at most `limit` of them (encode asks for
   * only what it keeps, so any length of text costs bounded work).
   */
  tokenize(text: string, limit = Infinity): string[] {
    const out: string[] = [];
    for (const m of this.normalize(text).matchAll(PRE_TOKENIZE)) {
      if (out.length >= limit) break;
      const word = m[0];
      if (word === this.config.bos_token || word === this.config.eos_token) {
        out.push(word);
        continue;
      }
      let mapped = "";
      for (const b of Buffer.from(word, "utf8")) mapped += this.byteEncoder[b];
      this.bpeWord(mapped, out, limit);
    }
    return out;
  }

  /** BOS + ids + EOS, truncated so EOS is kept, padded with the tokenizer's own pad token. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const maxLength = options.max_length ?? this.config.model_max_length;
    const truncate = options.truncation !== false;
    const unk = this.vocab.get(this.config.unk_token) ?? this.eos_token_id;
    const out = [this.bos_token_id];
    // a loop, not push(...ids): an untruncated encoding of a long text has more ids than a call takes arguments
    for (const t of this.tokenize(text, truncate ? Math.max(0, maxLength - 2) : Infinity)) out.push(this.vocab.get(t) ?? unk);
    out.push(this.eos_token_id);
    if (options.padding !== false) while (out.length < maxLength) out.push(this.pad_token_id);
    return out;
  }

  /** Ids back to text; special tokens dropped, word ends become spaces (as transformers' decode). */
  decode(ids: number[]): string {
    const specials = new Set([this.bos_token_id, this.eos_token_id, this.pad_token_id]);
    const text = ids
      .filter((id) => !specials.has(id))
      .map((id) => this.idToToken[id] ?? "")
      .join("");
    const bytes = Array.from(text.replaceAll(END_OF_WORD, " "), (c) => this.byteDecoder.get(c) ?? 32);
    return Buffer.from(bytes).toString("utf8").trim();
  }
}
