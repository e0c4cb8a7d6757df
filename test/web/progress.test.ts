import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { launchChromium } from "../support/browser.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

describe("the page follows an edit live: progress, preview, Cancel (issue 31)", function () {
  this.timeout(90_000);
  let s: RunningServer;
  let browser: Browser;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, maxSteps: 1000 }, {});
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  const start = async (steps: string): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(s.url + "/");
    await page.setInputFiles("#file", { name: "coffee.png", mimeType: "image/png", buffer: photo });
    await page.fill("#instruction", "make the mug red");
    await page.click("#advanced summary");
    await page.fill("#steps", steps);
    // what the page showed, recorded in the page as it changes (no timing involved)
    await page.evaluate(() => {
      const w = window as unknown as { seen: { progress: number[]; previewBeforeResult: boolean; status: string[] } };
      w.seen = { progress: [], previewBeforeResult: false, status: [] };
      const bar = document.getElementById("progress") as HTMLProgressElement;
      const preview = document.getElementById("live-preview") as HTMLImageElement;
      const after = document.getElementById("after") as HTMLImageElement;
      new MutationObserver(() => {
        if (preview.src.startsWith("data:image/png") && !after.src) w.seen.previewBeforeResult = true;
        w.seen.status.push(document.getElementById("status")!.textContent ?? "");
        w.seen.progress.push(bar.value);
      }).observe(document.body, { subtree: true, attributes: true, childList: true, characterData: true });
    });
    return page;
  };
  const seen = (page: Page) => page.evaluate(() => (window as unknown as { seen: { progress: number[]; previewBeforeResult: boolean; status: string[] } }).seen);

  it("the progress bar moves with step and ETA, and a preview shows over the photo before the result", async () => {
    const page = await start("200");
    await page.click("#edit");
    await page.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
    const w = await seen(page);
    const moving = w.progress.filter((v) => v > 0 && v < 100);
    expect(moving.length, "intermediate progress values").to.be.greaterThan(0);
    expect(w.status.some((t) => /step \d+ of 200, about [\d.]+ s left/.test(t)), w.status.slice(0, 5).join(" | ")).to.equal(true);
    expect(w.previewBeforeResult).to.equal(true);
    expect(await page.textContent("#status")).to.match(/Done in/);
    expect(await page.isHidden("#cancel")).to.equal(true);
    await page.close();
  });

  it("Cancel stops the job: the server reports it cancelled and the page says so", async () => {
    const page = await start("1000");
    const submitted = page.waitForResponse((r) => r.url().endsWith("/v1/jobs") && r.request().method() === "POST");
    await page.click("#edit");
    const id = ((await (await submitted).json()) as { id: string }).id;
    await page.waitForFunction(() => /step \d+ of/.test(document.getElementById("status")!.textContent ?? ""), undefined, { timeout: 30_000 });
    await page.click("#cancel");
    await page.waitForFunction(() => document.getElementById("status")!.textContent === "Cancelled.", undefined, { timeout: 30_000 });
    const job = (await (await fetch(`${s.url}/v1/jobs/${id}`)).json()) as { state: string; step: number; steps: number };
    expect(job.state).to.equal("cancelled");
    expect(job.step).to.be.lessThan(job.steps);
    expect(await page.isHidden("#result")).to.equal(true);
    await page.close();
  });
});
