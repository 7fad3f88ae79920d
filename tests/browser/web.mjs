// Drives kiln's web view in Debian's headless chromium (playwright-core) the
// way a person would, and prints, as JSON, what they would have seen. The
// test (tests/integration/web_e2e_test.cc) asserts on it.
//
//   node web.mjs   (settings in the environment: KILN_URL, KILN_USER,
//                   KILN_TOKEN, KILN, KILN_CONFIG, KILN_REPO, SHOTS)
import { launch } from "./chromium.mjs";
import { execFileSync } from "node:child_process";

const env = process.env;
const base = env.KILN_URL;
const seen = { steps: [], dialogs: [], errors: [] };
const step = (name, data) => seen.steps.push({ name, ...data });

function kiln(...args) {
  return execFileSync(env.KILN, [...args, "--config", env.KILN_CONFIG], { encoding: "utf8" }).trim();
}
function submit(task) {
  return kiln("runs", "submit", "--repo", env.KILN_REPO, "--commit", "main", "--role", "edit",
              "--task", task).split("\n")[0];
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const watch = (page, label) => {
    page.on("dialog", (d) => { seen.dialogs.push({ label, message: d.message() }); d.dismiss(); });
    page.on("pageerror", (e) => seen.errors.push({ label, error: String(e) }));
    page.on("console", (m) => { if (m.type() === "error") seen.errors.push({ label, console: m.text() }); });
    page.on("request", (r) => { if (!r.url().startsWith(base)) seen.errors.push({ label, external: r.url() }); });
  };
  const dash = await context.newPage();
  watch(dash, "dashboard");

  // Not signed in: the page sends you to sign in; the API says 401.
  await dash.goto(base + "/");
  const api = await context.request.get(base + "/api/v1/runs");
  step("anonymous", { url: dash.url(), api_status: api.status() });

  await dash.fill("input[name=user]", env.KILN_USER);
  await dash.fill("input[name=token]", env.KILN_TOKEN);
  await Promise.all([dash.waitForURL(base + "/"), dash.click("button[type=submit]")]);
  await dash.evaluate(() => { window.kilnMarker = "not reloaded"; });
  step("signed_in", { url: dash.url(), rows: await dash.locator("#runs tbody tr").count() });

  // A run queued now appears on the open dashboard, runs and finishes there.
  const live = submit("TASK-LIVE: fix <script>alert('task')</script> <img src=x onerror=alert('img')> " +
                      "[click](javascript:alert('link'))");
  const row = dash.locator(`#run-${live}`);
  await row.waitFor({ timeout: 20000 });
  const statuses = [await row.getAttribute("data-status")];
  await dash.locator(`#run-${live}[data-status=running]`).waitFor({ timeout: 30000 });
  statuses.push("running");

  // Its page, opened while it runs: the timeline grows without a reload.
  const run = await context.newPage();
  watch(run, "run");
  await run.goto(`${base}/runs/${live}`);
  await run.evaluate(() => { window.kilnMarker = "not reloaded"; });
  await run.locator("#timeline li").first().waitFor({ timeout: 20000 });
  const before = await run.locator("#timeline li").count();
  await run.waitForFunction((n) => document.querySelectorAll("#timeline li").length > n, before,
                            { timeout: 20000 });
  const after = await run.locator("#timeline li").count();
  step("timeline_grew", { before, after, marker: await run.evaluate(() => window.kilnMarker),
                          budgets: await run.locator("#budgets .budget").count() });

  // Steering from the page.
  await run.fill("input[name=message]", "please also update the docs (sent from the page)");
  await Promise.all([run.waitForURL(`${base}/runs/${live}`), run.click("form.steer button")]);
  step("steered", { url: run.url() });

  await dash.locator(`#run-${live}:not([data-status=running]):not([data-status=queued])`)
    .waitFor({ timeout: 60000 });
  statuses.push(await row.getAttribute("data-status"));
  step("dashboard_live", { statuses, marker: await dash.evaluate(() => window.kilnMarker),
                           stats: await dash.locator("#stats").innerText() });
  await run.locator("#status .badge.succeeded").waitFor({ timeout: 20000 });
  step("ended", { actions: await run.locator("#actions").count() });

  // Hostile text shows as text: no dialog, no element made of it.
  await run.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
  const text = await run.evaluate(() => document.body.innerText);
  step("hostile_text", {
    script_text: text.includes("<script>alert(1)</script>"),
    task_text: text.includes("<img src=x onerror=alert('img')>"),
    reply_text: text.includes("<img src=x onerror=alert(3)>"),
    link_text: text.includes("javascript:alert('link')"),
    scripts: await run.evaluate(() => [...document.scripts].map((s) => s.src)),
    images: await run.locator("img").count(),
    javascript_links: await run.locator("a[href^='javascript']").count(),
    outcome: await run.locator("#outcome").innerText(),
  });
  if (env.SHOTS) {
    await run.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = false)));
    await dash.screenshot({ path: `${env.SHOTS}/web-dashboard.png` });
    await run.screenshot({ path: `${env.SHOTS}/web-run.png` });
  }

  // A phone-width window: nothing wider than the screen.
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${base}/runs/${live}`);
  step("phone", { overflow: await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) });
  if (env.SHOTS) await phone.screenshot({ path: `${env.SHOTS}/web-run-phone.png` });
  await phone.close();

  // Cancel from the page.
  const doomed = submit("TASK-CANCEL: sleep");
  await run.goto(`${base}/runs/${doomed}`);
  await run.locator("#status .badge.running").waitFor({ timeout: 30000 });
  await Promise.all([run.waitForURL(`${base}/runs/${doomed}`), run.click("button.danger")]);
  await run.locator("#status .badge.cancelled").waitFor({ timeout: 30000 });
  step("cancelled", { status: await run.locator("#status").innerText() });

  // The local forge in the browser: bob's hostile issue and comment render
  // as text; alice comments, approves and merges bob's pull request.
  await run.goto(`${base}/acme/widget/issues/1`);
  const issueText = await run.evaluate(() => document.body.innerText);
  await run.fill("textarea[name=body]", "Looks right to me (from the page)");
  await Promise.all([run.waitForURL(`${base}/acme/widget/issues/1`), run.click("form.comment-form button")]);
  step("forge_issue", {
    title_text: (await run.locator("h1").innerText()).includes("<script>alert('title')</script>"),
    body_text: issueText.includes("<img src=x onerror=alert('body')>"),
    comment_text: issueText.includes("[x](javascript:alert('comment'))"),
    images: await run.locator("img").count(),
    javascript_links: await run.locator("a[href^='javascript']").count(),
    commented: (await run.locator(".comment").last().innerText()).includes("Looks right to me"),
  });
  await run.goto(`${base}/acme/widget/pull/2`);
  if (env.SHOTS) await run.screenshot({ path: `${env.SHOTS}/web-pull.png` });
  const diffShown = (await run.locator("pre.diff").innerText()).includes("+hello from bob");
  // The inline review comment, and the diff line just before it.
  const inline = await run.locator("pre.diff .inline").first().evaluate((el) => ({
    text: el.innerText.trim(),
    after: el.previousElementSibling ? el.previousElementSibling.innerText.trim() : null,
  }));
  await Promise.all([run.waitForURL(`${base}/acme/widget/pull/2`), run.click("form[action$='/approve'] button")]);
  const reviewed = (await run.locator("section.review h2").allInnerTexts()).join(" | ");
  await Promise.all([run.waitForURL(`${base}/acme/widget/pull/2`), run.click("form.merge button")]);
  step("forge_pull", {
    diff: diffShown, reviewed, inline_text: inline.text, inline_after: inline.after,
    state: await run.locator("h1 + p .badge").innerText(),
  });

  // A POST without the CSRF token, with the session cookie: refused.
  const forged = await context.request.post(`${base}/runs/${live}/steer`, {
    form: { message: "forged" }, maxRedirects: 0 });
  step("csrf", { status: forged.status() });

  // A share link, in a browser that never signed in.
  const link = kiln("runs", "share", live, "--expires", "1d");
  const stranger = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const shared = await stranger.newPage();
  watch(shared, "share");
  const reply = await shared.goto(link);
  const steerPost = await stranger.request.post(link + "/steer", { form: { message: "x" }, maxRedirects: 0 });
  const cancelPost = await stranger.request.post(link + "/cancel", { form: {}, maxRedirects: 0 });
  const direct = await stranger.request.get(`${base}/runs/${live}`, { maxRedirects: 0 });
  step("share", {
    status: reply.status(),
    shows_run: (await shared.locator("h1").innerText()).includes(live),
    steer_forms: await shared.locator("form.steer").count(),
    cancel_buttons: await shared.locator("button.danger").count(),
    timeline: await shared.locator("#timeline li").count(),
    steer_post: steerPost.status(),
    cancel_post: cancelPost.status(),
    run_page_without_session: direct.status(),
  });
  await stranger.close();
} catch (e) {
  seen.failure = String(e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
