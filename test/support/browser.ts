/** Debian's Chromium for the page tests, and where they leave screenshots. */
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "../helpers.js";

/** The flags keep it off the (closed) network. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export const ARTIFACTS = path.join(ROOT, "test-artifacts");
