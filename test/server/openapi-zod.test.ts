import { expect } from "chai";
import { z } from "zod";
import { serverConfigFrom } from "../../src/config/server.js";
import { openApiDocument } from "../../src/server/openapi.js";
import { fromZod } from "../../src/server/openapi-zod.js";
import { editSchema, scoreSchema } from "../../src/server/validation.js";

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
