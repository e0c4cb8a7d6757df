import { expect } from "chai";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { ARTIFACTS, launchChromium } from "../support/browser.js";



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
    await page.click(".presets button[data-preset=bold]");
    expect(await page.inputValue("#following")).to.equal("5");
    expect(await page.inputValue("#preserving")).to.equal("2");
    expect(await page.inputValue("#quality")).to.equal("4");
    expect(await page.textContent("#preset-description")).to.match(/Following first/);
    await page.click(".presets button[data-preset=draft]");
    expect(await page.inputValue("#preserving")).to.equal("5");
    expect(await page.inputValue("#steps")).to.equal("8");
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
    await page.click("details summary");
    await page.fill("#steps", "2");
    await page.fill("#refine", "2");
    await page.click("#edit");
    await page.waitForSelector("#rounds:not([hidden])", { timeout: 60_000 });
    const items = await page.$$eval("#round-list li", (lis) => lis.map((li) => ({ text: li.textContent, chosen: li.classList.contains("chosen") })));
    // the local scorer cannot judge following on a photo: the round is met or not on preservation and quality
    expect(items.length).to.be.within(1, 2);
    expect(items[0].text).to.match(/^Round 1/);
    expect(items.filter((i) => i.chosen)).to.have.length(1);
    if (items.length === 2) expect(items[1].text).to.match(/Changed: seed/);
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
    await page.click("details summary");
    await page.selectOption("#scheduler", "unipc");
    const second = applied();
    await page.click("#edit");
    expect(await second).to.include({ scheduler: "unipc", cacheInterval: 2 });
  });
});
