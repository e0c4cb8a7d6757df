/**
 * The OpenAPI document's request schemas from the zod schemas that validate the same requests
 * (zod 4's own JSON Schema conversion), so the document cannot drift from what is accepted: the
 * types, ranges, enums, defaults, required fields and the refusal of unknown fields come from zod;
 * only the prose (descriptions, examples) and the uploaded files are written by hand.
 */
import { z } from "zod";

type Json = Record<string, unknown>;
interface ObjectSchema {
  properties?: Record<string, Json>;
  required?: string[];
  additionalProperties?: unknown;
}

const isFile = (p: Json | undefined) => p?.format === "binary";

/**
 * `doc`: the hand-written object schema, for its prose and files. A documented field the zod
 * schema does not accept throws (the document would promise what is refused). `keep`: fields
 * whose hand-written constraints stand, because the route parses them itself from a plain string.
 */
export function fromZod(schema: z.ZodType, doc: { properties: Record<string, Json>; required?: string[] } & Json, keep: string[] = []): Json & { properties: Record<string, Json>; required: string[] } {
  // the output side has the numbers, ranges and enums a multipart string is parsed into; a
  // transform it cannot express (rewards, guidance_interval) falls back to the input side
  const out = z.toJSONSchema(schema, { io: "output", unrepresentable: "any" }) as ObjectSchema;
  const inp = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as ObjectSchema;
  const generated = out.properties ?? {};
  for (const [k, p] of Object.entries(doc.properties)) {
    if (!(k in generated) && !isFile(p)) throw new Error(`openapi: ${k} is documented but the request schema does not accept it`);
  }
  const properties: Record<string, Json> = {};
  for (const k of new Set([...Object.keys(doc.properties), ...Object.keys(generated)])) {
    const g = generated[k];
    if (!g || keep.includes(k)) {
      properties[k] = doc.properties[k];
      continue;
    }
    const { $schema: _, ...typed } = Object.keys(g).length ? g : (inp.properties?.[k] ?? {});
    // a hand-written enum or type would contradict the generated one: only the prose stays
    const { type: _t, enum: _e, minimum: _min, maximum: _max, minLength: _minL, maxLength: _maxL, default: _d, exclusiveMinimum: _x, ...prose } = doc.properties[k] ?? {};
    properties[k] = { ...prose, ...typed };
  }
  const files = (doc.required ?? []).filter((k) => isFile(doc.properties[k]));
  // a form whose route strips extra fields before validating says so itself (additionalProperties: true)
  const additionalProperties = "additionalProperties" in doc ? doc.additionalProperties : (out.additionalProperties ?? true);
  return { ...doc, type: "object", required: [...files, ...(inp.required ?? [])], additionalProperties, properties };
}

const SAFE = Number.MAX_SAFE_INTEGER;
/** zod's conversion spells out what JSON Schema says with less: safe-integer bounds, the regexes behind a format. */
function tidy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(tidy);
  if (!v || typeof v !== "object") return v;
  const o = { ...(v as Json) };
  delete o.$schema;
  delete o.$id;
  if (o.minimum === -SAFE) delete o.minimum;
  if (o.maximum === SAFE) delete o.maximum;
  if (o.format === "date-time") delete o.pattern;
  if (o.contentEncoding === "base64") {
    delete o.pattern;
    delete o.format;
  }
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, tidy(x)]));
}

/**
 * The response bodies' schemas (responses.ts) as components.schemas, a schema used inside another
 * named by $ref. The input side: an object documented this way stays open to fields added later.
 */
export function responseComponents(schemas: Record<string, z.ZodType>): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, s] of Object.entries(schemas)) registry.add(s, { id });
  const { schemas: out } = z.toJSONSchema(registry, { io: "input", unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(out).map(([id, s]) => [id, tidy(s) as Json]));
}
