import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { PHOTOS } from "../helpers.js";
import { ARTIFACTS, launchChromium } from "../support/browser.js";
import { baseForm } from "../support/forms.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

describe("what the loaded model is for (bundled model: synthetic scenes only)", function () {
  this.timeout(90_000);
  let s: RunningServer;
  let browser: Browser;
  const url = (p: string) => `${s.url}${p}`;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: BUNDLED_MODEL, workers: 1 }, {});
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  it("GET /v1/models gives the domain: synthetic, 64 px, instruction kinds, example images it serves", async () => {
    const [m] = (await (await fetch(url("/v1/models"))).json()).models;
    expect(m.domain).to.include({ kind: "synthetic", working_size: 64 });
    expect(m.domain.description).to.match(/synthetic product scenes/).and.match(/Use a real model/);
    expect(m.domain.instructions.join(" ")).to.match(/recolour/).and.match(/background/).and.match(/remove/);
    expect(m.domain.examples).to.have.length.at.least(3);
    for (const ex of m.domain.examples) {
      const res = await fetch(url(`/v1/models/${ex.image}`));
      expect(res.status, ex.image).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("image/png");
    }
    const outside = await fetch(url("/v1/models/examples/..%2Freward-edit.json"));
    expect(outside.status).to.equal(404);
    expect((await outside.json()).error.field).to.equal("file");
  });

  it("a photo is edited anyway, with a warning in the JSON body and a header; a 64 px scene gets none", async () => {
    const res = await fetch(url("/v1/edits"), { method: "POST", body: baseForm({ instruction: "make the mug red", seed: "1", response_format: "json" }, { image: photo }) });
    expect(res.status).to.equal(200);
    const body = await res.json();
    expect(body.warnings).to.have.length(1);
    expect(body.warnings[0]).to.match(/trained only on 64 px synthetic scenes/).and.match(/600x400/);
    const img = await fetch(url("/v1/edits"), { method: "POST", body: baseForm({ instruction: "make the mug red", seed: "1" }, { image: photo }) });
    expect(JSON.parse(img.headers.get("x-reward-edit-warning")!)[0]).to.match(/Use a real model/);
    const scene = readFileSync(path.join(BUNDLED_MODEL, "examples", "box-on-tiles.png"));
    const ok = await (await fetch(url("/v1/edits"), { method: "POST", body: baseForm({ instruction: "make the box yellow", response_format: "json" }, { image: scene }) })).json();
    expect(ok.warnings).to.deep.equal([]);
  });

  it("the page shows the domain, edits a one-click example without a warning, and warns on a photo", async () => {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(s.url + "/");
    await page.waitForSelector("#model-info:not([hidden])");
    expect(await page.textContent("#model-name")).to.match(/reward-edit-synthetic.*64 px/);
    expect(await page.textContent("#model-domain")).to.match(/never seen a photograph/);
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>("#examples img")].every((i) => i.complete && i.naturalWidth === 64));
    await page.click("#examples button[data-example='examples/box-on-tiles.png']");
    expect(await page.inputValue("#instruction")).to.equal("make the box yellow");
    expect(await page.isHidden("#domain-warning")).to.equal(true);
    await page.click("#edit");
    await page.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
    expect(await page.textContent("#status")).to.match(/Done in/);
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: photo });
    expect(await page.isVisible("#domain-warning")).to.equal(true);
    expect(await page.textContent("#domain-warning")).to.match(/only on 64 px synthetic product scenes/).and.match(/Use a real model/);
    await page.screenshot({ path: path.join(ARTIFACTS, "page-domain.png"), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
