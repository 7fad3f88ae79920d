// How long a page takes to open in Debian's headless chromium, as a person
// at a 1280x800 window waits for it (tests/bench/web.sh). Opens URL RUNS
// times, each in a new tab, with the token as a bearer credential, and
// prints, as JSON, per opening: the navigation's response end, DOM content
// loaded, load end and first contentful paint (ms since the navigation
// started, the browser's own clock), and the timeline items on the page.
//
//   node open-time.mjs URL TOKEN [RUNS]
import { launch } from "./chromium.mjs";

const [url, token, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
const browser = await launch();
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    extraHTTPHeaders: { Authorization: `Bearer ${token}` },
  });
  const openings = [];
  for (let i = 0; i < runs; i++) {
    const page = await context.newPage();
    const response = await page.goto(url, { waitUntil: "load" });
    if (!response || response.status() !== 200) {
      throw new Error(`${url}: HTTP ${response ? response.status() : "no response"}`);
    }
    openings.push(await page.evaluate(async () => {
      const nav = performance.getEntriesByType("navigation")[0];
      // The paint entry comes with the first frame, which may follow load.
      const fcp = await new Promise((resolve) => {
        new PerformanceObserver((list, observer) => {
          const e = list.getEntriesByName("first-contentful-paint")[0];
          if (e) { observer.disconnect(); resolve(e.startTime); }
        }).observe({ type: "paint", buffered: true });
        setTimeout(() => resolve(null), 5000);
      });
      return {
        response_end_ms: nav.responseEnd,
        dom_content_loaded_ms: nav.domContentLoadedEventEnd,
        load_ms: nav.loadEventEnd,
        first_contentful_paint_ms: fcp,
        items: document.querySelectorAll("#timeline li.item").length,
      };
    }));
    await page.close();
  }
  process.stdout.write(JSON.stringify({ url, openings }) + "\n");
} finally {
  await browser.close();
}
