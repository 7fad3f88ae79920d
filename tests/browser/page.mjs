// Opens a page in Debian's headless chromium (through playwright-core) and
// prints, as JSON, what a reader of it sees: the headings, the text of the
// elements the caller names, the collapsed sections, and every request the
// page made besides its own file. Optionally expands every <details> and
// takes a full-page screenshot.
//
//   node page.mjs FILE [--screenshot PNG] [--selector CSS]...
import { launch } from "./chromium.mjs";
import path from "node:path";

const args = process.argv.slice(2);
const file = path.resolve(args[0]);
let screenshot = null;
const selectors = [];
for (let i = 1; i < args.length; i += 2) {
  if (args[i] === "--screenshot") screenshot = args[i + 1];
  else if (args[i] === "--selector") selectors.push(args[i + 1]);
  else throw new Error(`unknown argument ${args[i]}`);
}

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const self = "file://" + file;
  const requests = [];
  page.on("request", (r) => { if (r.url() !== self) requests.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(self, { waitUntil: "load" });
  const seen = await page.evaluate((sels) => {
    const text = (e) => (e ? e.innerText : null);
    return {
      title: document.title,
      headings: [...document.querySelectorAll("h1,h2,h3")].map((h) => h.innerText),
      sections: [...document.querySelectorAll("section")].map((s) => s.id),
      details: [...document.querySelectorAll("details")].map((d) => ({
        open: d.open, summary: text(d.querySelector("summary")),
        visible_height: d.querySelector("pre") ? d.querySelector("pre").offsetHeight : 0,
      })),
      scripts: document.querySelectorAll("script").length,
      selected: Object.fromEntries(sels.map((s) => [s, [...document.querySelectorAll(s)].map(text)])),
      body: document.body.innerText,
    };
  }, selectors);
  // Expanded, every collapsed output is there in full.
  await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  seen.expanded_body = await page.evaluate(() => document.body.innerText);
  if (screenshot) {
    await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = false)));
    await page.screenshot({ path: screenshot, fullPage: false });
  }
  seen.requests = requests;
  seen.errors = errors;
  process.stdout.write(JSON.stringify(seen) + "\n");
} finally {
  await browser.close();
}
