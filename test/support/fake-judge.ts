/**
 * A real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions protocol, scriptable to
 * misbehave: the judge's remote peer, which cannot run here.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Behaviour =
  | { reply: string; finishReason?: string }
  | { refusal: string }
  | { status: number; retryAfter?: number; body?: string }
  | { delayMs: number; reply: string }
  | { drop: true };

export interface RecordedRequest {
  headers: http.IncomingHttpHeaders;
  body: {
    model: string;
    temperature?: number;
    seed?: number;
    max_tokens?: number;
    messages: Array<{ role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> }>;
  };
  at: number;
}

/** A handler may look at the images it was sent (decoding takes a promise). */
export type Handler = (req: RecordedRequest, n: number) => Behaviour | Promise<Behaviour>;

export class FakeJudge {
  readonly requests: RecordedRequest[] = [];
  handler: Handler = () => ({ reply: '{"reasoning": "fine", "answer": "yes", "score": 4}' });
  /** The model id the reply names: a provider answers an alias with its dated snapshot. */
  answeredModel: (asked: string) => string = (asked) => asked;
  /** The token counts the reply reports. */
  usage: (req: RecordedRequest) => { prompt_tokens: number; completion_tokens: number } = () => ({ prompt_tokens: 10, completion_tokens: 10 });
  private server = http.createServer((req, res) => this.serve(req, res));
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  /** The text of the first user message of a request. */
  static prompt(r: RecordedRequest): string {
    const user = r.body.messages.find((m) => m.role === "user")!;
    return typeof user.content === "string" ? user.content : user.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
  }

  /** The image parts of the first user message, in order, as bytes. */
  static images(r: RecordedRequest): Buffer[] {
    const user = r.body.messages.find((m) => m.role === "user")!;
    if (typeof user.content === "string") return [];
    return user.content
      .filter((c) => c.type === "image_url")
      .map((c) => Buffer.from(c.image_url!.url.slice(c.image_url!.url.indexOf(",") + 1), "base64"));
  }

  static perspective(r: RecordedRequest): "following" | "preserving" | "quality" {
    const p = FakeJudge.prompt(r);
    return /follow/i.test(p) ? "following" : /NOT concern|does not mention|untouched/i.test(p) ? "preserving" : "quality";
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    let data = "";
    req.on("data", (d) => (data += d));
    req.on("end", async () => {
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"message":"not found"}}');
        return;
      }
      const rec: RecordedRequest = { headers: req.headers, body: JSON.parse(data), at: Date.now() };
      this.requests.push(rec);
      const b = await this.handler(rec, this.requests.length);
      if ("drop" in b) {
        req.socket.destroy();
        return;
      }
      if ("status" in b) {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (b.retryAfter !== undefined) headers["retry-after"] = String(b.retryAfter);
        res.writeHead(b.status, headers).end(b.body ?? JSON.stringify({ error: { message: `status ${b.status}`, type: "server_error" } }));
        return;
      }
      const send = () => {
        const message = "refusal" in b ? { role: "assistant", content: null, refusal: b.refusal } : { role: "assistant", content: b.reply };
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            id: `chatcmpl-${this.requests.length}`,
            object: "chat.completion",
            created: Math.floor(Date.now() / 1000),
            model: this.answeredModel(rec.body.model),
            choices: [{ index: 0, message, finish_reason: "finishReason" in b && b.finishReason ? b.finishReason : "stop" }],
            usage: (({ prompt_tokens, completion_tokens }) => ({ prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }))(this.usage(rec)),
          }),
        );
      };
      if ("delayMs" in b) setTimeout(send, b.delayMs);
      else send();
    });
  }
}
