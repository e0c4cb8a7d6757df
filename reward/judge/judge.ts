/**
 * The VLM judge over any OpenAI-compatible chat-completions endpoint (GPT-4o, vLLM, Ollama,
 * LM Studio). Transport retries (429 with Retry-After, 5xx, timeouts, dropped connections) are
 * the openai client's; this module adds bounded concurrency, one retry for an unusable reply,
 * refusal detection, several passes, pairwise ranking and the disk cache.
 */
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionContentPart } from "openai/resources/chat/completions";
import pLimit from "p-limit";
import sharp from "sharp";
import { type EditToScore, type JudgeRecord, PERSPECTIVES, type PassResult, type Perspective, type ScoreResult, type Scorer, type TokenUsage, type VieScorePart, summarise } from "../types.js";
import { DiskCache, cacheKey } from "./cache.js";
import type { JudgeConfig, ScoringProtocol } from "./config.js";
import { type ParseOutcome, parseReply, parseScoreList } from "./parse.js";
import { type ImageRole, MASK_NOTE, fill, promptHash, promptSet, vieScorePrompts } from "./prompts.js";

/** What one score() call spent and who answered it, summed over passes, retries and both rounds. */
class Tally implements TokenUsage {
  promptTokens = 0;
  completionTokens = 0;
  readonly answered = new Set<string>();
}

export interface ScoreOptions {
  /** Overrides the configured protocol for this one edit (the HTTP API's form field). */
  protocol?: ScoringProtocol;
  /**
   * With --judge-repeats: which repeat this is (0-based). Repeats after the first have their own
   * cache entries, so a cached first answer is never handed back as a second opinion.
   */
  repeat?: number;
}

export interface RankResult {
  protocol: "pairwise";
  promptVersion: string;
  model: string;
  /** Candidates by overall win rate, best first; `index` is the position in the input. */
  ranking: Array<{ index: number; winRate: number; perPerspective: Record<Perspective, number> }>;
  comparisons: Array<{ a: number; b: number; perspective: Perspective; winner?: "A" | "B" | "tie"; status: string; raw?: string }>;
  latencyMs: number;
}

