import { expect } from "chai";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";

/** A raw request, so the body and its headers can be as broken as a careless client makes them. */
function raw(url: string, method: string, headers: Record<string, string>, body: Buffer | string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      let data = "";
      res.on("data", (c) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("HTTP protocol errors are the client's: 4xx JSON, never 500 (issue 23, part)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, corsOrigins: ["*"] }, {});
  });
  after(() => s.stop());

  it("a malformed multipart body is a 400 naming the body", async () => {
    const part = (b: string) => `--${b}\r\nContent-Disposition: form-data; name="instruction"\r\n\r\nmake it red\r\n`;
    const cases: Array<[string, Record<string, string>, string]> = [
      ["no boundary", { "content-type": "multipart/form-data" }, part("x")],
      ["cut-off body", { "content-type": "multipart/form-data; boundary=x" }, part("x") + "--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n\x89PNG"],
      ["part header without a colon", { "content-type": "multipart/form-data; boundary=x" }, "--x\r\nthis is not a header\r\n\r\nvalue\r\n--x--\r\n"],
      ["boundary mismatch", { "content-type": "multipart/form-data; boundary=y" }, part("x") + "--x--\r\n"],
      ["empty body", { "content-type": "multipart/form-data; boundary=x" }, ""],
    ];
    for (const [label, headers, body] of cases) {
      const r = await raw(`${s.url}/v1/edits`, "POST", headers, body);
      expect(r.status, label).to.be.within(400, 499);
      const e = JSON.parse(r.body).error;
      expect(e.field, label).to.be.oneOf(["body", "image", "instruction"]);
    }
    // and the process keeps serving
    const f = new FormData();
    f.append("image", new Blob([new Uint8Array(photo)]), "p.png");
    f.append("instruction", "make the mug red");
    f.append("steps", "2");
    expect((await fetch(`${s.url}/v1/edits`, { method: "POST", body: f })).status).to.equal(200);
  });

  it("JSON, urlencoded and multipart/mixed bodies are 415: the endpoints take multipart/form-data", async () => {
    const cases: Array<[string, string]> = [
      ["application/json", JSON.stringify({ instruction: "make it red" })],
      ["application/x-www-form-urlencoded", "instruction=make+it+red"],
      ["multipart/mixed; boundary=x", "--x\r\n\r\nhello\r\n--x--\r\n"],
    ];
    for (const path of ["/v1/edits", "/v1/jobs", "/v1/scores"]) {
      for (const [type, body] of cases) {
        const r = await raw(`${s.url}${path}`, "POST", { "content-type": type }, body);
        expect(r.status, `${path} ${type}`).to.equal(415);
        const e = JSON.parse(r.body).error;
        expect(e).to.include({ code: "unsupported_media_type", field: "body" });
        expect(e.message).to.contain("multipart/form-data");
      }
    }
  });

  it("a known path asked with another method is a 405 with Allow; an unknown path stays 404", async () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/v1/edits", "POST"],
      ["PUT", "/v1/jobs", "POST"],
      ["POST", "/v1/jobs/abc", "GET, HEAD, DELETE"],
      ["DELETE", "/v1/presets", "GET, HEAD"],
      ["POST", "/healthz", "GET, HEAD"],
      ["PATCH", "/v1/jobs/abc/result", "GET, HEAD"],
    ];
    for (const [method, p, allow] of cases) {
      const r = await fetch(`${s.url}${p}`, { method });
      expect(r.status, `${method} ${p}`).to.equal(405);
      expect(r.headers.get("allow"), `${method} ${p}`).to.equal(allow);
      expect((await r.json()).error.code).to.equal("method_not_allowed");
    }
    expect((await fetch(`${s.url}/v1/nothing`)).status).to.equal(404);
  });

  it("with CORS open to any origin, /metrics still sends no CORS header; the API does", async () => {
    const headers = { origin: "https://elsewhere.example" };
    expect((await fetch(`${s.url}/metrics`, { headers })).headers.get("access-control-allow-origin")).to.equal(null);
    expect((await fetch(`${s.url}/v1/presets`, { headers })).headers.get("access-control-allow-origin")).to.equal("*");
  });

  it("the page and the API send security headers: a content security policy, nosniff, no framing", async () => {
    for (const p of ["/", "/v1/presets"]) {
      const h = (await fetch(`${s.url}${p}`)).headers;
      expect(h.get("x-content-type-options"), p).to.equal("nosniff");
      expect(h.get("x-frame-options"), p).to.equal("DENY");
      const csp = h.get("content-security-policy")!;
      expect(csp, p).to.contain("default-src 'self'");
      expect(csp, p).to.contain("frame-ancestors 'none'");
    }
  });

  it("a body trickled in slower than the upload timeout is answered 408 within it, and the server keeps serving", async () => {
    const slow = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, uploadTimeoutMs: 1_500 }, {});
    try {
      const t0 = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = connect(slow.port, "127.0.0.1", () => {
          sock.write("POST /v1/edits HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n");
          const drip = setInterval(() => sock.write("a"), 200);
          let got = "";
          sock.on("data", (d) => (got += d));
          sock.on("close", () => {
            clearInterval(drip);
            resolve(got);
          });
          sock.on("error", (e) => {
            clearInterval(drip);
            if (got) resolve(got);
            else reject(e);
          });
        });
      });
      expect(answer).to.match(/^HTTP\/1\.1 408/);
      expect(Date.now() - t0).to.be.below(6_000);
      expect((await fetch(`${slow.url}/healthz`)).status).to.equal(200);
    } finally {
      await slow.stop();
    }
  });
});

describe("accepted image formats are what the image library really decodes (issue 23)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, {});
  });
  after(() => s.stop());

  it("the start-up probe decodes each format it lists; the OpenAPI document names exactly those", async () => {
    const { decodableFormats } = await import("../../src/server/formats.js");
    const can = await decodableFormats();
    expect(can.formats).to.include.members(["jpeg", "png", "webp"]);
    // the prebuilt libvips has libheif with an AV1 decoder and no HEVC one: AVIF yes, HEIC no
    expect(can.heifCodecs).to.include("av1");
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as { paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: { image: { description: string } } } }> } } }> };
    const said = doc.paths["/v1/edits"].post.requestBody.content["multipart/form-data"].schema.properties.image.description;
    for (const n of can.names) expect(said).to.contain(n);
    if (!can.heifCodecs.includes("hevc")) expect(said).to.not.match(/HEIC|HEIF/);
  });

  it("an AVIF photo is edited; an SVG is refused at submission, sync and async alike, with a short message of our own", async () => {
    const sharp = (await import("sharp")).default;
    const avif = await sharp(readFileSync(path.join(PHOTOS, "coffee.png"))).heif({ compression: "av1" }).toBuffer();
    const form = (image: Buffer) => {
      const f = new FormData();
      f.append("image", new Blob([new Uint8Array(image)]), "p.bin");
      f.append("instruction", "make the mug red");
      f.append("steps", "2");
      return f;
    };
    expect((await fetch(`${s.url}/v1/edits`, { method: "POST", body: form(avif) })).status).to.equal(200);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>');
    for (const p of ["/v1/edits", "/v1/jobs"]) {
      const r = await fetch(`${s.url}${p}`, { method: "POST", body: form(svg) });
      expect(r.status, p).to.equal(415);
      const e = ((await r.json()) as { error: { message: string; field: string } }).error;
      expect(e.field).to.equal("image");
      expect(e.message).to.match(/^image: format svg is not accepted; send JPEG, PNG, WEBP/);
      expect(e.message.length).to.be.below(120);
    }
  });
});
