// kiln's web view in the browser: live updates over server-sent events, and
// the run timeline's earlier pages. Every fragment it puts in the page was
// rendered, with every value escaped, by the server; this script only puts
// each where its id says.
"use strict";

function place(id, html, container, atTop) {
  const old = id ? document.getElementById(id) : null;
  if (old) {
    old.outerHTML = html;
  } else if (container) {
    container.insertAdjacentHTML(atTop ? "afterbegin" : "beforeend", html);
  }
}

function listen(url, handlers) {
  const source = new EventSource(url);
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handle(JSON.parse(e.data)));
  }
  source.addEventListener("open", () => document.body.classList.remove("offline"));
  source.addEventListener("error", () => document.body.classList.add("offline"));
  return source;
}

document.addEventListener("DOMContentLoaded", () => {
  const runs = document.getElementById("runs");
  if (runs) {
    const rows = runs.tBodies[0];
    listen(runs.dataset.events, {
      run: (d) => place(d.id, d.html, rows, true),
      stats: (d) => place(d.id, d.html, null),
    });
  }
  const timeline = document.getElementById("timeline");
  if (timeline) {
    const section = (name) => (d) => place(name, d.html, null);
    listen(timeline.dataset.events, {
      item: (d) => place(d.id, d.html, timeline, false),
      status: (d) => {
        place("status", d.html, null);
        // A run that has ended takes no steering and cannot be cancelled.
        if (document.getElementById("status").dataset.ended) document.getElementById("actions")?.remove();
      },
      budgets: section("budgets"),
      outcome: section("outcome"),
    });
  }
  for (const button of document.querySelectorAll("button.earlier")) {
    button.addEventListener("click", async () => {
      const reply = await fetch(button.dataset.timeline + "?before=" + button.dataset.before);
      if (!reply.ok) return;
      const earlier = reply.headers.get("X-Kiln-Earlier");
      timeline.insertAdjacentHTML("afterbegin", await reply.text());
      if (earlier === "0") button.remove();
      else button.dataset.before = earlier;
    });
  }
});
