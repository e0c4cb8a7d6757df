import { expect } from "chai";
import { z } from "zod";
import { serverConfigFrom } from "../../src/config/server.js";
import { openApiDocument } from "../../src/server/openapi.js";
import { fromZod, responseComponents } from "../../src/server/openapi-zod.js";
import { JOB_STATES, RESPONSES } from "../../src/server/responses.js";
import { editSchema, scoreSchema } from "../../src/server/validation.js";
import { expectResponse } from "../support/responses.js";

type Schema = { required: string[]; additionalProperties: unknown; properties: Record<string, Record<string, unknown>> };
const form = (doc: ReturnType<typeof openApiDocument>, p: string) =>
  (doc.paths as unknown as Record<string, { post: { requestBody: { content: Record<string, { schema: Schema }> } } }>)[p].post.requestBody.content["multipart/form-data"].schema;

describe("OpenAPI request schemas come from the zod schemas that validate them (issue 31)", () => {
  it("the edit form documents exactly the fields editSchema accepts, with its ranges and defaults, plus the uploads", () => {
    const c = serverConfigFrom({}, { maxSteps: 37, maxCandidates: 3 });
    const f = form(openApiDocument(c), "/v1/edits");
    const accepted = Object.keys(editSchema(c).shape);
    const files = Object.entries(f.properties).filter(([, p]) => p.format === "binary").map(([k]) => k);
    expect(Object.keys(f.properties).sort()).to.deep.equal([...accepted, ...files].sort());
    expect(f.properties.steps).to.include({ type: "integer", minimum: 1, maximum: 37 });
    expect(f.properties.candidates).to.include({ type: "integer", maximum: 3, default: 1 });
    expect(f.properties.detail).to.deep.include({ enum: ["keep", "off"], default: "keep" });
    expect(f.required).to.deep.equal(["image", "instruction"]);
    expect(f.additionalProperties).to.equal(false);
    // the prose stays hand-written
    expect(String(f.properties.candidates.description)).to.match(/best-of-N/);
    expect(form(openApiDocument(c), "/v1/jobs").properties).to.have.property("webhook_url");
  });

  it("the score form likewise: scoreSchema's fields, enums and limits, plus the three uploads", () => {
    const f = form(openApiDocument(serverConfigFrom({})), "/v1/scores");
    expect(Object.keys(f.properties).sort()).to.deep.equal([...Object.keys(scoreSchema.shape), "edited", "mask", "source"].sort());
    expect(f.properties.protocol.enum).to.deep.equal(scoreSchema.shape.protocol.unwrap().options);
    expect(f.properties.instruction).to.include({ type: "string", minLength: 1, maxLength: 2000 });
    expect(f.required).to.deep.equal(["source", "edited", "instruction"]);
  });

  it("a field added to the schema appears without a hand edit; a documented field the schema refuses throws", () => {
    const schema = z.strictObject({ a: z.string(), b: z.enum(["x", "y"]).default("x") });
    const out = fromZod(schema, { type: "object", properties: { a: { description: "prose" }, f: { type: "string", format: "binary" } }, required: ["f"] });
    expect(out.properties.a).to.deep.equal({ description: "prose", type: "string" });
    expect(out.properties.b).to.deep.include({ enum: ["x", "y"], default: "x" });
    expect(out.required).to.deep.equal(["f", "a"]);
    expect(() => fromZod(schema, { type: "object", properties: { c: { type: "string" } } })).to.throw(/c is documented/);
  });
});

