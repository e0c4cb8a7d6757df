/**
 * Checks a route's real answer against its schema in src/server/responses.ts, the schema
 * /openapi.json is generated from: the body must parse, and must carry no field the schema does
 * not name (zod drops unknown keys, so an undocumented field shows as a key the parse lost); and
 * it must match the JSON Schema /openapi.json publishes for it too (read back with zod's
 * fromJSONSchema), so a client validating against the document accepts what the server sends.
 */
import { expect } from "chai";
import { z } from "zod";
import { serverConfigFrom } from "../../src/config/server.js";
import { openApiDocument } from "../../src/server/openapi.js";
import { RESPONSES, type ResponseBody, type ResponseName } from "../../src/server/responses.js";
import type { SseEvent } from "./sse.js";

/** Paths of the keys `body` has and the parsed value lost. */
function undocumented(body: unknown, parsed: unknown, at: string): string[] {
  if (Array.isArray(body) && Array.isArray(parsed)) return body.flatMap((x, i) => undocumented(x, parsed[i], `${at}[${i}]`));
  if (!body || typeof body !== "object" || !parsed || typeof parsed !== "object") return [];
  const p = parsed as Record<string, unknown>;
  return Object.entries(body).flatMap(([k, v]) => (k in p ? undocumented(v, p[k], at ? `${at}.${k}` : k) : [at ? `${at}.${k}` : k]));
}

let published: Record<string, z.ZodType> | undefined;
/** The document's components.schemas as validators, each with the others as $defs for its $refs. */
function publishedSchema(name: ResponseName): z.ZodType {
  if (!published) {
    const text = JSON.stringify(openApiDocument(serverConfigFrom({})).components.schemas).replaceAll("#/components/schemas/", "#/$defs/");
    const defs = JSON.parse(text) as Record<string, object>;
    published = Object.fromEntries(Object.entries(defs).map(([k, s]) => [k, z.fromJSONSchema({ ...s, $defs: defs } as never)]));
  }
  return published[name];
}

export function expectResponse<N extends ResponseName>(name: N, body: unknown): ResponseBody<N> {
  const r = RESPONSES[name].safeParse(body);
  if (!r.success) expect.fail(`${name}: the answer does not match its schema in responses.ts:\n${z.prettifyError(r.error)}`);
  const extra = undocumented(body, r.data, "");
  expect(extra, `${name}: fields the answer carries that responses.ts does not describe`).to.deep.equal([]);
  const doc = publishedSchema(name).safeParse(body);
  if (!doc.success) expect.fail(`${name}: /openapi.json's schema refuses the answer:\n${z.prettifyError(doc.error)}`);
  return r.data as ResponseBody<N>;
}

/** A fetch answer: JSON, with the status expected, and a body that matches `name`. */
export async function expectJsonAnswer<N extends ResponseName>(name: N, res: Response, status: number): Promise<ResponseBody<N>> {
  const body = (await res.json()) as unknown;
  expect(res.status, JSON.stringify(body).slice(0, 300)).to.equal(status);
  expect(res.headers.get("content-type")).to.match(/^application\/json/);
  return expectResponse(name, body);
}

/** The schema of each job event's data (GET /v1/jobs/{id}/events); the terminal events carry the job. */
const JOB_EVENTS: Record<string, ResponseName> = { queued: "JobQueuedEvent", started: "JobStartedEvent", progress: "JobProgressEvent", succeeded: "Job", failed: "Job", cancelled: "Job" };

export function expectJobEvents(events: SseEvent[]): void {
  for (const e of events) {
    expect(JOB_EVENTS, `event ${e.event}`).to.have.property(e.event);
    expectResponse(JOB_EVENTS[e.event], JSON.parse(e.data));
  }
}