export async function imageDataUrl(image: Buffer, side: number): Promise<string> {
  const jpeg = await sharp(image).rotate().flatten({ background: "#ffffff" }).resize(side, side, { fit: "inside" }).jpeg({ quality: 90 }).toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString("base64")}`;
}

export class JudgeScorer implements Scorer {
  readonly name = "judge";
  readonly client: OpenAI;
  private readonly limit: ReturnType<typeof pLimit>;
  readonly cache?: DiskCache<ScoreResult>;
  /** Observed latency of every completed request, for metrics. */
  onRequest?: (ms: number, outcome: string) => void;

  constructor(readonly config: JudgeConfig) {
    this.client = new OpenAI({
      baseURL: config.baseURL,
      // local servers (vLLM, Ollama) accept any key; the client insists on one
      apiKey: config.apiKey ?? process.env.OPENAI_API_KEY ?? "not-needed",
      timeout: config.timeoutMs,
      maxRetries: config.maxRetries,
    });
    this.limit = pLimit(config.concurrency);
    if (config.cacheDir) this.cache = new DiskCache(config.cacheDir);
  }

  private async complete(messages: ChatCompletionMessageParam[], tally: Tally): Promise<{ text: string | null; refused: boolean }> {
    const t0 = performance.now();
    const { seed, maxTokens } = this.config;
    try {
      const r = await this.limit(() =>
        this.client.chat.completions.create({
          model: this.config.model,
          messages,
          temperature: this.config.temperature,
          ...(seed !== undefined ? { seed } : {}),
          ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
        }),
      );
      tally.promptTokens += r.usage?.prompt_tokens ?? 0;
      tally.completionTokens += r.usage?.completion_tokens ?? 0;
      if (r.model) tally.answered.add(r.model);
      const choice = r.choices[0];
      const refused = Boolean(choice?.message?.refusal) || choice?.finish_reason === "content_filter";
      this.onRequest?.(performance.now() - t0, "ok");
      return { text: choice?.message?.content ?? choice?.message?.refusal ?? null, refused };
    } catch (err) {
      this.onRequest?.(performance.now() - t0, "error");
      throw err;
    }
  }

  /** One pass: ask, parse, and ask once more if the reply had no usable answer. */
  private async pass(tally: Tally, build: () => ChatCompletionMessageParam[], need: "score" | "winner" | "scores", followup?: string): Promise<PassResult & { outcome: ParseOutcome }> {
    const t0 = performance.now();
    let raw = "";
    let outcome: ParseOutcome = { kind: "unusable", why: "no reply" };
    let attempts = 0;
    while (attempts < 2) {
      attempts++;
      try {
        const messages = build();
        let { text, refused } = await this.complete(messages, tally);
        if (followup && !refused && text) {
          // multi-round: the analysis stays in the conversation, the rating comes in a second turn
          messages.push({ role: "assistant", content: text }, { role: "user", content: followup });
          const analysis = text;
          ({ text, refused } = await this.complete(messages, tally));
          raw = `${analysis}\n---\n${text ?? ""}`;
        } else raw = text ?? "";
        outcome = refused ? { kind: "refusal" } : need === "scores" ? parseScoreList(text) : parseReply(text, need);
      } catch (err) {
        raw = `request failed: ${(err as Error).message}`;
        outcome = { kind: "unusable", why: raw };
        break; // the client already retried the transport
      }
      if (outcome.kind !== "unusable") break;
    }
    const v = outcome.kind === "verdict" ? outcome.verdict : undefined;
    return { score: v?.score, scores: v?.scores, yes: v?.yes, reasoning: v?.reasoning, raw, latencyMs: performance.now() - t0, attempts, outcome };
  }

  private content(prompt: string, roles: ImageRole[], urls: Partial<Record<ImageRole, string>>): ChatCompletionContentPart[] {
    return [{ type: "text", text: prompt }, ...roles.map((r) => ({ type: "image_url" as const, image_url: { url: urls[r]! } }))];
  }

  /** The endpoint's host, as rows record it (the openai client's default when none is configured). */
  get host(): string {
    return new URL(this.config.baseURL ?? this.client.baseURL).host;
  }

  /**
   * Everything but the images and instruction that decides an answer: who is asked, how, and
   * which repeat. A change of snapshot behind the same alias is not visible here; the recorded
   * `answeredModel` shows it.
   */
  private keyParts(set: { protocol: string; version: string }, repeat = 0): string[] {
    const c = this.config;
    const settings = JSON.stringify({ host: this.host, t: c.temperature, seed: c.seed ?? null, max: c.maxTokens ?? null });
    return [set.protocol, set.version, c.model, String(c.passes), settings, ...(repeat > 0 ? [`repeat ${repeat}`] : [])];
  }

  /** A cached result spent nothing this time; who answered it stays as recorded. */
  private async cached(key: string): Promise<ScoreResult | undefined> {
    const hit = await this.cache?.get(key);
    return hit ? { ...hit, cached: true, usage: { promptTokens: 0, completionTokens: 0 } } : undefined;
  }

  async score(input: EditToScore, o: ScoreOptions = {}): Promise<ScoreResult> {
    const protocol = o.protocol ?? this.config.protocol;
    if (protocol === "viescore") return this.vieScore(input, o.repeat);
    const t0 = performance.now();
    const set = promptSet(protocol);
    const tally = new Tally();
    const key = cacheKey([...this.keyParts(set, o.repeat), input.instruction, input.source, input.edited, ...(input.mask ? [input.mask] : [])]);
    const hit = await this.cached(key);
    if (hit) return hit;
    const urls = { source: await imageDataUrl(input.source, this.config.imageSide), edited: await imageDataUrl(input.edited, this.config.imageSide) };
    // with a mask, preservation is asked about outside it: the mask travels as a third image
    const maskUrl = input.mask ? await imageDataUrl(input.mask, this.config.imageSide) : null;
    const perspectives = {} as ScoreResult["perspectives"];
    await Promise.all(
      PERSPECTIVES.map(async (p) => {
        const spec = set.perspectives[p];
        const content = this.content(fill(spec.prompt, input.instruction), spec.images, urls);
        if (maskUrl && p === "preserving") content.push({ type: "text", text: MASK_NOTE }, { type: "image_url", image_url: { url: maskUrl } });
        const build = (): ChatCompletionMessageParam[] => [
          { role: "system", content: set.system },
          { role: "user", content },
        ];
        const passes = await Promise.all(Array.from({ length: this.config.passes }, () => this.pass(tally, build, "score", spec.followup)));
        perspectives[p] = summarise(
          passes.map(({ outcome: _o, ...rest }) => rest),
          passes.every((x) => x.outcome.kind === "refusal"),
        );
      }),
    );
    const result: ScoreResult = { ...this.resultHeader(set, maskUrl, tally), perspectives, latencyMs: performance.now() - t0, cached: false };
    // only complete answers are cached: an unscored sample should be asked again next time
    if (this.cache && PERSPECTIVES.every((p) => perspectives[p].status === "scored")) await this.cache.set(key, result);
    return result;
  }

  /**
   * VIEScore: SC from source + edit + instruction, PQ from the edit alone, each a list of two
   * sub-scores 0..10 whose minimum is the figure; O = sqrt(SC * PQ). An unusable reply is asked
   * once more, then the part is unscored: no score is made up for it.
   */
  private async vieScore(input: EditToScore, repeat?: number): Promise<ScoreResult> {
    const t0 = performance.now();
    const set = vieScorePrompts();
    const tally = new Tally();
    const key = cacheKey([...this.keyParts(set, repeat), input.instruction, input.source, input.edited, ...(input.mask ? [input.mask] : [])]);
    const hit = await this.cached(key);
    if (hit) return hit;
    const urls = { source: await imageDataUrl(input.source, this.config.imageSide), edited: await imageDataUrl(input.edited, this.config.imageSide) };
    const maskUrl = input.mask ? await imageDataUrl(input.mask, this.config.imageSide) : null;
    const ask = (part: "sc" | "pq") => {
      const spec = set[part];
      const content = this.content(fill(spec.prompt, input.instruction), spec.images, urls);
      // over-editing is SC's second sub-score: with a mask, it is judged outside the mask
      if (maskUrl && part === "sc") content.push({ type: "text", text: MASK_NOTE }, { type: "image_url", image_url: { url: maskUrl } });
      const build = (): ChatCompletionMessageParam[] => [
        { role: "system", content: set.system },
        { role: "user", content },
      ];
      return Promise.all(Array.from({ length: this.config.passes }, () => this.pass(tally, build, "scores")));
    };
    const [sc, pq] = await Promise.all([ask("sc"), ask("pq")]);
    type Reply = Awaited<ReturnType<typeof ask>>[number];
    const part = (replies: Reply[]): VieScorePart => {
      const lists = replies.map((r) => r.scores).filter((x): x is number[] => x !== undefined);
      if (!lists.length) {
        return {
          status: replies.every((r) => r.outcome.kind === "refusal") ? "refused" : "unscored",
          lists: [],
          raw: replies.map((r) => r.raw ?? "").join("\n---\n").slice(0, 2000),
        };
      }
      return { status: "scored", score: lists.reduce((a, l) => a + Math.min(...l), 0) / lists.length, lists, reason: replies.find((r) => r.reasoning)?.reasoning };
    };
    const SC = part(sc);
    const PQ = part(pq);
    // the project's perspectives on its 0..5 scale, so refinement and the Real-Edit table can use a VIEScore judge
    const half = (replies: Reply[], pick: (l: number[]) => number) =>
      summarise(
        replies.map((r) => ({ score: r.scores ? pick(r.scores) / 2 : undefined, reasoning: r.reasoning, raw: r.raw, latencyMs: r.latencyMs, attempts: r.attempts })),
        replies.every((r) => r.outcome.kind === "refusal"),
      );
    const result: ScoreResult = {
      ...this.resultHeader(set, maskUrl, tally),
      perspectives: { following: half(sc, (l) => l[0]), preserving: half(sc, (l) => l[1]), quality: half(pq, (l) => Math.min(...l)) },
      viescore: { sc: SC, pq: PQ, o: SC.score !== undefined && PQ.score !== undefined ? Math.sqrt(SC.score * PQ.score) : undefined },
      latencyMs: performance.now() - t0,
      cached: false,
    };
    if (this.cache && SC.status === "scored" && PQ.status === "scored") await this.cache.set(key, result);
    return result;
  }

  /** What every protocol's result says of how it was judged. */
  private resultHeader(set: { protocol: ScoreResult["protocol"]; version: string }, maskUrl: string | null | undefined, tally: Tally) {
    return {
      backend: "judge" as const,
      protocol: set.protocol,
      promptVersion: maskUrl ? `${set.version}+mask` : set.version,
      model: this.config.model,
      passes: this.config.passes,
      judge: this.record(set, tally),
      usage: { promptTokens: tally.promptTokens, completionTokens: tally.completionTokens },
    };
  }

  /** Who judged: the configured settings and the model id(s) the API answered with. */
  record(set: { protocol: string; version: string }, tally?: Tally): JudgeRecord {
    const c = this.config;
    const answered = tally ? [...tally.answered].sort().join(", ") : "";
    return {
      host: this.host,
      model: c.model,
      ...(answered ? { answeredModel: answered } : {}),
      temperature: c.temperature,
      ...(c.seed !== undefined ? { seed: c.seed } : {}),
      ...(c.maxTokens !== undefined ? { maxTokens: c.maxTokens } : {}),
      promptHash: promptHash(set.protocol as Parameters<typeof promptHash>[0]),
      protocol: set.protocol,
      protocolVersion: set.version,
    };
  }

  /** Pairwise ranking of N candidate edits of one source: win rate over all pairs, a tie counting 0.5. */
  async rank(source: Buffer, instruction: string, candidates: Buffer[]): Promise<RankResult> {
    const t0 = performance.now();
    const set = promptSet("pairwise");
    const side = this.config.imageSide;
    const src = await imageDataUrl(source, side);
    const cands = await Promise.all(candidates.map((c) => imageDataUrl(c, side)));
    const wins = candidates.map(() => Object.fromEntries(PERSPECTIVES.map((p) => [p, 0])) as Record<Perspective, number>);
    const comparisons: RankResult["comparisons"] = [];
    const tally = new Tally();
    const jobs: Array<Promise<void>> = [];
    for (let a = 0; a < candidates.length; a++)
      for (let b = a + 1; b < candidates.length; b++)
        for (const p of PERSPECTIVES) {
          const spec = set.perspectives[p];
          const build = (): ChatCompletionMessageParam[] => [
            { role: "system", content: set.system },
            { role: "user", content: this.content(fill(spec.prompt, instruction), spec.images, { source: src, a: cands[a], b: cands[b] }) },
          ];
          jobs.push(
            this.pass(tally, build, "winner").then((r) => {
              const winner = r.outcome.kind === "verdict" ? r.outcome.verdict.winner : undefined;
              if (winner === "A") wins[a][p] += 1;
              else if (winner === "B") wins[b][p] += 1;
              else if (winner === "tie") (wins[a][p] += 0.5), (wins[b][p] += 0.5);
              comparisons.push({ a, b, perspective: p, winner, status: winner ? "scored" : r.outcome.kind === "refusal" ? "refused" : "unscored", raw: r.raw });
            }),
          );
        }
    await Promise.all(jobs);
    const others = Math.max(1, candidates.length - 1);
    const ranking = wins
      .map((w, index) => {
        const perPerspective = Object.fromEntries(PERSPECTIVES.map((p) => [p, w[p] / others])) as Record<Perspective, number>;
        return { index, perPerspective, winRate: PERSPECTIVES.reduce((s, p) => s + perPerspective[p], 0) / PERSPECTIVES.length };
      })
      .sort((x, y) => y.winRate - x.winRate || x.index - y.index);
    return { protocol: "pairwise", promptVersion: set.version, model: this.config.model, ranking, comparisons, latencyMs: performance.now() - t0 };
  }
}
