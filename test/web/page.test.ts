import { expect } from "chai";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, ROOT, TINY } from "../helpers.js";
import { ARTIFACTS, launchChromium } from "../support/browser.js";

const PRESETS = JSON.parse(readFileSync(path.join(ROOT, "src", "presets", "presets.json"), "utf8")) as Record<string, { description: string; rewards: number[]; steps?: number }>;

describe("the slider page in headless Chromium", function () {
  this.timeout(90_000);
  let s: RunningServer;
  let browser: Browser;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, {});
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  it("presets move the sliders; an edit shows progress, the before/after view, scores and a download link", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(s.url + "/");
    await page.waitForSelector(".presets button[data-preset=bold]");
    // the values come from the presets file the server serves
    for (const name of ["bold", "draft"]) {
      await page.click(`.presets button[data-preset=${name}]`);
      const preset = PRESETS[name];
      expect([await page.inputValue("#following"), await page.inputValue("#preserving"), await page.inputValue("#quality")]).to.deep.equal(preset.rewards.map(String));
      expect(await page.inputValue("#steps")).to.equal(preset.steps === undefined ? "" : String(preset.steps));
      expect(await page.textContent("#preset-description")).to.equal(preset.description);
    }
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: readFileSync(path.join(PHOTOS, "coffee.png")) });
    await page.fill("#instruction", "make the mug red");
    await page.click("#edit");
    await page.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
    expect(await page.getAttribute("#after", "src")).to.match(/^data:image\/png;base64,/);
    expect(await page.getAttribute("#before", "src")).to.match(/^blob:/);
    expect(await page.$eval("#progress", (p) => (p as HTMLProgressElement).value)).to.equal(100);
    expect(await page.textContent("#status")).to.match(/Done in/);
    const rows = await page.$$eval("#scores tbody tr", (trs) => trs.map((tr) => tr.textContent));
    expect(rows).to.have.length(3);
    expect(rows[0]).to.match(/not judged/);
    expect(await page.getAttribute("#download", "href")).to.match(/^data:image\/png/);
    await page.fill("#split", "80");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "page.png"), fullPage: true });
    expect(problems).to.deep.equal([]);
  });

  it("refine rounds: every round is listed with what it changed, the chosen one marked", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(s.url + "/");
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: readFileSync(path.join(PHOTOS, "coffee.png")) });
    await page.fill("#instruction", "make the mug red");
    await page.click("#advanced summary");
    await page.fill("#steps", "2");
    await page.fill("#seed", "11");
    await page.fill("#refine", "2");
    const result = page.waitForResponse((r) => r.url().includes("/result?format=json"), { timeout: 60_000 }).then((r) => r.json());
    await page.click("#edit");
    await page.waitForSelector("#rounds:not([hidden])", { timeout: 60_000 });
    const served = (await result) as { refine: { chosen_round: number; rounds: Array<{ round: number; changes: string[]; met: boolean }> } };
    const items = await page.$$eval("#round-list li", (lis) => lis.map((li) => ({ text: li.textContent ?? "", chosen: li.classList.contains("chosen") })));
    // the page lists exactly the rounds the server returned, each with what it changed, the chosen one marked
    expect(items).to.have.length(served.refine.rounds.length);
    for (const [i, r] of served.refine.rounds.entries()) {
      expect(items[i].text).to.match(new RegExp(`^Round ${r.round}`));
      expect(items[i].text).to.contain(r.met ? "met the levels" : "fell short");
      for (const c of r.changes) expect(items[i].text).to.contain(c.split(" (")[0]);
      expect(items[i].chosen).to.equal(r.round === served.refine.chosen_round);
    }
    // seeded: the tiny random model changes the whole photo, so the local scorer finds preservation
    // short and a second round raises image guidance with a new seed
    expect(served.refine.rounds.map((r) => r.changes.map((c) => c.split(" (")[0]))).to.deep.equal([[], ["seed 11 -> 7930", "image guidance 1.5 -> 1.95"]]);
    await page.screenshot({ path: path.join(ARTIFACTS, "page-refine.png"), fullPage: true });
  });
  it("the fast preset sets the sampler and sends its fast-path fields with the edit; the result reports them", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    // Chromium does not hand a multipart body with a file to the page's request events: read what the server applied
    const applied = () =>
      page.waitForResponse((r) => r.url().includes("/result?format=json"), { timeout: 60_000 }).then(async (r) => (await r.json()).parameters as Record<string, unknown>);
    await page.goto(s.url + "/");
    await page.waitForSelector(".presets button[data-preset=fast]");
    await page.click(".presets button[data-preset=fast]");
    expect(await page.inputValue("#scheduler")).to.equal("dpmpp-2m");
    expect(await page.inputValue("#steps")).to.equal("8");
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: readFileSync(path.join(PHOTOS, "coffee.png")) });
    await page.fill("#instruction", "make the mug red");
    const first = applied();
    await page.click("#edit");
    const p1 = await first;
    expect(p1).to.include({ scheduler: "dpmpp-2m", cacheInterval: 2, imageGuidance: 1, steps: 8 });
    expect(p1.guidanceInterval).to.deep.equal([1, 15]);
    await page.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
    // choosing another sampler by hand (under "More settings") wins over the preset's
    await page.click("#advanced summary");
    await page.selectOption("#scheduler", "unipc");
    const second = applied();
    await page.click("#edit");
    expect(await second).to.include({ scheduler: "unipc", cacheInterval: 2 });
  });

  it("a mask painted over the photo confines the edit: outside the strokes the photo comes back exactly", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
    const result = () =>
      page.waitForResponse((r) => r.url().includes("/result?format=json"), { timeout: 60_000 }).then(async (r) => (await r.json()) as { image: string; parameters: Record<string, unknown> });
    await page.goto(s.url + "/");
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: photo });
    await page.fill("#instruction", "make the mug red");
    await page.click("#mask-box summary");
    await page.waitForFunction(() => (document.getElementById("mask-canvas") as HTMLCanvasElement).width > 1);
    expect(await page.textContent("#mask-state")).to.match(/No mask/);
    // one stroke across the left part of the photo
    const box = (await page.locator("#mask-canvas").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.1, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.up();
    expect(await page.textContent("#mask-state")).to.match(/painted area may change/);
    await page.selectOption("#mask-mode", "paste");
    await page.click("#advanced summary");
    await page.fill("#steps", "3");
    const done = result();
    await page.click("#edit");
    const r = await done;
    expect(r.parameters.maskMode).to.equal("paste");
    // the right third was never painted: its pixels are the photo's own
    const sharp = (await import("sharp")).default;
    const meta = await sharp(photo).metadata();
    const W = meta.width!;
    const out = await sharp(Buffer.from(r.image, "base64")).removeAlpha().raw().toBuffer();
    const src = await sharp(photo).removeAlpha().raw().toBuffer();
    let differ = 0;
    let painted = 0;
    for (let i = 0; i < src.length / 3; i++) {
      const x = i % W;
      const same = out[i * 3] === src[i * 3] && out[i * 3 + 1] === src[i * 3 + 1] && out[i * 3 + 2] === src[i * 3 + 2];
      if (x > W * 0.7 && !same) differ++;
      if (x > W * 0.15 && x < W * 0.25 && !same) painted++;
    }
    expect(differ).to.equal(0);
    expect(painted).to.be.greaterThan(0);
    // an uploaded all-black mask is refused with the server's own words
    const black = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#000" } }).png().toBuffer();
    await page.setInputFiles("#mask-file", { name: "black.png", mimeType: "image/png", buffer: black });
    expect(await page.textContent("#mask-state")).to.match(/black\.png/);
    await page.click("#edit");
    await page.waitForFunction(() => /Edit failed/.test(document.getElementById("status")!.textContent ?? ""), undefined, { timeout: 30_000 });
    expect(await page.textContent("#status")).to.match(/mask is all black/);
    await page.screenshot({ path: path.join(ARTIFACTS, "page-mask.png"), fullPage: true });
  });

  it("an upload the server refuses: the page shows the server's own message as an error and can edit again", async () => {
    const page = await browser.newPage();
    await page.goto(s.url + "/");
    // not an image at all: refused in the page before anything is sent
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
    expect(await page.textContent("#status")).to.equal("Please choose an image file.");
    expect(await page.getAttribute("#status", "class")).to.contain("error");
    // claims to be a PNG but is not one: the server refuses it, and says why
    const broken = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(" this is not really a PNG")]);
    const direct = new FormData();
    direct.append("image", new Blob([new Uint8Array(broken)], { type: "image/png" }), "broken.png");
    direct.append("instruction", "make the mug red");
    const refused = await fetch(`${s.url}/v1/jobs`, { method: "POST", body: direct });
    expect(refused.status).to.be.within(400, 499);
    const { error } = await refused.json();
    expect(error.field).to.equal("image");
    await page.setInputFiles("#file", { name: "broken.png", mimeType: "image/png", buffer: broken });
    await page.fill("#instruction", "make the mug red");
    await page.click("#edit");
    await page.waitForSelector("#status.error");
    expect(await page.textContent("#status")).to.equal(`Edit failed: ${error.message}`);
    expect(await page.isEnabled("#edit")).to.equal(true);
    await page.close();
  });

  it("the detail checkbox: unchecked, the edit comes back resized instead of composed (no pixels kept exactly)", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const result = () => page.waitForResponse((r) => r.url().includes("/result?format=json"), { timeout: 60_000 }).then((r) => r.json());
    await page.goto(s.url + "/");
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: readFileSync(path.join(PHOTOS, "coffee.png")) });
    await page.fill("#instruction", "make the mug red");
    await page.click("#advanced summary");
    await page.fill("#steps", "2");
    expect(await page.isChecked("#detail")).to.equal(true);
    let done = result();
    await page.click("#edit");
    expect(((await done) as { detail: { mode: string } }).detail.mode).to.equal("keep");
    await page.waitForSelector("#result:not([hidden])");
    await page.uncheck("#detail");
    done = result();
    await page.click("#edit");
    const off = (await done) as { detail: { mode: string; kept_fraction: number | null } };
    expect(off.detail).to.deep.include({ mode: "off", kept_fraction: null });
    await page.waitForFunction(() => /Done in/.test(document.getElementById("status")!.textContent ?? ""));
    expect(await page.textContent("#status")).to.not.match(/kept exactly/);
  });
});
