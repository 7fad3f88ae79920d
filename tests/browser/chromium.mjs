// Debian's chromium, headless, as every page script here launches it
// (playwright-core drives it; no browser is downloaded). KILN_CHROMIUM
// names another binary.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.KILN_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