describe("OpenAPI response schemas come from responses.ts, the zod schemas the tests check answers against (issue 41)", () => {
  const doc = openApiDocument(serverConfigFrom({ REWARD_EDIT_API_KEYS: "k" }));
  const text = JSON.stringify(doc);

  it("every named body in the document is one of responses.ts's schemas, each is used, and every $ref resolves", () => {
    expect(Object.keys(doc.components.schemas).sort()).to.deep.equal(Object.keys(RESPONSES).sort());
    const refs = [...text.matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)].map((m) => [m[1], m[2]] as const);
    for (const [kind, name] of refs) expect((doc.components as Record<string, Record<string, unknown>>)[kind], `${kind}/${name}`).to.have.property(name);
    const used = new Set(refs.filter(([k]) => k === "schemas").map(([, n]) => n));
    expect([...Object.keys(RESPONSES)].filter((n) => !used.has(n))).to.deep.equal([]);
    // the types come from zod: the job's states are the schema's enum, no hand-written copy
    const job = doc.components.schemas.Job as { properties: Record<string, { enum?: string[] }>; required: string[] };
    expect(job.properties.state.enum).to.deep.equal([...JOB_STATES]);
    expect(job.required).to.include.members(["id", "state", "progress", "queue_position", "created_at"]);
    // every JSON answer of every operation names its schema
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>)) {
      for (const [m, op] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(op.responses ?? {})) {
          const schema = r.content?.["application/json"]?.schema as { $ref?: string } | undefined;
          if (r.content?.["application/json"] && p !== "/openapi.json") expect(schema?.$ref, `${m} ${p} ${status}`).to.match(/^#\/components\/schemas\//);
        }
      }
    }
  });

  it("Idempotency-Key is one shared header parameter on the three POSTs that start work, with its 409, 422 and Idempotent-Replayed", () => {
    const paths = doc.paths as unknown as Record<string, { post?: { parameters?: Array<{ $ref: string }>; responses: Record<string, { headers?: Record<string, unknown> }> } }>;
    const key = doc.components.parameters.IdempotencyKey;
    expect(key).to.deep.include({ name: "Idempotency-Key", in: "header", required: false });
    expect(key.schema).to.include({ minLength: 1, maxLength: 255 });
    expect(key.description).to.match(/REWARD_EDIT_IDEMPOTENCY_TTL/).and.match(/24 h/);
    for (const p of ["/v1/edits", "/v1/jobs", "/v1/images/edits"]) {
      const post = paths[p].post!;
      expect(post.parameters, p).to.deep.equal([{ $ref: "#/components/parameters/IdempotencyKey" }]);
      expect(post.responses, p).to.have.property("422");
      const ok = post.responses[p === "/v1/jobs" ? "202" : "200"];
      expect(ok.headers, p).to.have.property("Idempotent-Replayed");
    }
    expect(paths["/v1/edits"].post!.responses).to.have.property("409");
    expect(paths["/v1/images/edits"].post!.responses).to.have.property("409");
    expect(paths["/v1/scores"].post!.parameters).to.equal(undefined);
  });

  it("a field added to a response schema appears without a hand edit; a schema used inside another is a $ref", () => {
    const Inner = z.object({ n: z.number().int().describe("a count"), when: z.iso.datetime(), png: z.base64() });
    const Outer = z.object({ inner: Inner.nullable(), added: z.enum(["a", "b"]).optional() });
    const out = responseComponents({ Inner, Outer }) as Record<string, { properties: Record<string, Record<string, unknown>>; required?: string[] }>;
    expect(out.Outer.properties.inner).to.deep.equal({ anyOf: [{ $ref: "#/components/schemas/Inner" }, { type: "null" }] });
    expect(out.Outer.properties.added).to.deep.equal({ type: "string", enum: ["a", "b"] });
    expect(out.Outer.required).to.deep.equal(["inner"]);
    // without zod's spelled-out safe-integer bounds and format regexes; open to fields added later
    expect(out.Inner.properties.n).to.deep.equal({ type: "integer", description: "a count" });
    expect(out.Inner.properties.when).to.deep.equal({ type: "string", format: "date-time" });
    expect(out.Inner.properties.png).to.deep.equal({ type: "string", contentEncoding: "base64" });
    expect(out.Inner).to.not.have.property("additionalProperties");
    expect(out.Inner).to.not.have.property("$schema");
  });

  it("expectResponse refuses an answer with a field no schema names, a wrong type or a missing field", () => {
    const job = { id: "j", state: "queued", progress: 0, step: 0, steps: 0, queue_position: 0, replica: null, created_at: "2025-01-01T00:00:00.000Z" };
    expect(expectResponse("Job", job).state).to.equal("queued");
    expect(() => expectResponse("Job", { ...job, colour: "red" })).to.throw(/does not describe[\s\S]*colour/);
    expect(() => expectResponse("Job", { ...job, error: { code: "c", message: "m", hint: 1 } })).to.throw(/error\.hint/);
    expect(() => expectResponse("Job", { ...job, state: "paused" })).to.throw(/Job: the answer does not match/);
    const { created_at: _, ...partial } = job;
    expect(() => expectResponse("Job", partial)).to.throw(/created_at/);
    expect(() => expectResponse("Error", { error: { code: "c" } })).to.throw(/message/);
  });
});
