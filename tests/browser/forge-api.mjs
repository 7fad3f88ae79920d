// Drives the local forge's HTTP API (docs/api.md) with GitHub's own client,
// @octokit/rest, as a new user would: an issue labelled and commented on, a
// pull request opened with head "OWNER:BRANCH", its files, a review with
// comments by position, a pending review then submitted, statuses and the
// combined status, a squash merge with a commit title, and the 422s of
// what the forge refuses. Every response body, errors too, is checked
// against the schema GitHub publishes for the operation and status
// (api.github.com's OpenAPI description in @octokit/openapi), $refs
// resolved. Prints, as JSON, what it saw; the test
// (tests/integration/forge_api_e2e_test.cc) asserts on it.
//
//   node forge-api.mjs   (settings in the environment: KILN_API (the API's
//                         base URL), KILN_TOKEN (a maintainer's),
//                         KILN_TOKEN2 (another user's), KILN_REPO
//                         (OWNER/NAME, with branches "feature" and "other"
//                         ahead of "main"))
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Octokit } from "@octokit/rest";

const env = process.env;
const [owner, repo] = env.KILN_REPO.split("/");
const spec = JSON.parse(readFileSync(
  createRequire(import.meta.url).resolve("@octokit/openapi/generated/api.github.com.json"), "utf8"));

// --- a validator for the part of OpenAPI 3.0 GitHub's description uses ------

const schemas = spec.components.schemas;
function deref(s) {
  const seen = new Set();
  while (s && s.$ref) {
    if (seen.has(s.$ref)) throw new Error(`circular $ref ${s.$ref}`);
    seen.add(s.$ref);
    s = s.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], spec);
  }
  return s;
}
const typeOf = (v) => v === null ? "null" : Array.isArray(v) ? "array"
  : Number.isInteger(v) ? "integer" : typeof v;
const formats = {
  "date-time": (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) &&
    !Number.isNaN(Date.parse(v)),
  "uri": (v) => { try { return /^[a-z][a-z0-9+.-]*:/i.test(v) && Boolean(new URL(v)); } catch { return false; } },
  "email": (v) => /^[^@\s]+@[^@\s]+$/.test(v),
};

// The problems of value against schema, each "where: what" ([] when none).
function check(schema, value, where = "$") {
  const s = deref(schema);
  if (!s || Object.keys(s).length === 0) return [];
  if (value === null) {
    if (s.nullable || s.type === "null") return [];
    if (s.oneOf || s.anyOf || s.allOf) {
      // null fits a combination only through a member that allows it
    } else if (s.type || s.properties || s.enum) {
      return [`${where}: null where ${s.type || "a value"} is required`];
    }
  }
  if (s.allOf) {
    const problems = s.allOf.flatMap((sub) => check(sub, value, where));
    if (problems.length) return problems;
  }
  if (s.oneOf) {
    const fits = s.oneOf.map((sub) => check(sub, value, where));
    const n = fits.filter((p) => p.length === 0).length;
    if (n !== 1) {
      return [`${where}: fits ${n} of oneOf's ${s.oneOf.length} schemas` +
              (n === 0 ? ` (${fits.map((p) => p[0]).join(" | ")})` : "")];
    }
  }
  if (s.anyOf) {
    const fits = s.anyOf.map((sub) => check(sub, value, where));
    if (!fits.some((p) => p.length === 0)) return [`${where}: fits none of anyOf (${fits.map((p) => p[0]).join(" | ")})`];
  }
  if (value === null) return [];
  const problems = [];
  const t = typeOf(value);
  if (s.type) {
    const ok = s.type === t || (s.type === "number" && t === "integer");
    if (!ok) return [`${where}: ${t} where ${s.type} is required`];
  }
  if (s.enum && !s.enum.includes(value)) problems.push(`${where}: ${JSON.stringify(value)} is not one of ${s.enum.join(", ")}`);
  if (t === "string" && s.format && formats[s.format] && !formats[s.format](value)) {
    problems.push(`${where}: ${JSON.stringify(value)} is not a ${s.format}`);
  }
  if (t === "object") {
    for (const r of s.required || []) {
      if (!(r in value)) problems.push(`${where}: required field ${r} is missing`);
    }
    for (const [k, v] of Object.entries(value)) {
      if (s.properties && k in s.properties) {
        problems.push(...check(s.properties[k], v, `${where}.${k}`));
      } else if (s.additionalProperties === false) {
        problems.push(`${where}: field ${k} is not allowed`);
      } else if (s.additionalProperties && typeof s.additionalProperties === "object") {
        problems.push(...check(s.additionalProperties, v, `${where}.${k}`));
      }
    }
  }
  if (t === "array" && s.items) value.forEach((v, i) => problems.push(...check(s.items, v, `${where}[${i}]`)));
  return problems;
}

// A validator that finds nothing wrong proves nothing: it must see these.
{
  const problems = [
    check(schemas.issue, {}),
    check(schemas.issue, { ...JSON.parse("{}"), id: "1" }),
    check(schemas["simple-user"], { login: "a", id: 1.5 }),
    check(schemas["label"], { id: 1, node_id: "x", url: "/relative", name: "a", description: null, color: "fff", default: true }),
    check(schemas["pull-request-simple"], { state: null }),
  ];
  if (problems.some((p) => p.length === 0)) {
    console.log(JSON.stringify({ failures: ["the schema check accepts what it must refuse"] }));
    process.exit(1);
  }
}

// --- the client, every response checked ------------------------------------

const seen = { validated: 0, operations: {}, failures: [], steps: {} };
const fail = (what) => seen.failures.push(what);

// The operation's path template of a request: its url, or, for the
// absolute URLs octokit.paginate follows (Link headers), the template whose
// literal segments the path matches.
function template(url) {
  if (!/^https?:/.test(url)) return url;
  const path = new URL(url).pathname.slice(new URL(env.KILN_API).pathname.length);
  const segments = path.split("/");
  return Object.keys(spec.paths).find((t) => {
    const parts = t.split("/");
    return parts.length === segments.length &&
      parts.every((p, i) => p.startsWith("{") || p === decodeURIComponent(segments[i]));
  }) || path;
}

function validate(options, status, data) {
  const url = template(options.url);
  const op = spec.paths[url]?.[options.method.toLowerCase()];
  const name = `${options.method} ${url} ${status}`;
  if (!op) return fail(`${name}: not an operation of GitHub's API`);
  const documented = op.responses[String(status)];
  if (!documented) {
    // GitHub documents its errors sparsely: an undocumented error must
    // still be one of its error objects.
    if (status >= 400) {
      const problems = check(schemas["basic-error"], data);
      if (typeof data?.message !== "string") problems.push("$: no message");
      if (problems.length) fail(`${name}: ${problems.join("; ")}`);
      seen.validated++;
      seen.operations[`${op.operationId} ${status}`] = "basic-error";
      return;
    }
    return fail(`${name}: status ${status} is not one GitHub documents for ${op.operationId}`);
  }
  const content = deref(documented).content?.["application/json"];
  if (!content) {
    if (data !== undefined && data !== "" && data !== null) fail(`${name}: a body where GitHub sends none`);
  } else {
    const problems = check(content.schema, data);
    if (problems.length) fail(`${name}: ${problems.slice(0, 8).join("; ")}`);
  }
  seen.validated++;
  seen.operations[`${op.operationId} ${status}`] = true;
}

function client(token) {
  const o = new Octokit({ baseUrl: env.KILN_API, auth: token, log: { debug() {}, info() {}, warn() {}, error() {} } });
  o.hook.wrap("request", async (request, options) => {
    const diff = (options.mediaType?.format || "") !== "";
    try {
      const response = await request(options);
      if (!diff) validate(options, response.status, response.data);
      return response;
    } catch (e) {
      if (e.status && !diff) validate(options, e.status, e.response?.data);
      throw e;
    }
  });
  return o;
}
const alice = client(env.KILN_TOKEN);  // a maintainer
const bob = client(env.KILN_TOKEN2);   // not one
const at = { owner, repo };

// The error an awaited call must end in.
async function refused(call) {
  try {
    await call;
  } catch (e) {
    return { status: e.status, data: e.response?.data };
  }
  fail("a call that must fail succeeded");
  return { status: 0, data: null };
}

async function step(name, fn) {
  try {
    seen.steps[name] = await fn();
  } catch (e) {
    fail(`${name}: ${e.status || ""} ${e.message}`);
  }
}

// --- the session -------------------------------------------------------------

await step("user", async () => {
  const { data } = await alice.rest.users.getAuthenticated();
  return { login: data.login, id: data.id, type: data.type, html_url: data.html_url };
});
await step("repo", async () => {
  const { data } = await alice.rest.repos.get(at);
  return { id: data.id, html_url: data.html_url, default_branch: data.default_branch };
});

let issue;
await step("issue", async () => {
  ({ data: issue } = await alice.rest.issues.create({ ...at, title: "Crash on start", body: "It crashes.", labels: ["bug"] }));
  const { data: labels } = await alice.rest.issues.addLabels({ ...at, issue_number: issue.number, labels: ["triaged", "area:core"] });
  const { data: listed } = await alice.rest.issues.listLabelsOnIssue({ ...at, issue_number: issue.number });
  const { data: comment } = await bob.rest.issues.createComment({ ...at, issue_number: issue.number, body: "Same here." });
  const { data: edited } = await bob.rest.issues.updateComment({ ...at, comment_id: comment.id, body: "Same here, on 1.2." });
  const { data: got } = await alice.rest.issues.getComment({ ...at, comment_id: comment.id });
  const { data: comments } = await alice.rest.issues.listComments({ ...at, issue_number: issue.number });
  const { data: relabelled } = await alice.rest.issues.update({ ...at, issue_number: issue.number, labels: ["bug", "triaged"] });
  await alice.rest.issues.removeLabel({ ...at, issue_number: issue.number, name: "triaged" });
  const { data: now } = await alice.rest.issues.get({ ...at, issue_number: issue.number });
  return {
    number: issue.number, html_url: issue.html_url, id: issue.id, user_type: issue.user.type,
    labels: labels.map((l) => l.name), listed: listed.map((l) => [l.name, l.color]),
    comment_html_url: comment.html_url, edited: edited.body, got: got.body,
    // kiln serve's pipeline may have said something on the issue too.
    bobs_comments: comments.filter((c) => c.user.login === "bob").map((c) => c.body),
    relabelled: relabelled.labels.map((l) => l.name), labels_now: now.labels.map((l) => l.name),
    comment_count: now.comments,
  };
});

await step("refusals", async () => {
  const assignees = await refused(alice.rest.issues.update({ ...at, issue_number: issue.number, assignees: ["bob"] }));
  const unknown = await refused(alice.request("POST /repos/{owner}/{repo}/issues", { ...at, title: "x", colour: "red" }));
  const query = await refused(alice.request("GET /repos/{owner}/{repo}/issues", { ...at, mentioned: "bob" }));
  const label = await refused(alice.rest.issues.addLabels({ ...at, issue_number: issue.number, labels: ["wontfix"] }));
  const forbidden = await refused(bob.rest.issues.addLabels({ ...at, issue_number: issue.number, labels: ["bug"] }));
  const missing = await refused(alice.rest.issues.get({ ...at, issue_number: 999 }));
  return {
    assignees: [assignees.status, assignees.data?.errors?.[0]?.field, assignees.data?.errors?.[0]?.message],
    unknown: [unknown.status, unknown.data?.errors?.[0]?.field],
    query: [query.status, query.data?.errors?.[0]?.field],
    label: [label.status, label.data?.message],
    forbidden: forbidden.status, missing: missing.status,
  };
});

await step("paging", async () => {
  await alice.rest.issues.create({ ...at, title: "Second" });
  await alice.rest.issues.create({ ...at, title: "Third" });
  const { data: first, headers } = await alice.rest.issues.listForRepo({ ...at, state: "all", per_page: 1 });
  const all = await alice.paginate(alice.rest.issues.listForRepo, { ...at, state: "all", per_page: 2 });
  return { first: first.length, link: Boolean(headers.link), all: all.map((i) => i.number) };
});

let pull;
await step("pull", async () => {
  ({ data: pull } = await bob.rest.pulls.create({ ...at, title: "Handle a missing config", head: `${owner}:feature`,
                                                  base: "main", body: `Fixes #${issue.number}` }));
  const { data: got } = await alice.rest.pulls.get({ ...at, pull_number: pull.number });
  const { data: listed } = await alice.rest.pulls.list({ ...at, head: `${owner}:feature` });
  const { data: files } = await alice.rest.pulls.listFiles({ ...at, pull_number: pull.number });
  const { data: diff } = await alice.rest.pulls.get({ ...at, pull_number: pull.number, mediaType: { format: "diff" } });
  const { data: updated } = await bob.rest.pulls.update({ ...at, pull_number: pull.number, body: `Fixes #${issue.number}\n\nAnd more.` });
  return {
    number: pull.number, html_url: pull.html_url, head: [pull.head.ref, pull.head.label, pull.head.repo.full_name],
    state: got.state, merged: got.merged, mergeable: got.mergeable, commits: got.commits,
    changed_files: got.changed_files, listed: listed.length,
    files: files.map((f) => [f.filename, f.status, f.additions, f.deletions]),
    diff: typeof diff === "string" && diff.startsWith("diff --git"), updated: updated.body,
  };
});

await step("reviews", async () => {
  const pull_number = pull.number;
  // Position 1 of the first file's diff: the line below its first "@@".
  const { data: files } = await alice.rest.pulls.listFiles({ ...at, pull_number });
  const path = files[0].filename;
  const { data: commented } = await alice.rest.pulls.createReview({
    ...at, pull_number, event: "COMMENT", body: "A few notes.",
    comments: [{ path, position: 1, body: "Why this line?" }],
  });
  const { data: pending } = await alice.rest.pulls.createReview({
    ...at, pull_number, comments: [{ path, line: commented.comments[0].line, side: "RIGHT", body: "Pending note." }],
  });
  const hidden = await bob.rest.pulls.listReviews({ ...at, pull_number });
  const { data: submitted } = await alice.rest.pulls.submitReview({
    ...at, pull_number, review_id: pending.id, event: "APPROVE", body: "Looks right.",
  });
  const { data: another } = await alice.rest.pulls.createReview({ ...at, pull_number, body: "draft" });
  const { data: deleted } = await alice.rest.pulls.deletePendingReview({ ...at, pull_number, review_id: another.id });
  const { data: reviews } = await alice.rest.pulls.listReviews({ ...at, pull_number });
  const { data: one } = await alice.rest.pulls.getReview({ ...at, pull_number, review_id: submitted.id });
  const { data: comments } = await alice.rest.pulls.listReviewComments({ ...at, pull_number });
  const { data: single } = await alice.rest.pulls.getReviewComment({ ...at, comment_id: comments[0].id });
  const { data: ofReview } = await alice.rest.pulls.listCommentsForReview({ ...at, pull_number, review_id: commented.id });
  const own = await refused(bob.rest.pulls.createReview({ ...at, pull_number, event: "APPROVE" }));
  return {
    commented: [commented.state, commented.comments[0].side], pending: pending.state,
    hidden_from_others: hidden.data.length, submitted: submitted.state, deleted: deleted.state,
    reviews: reviews.map((r) => r.state), one: one.id === submitted.id,
    comments: comments.map((c) => [c.position, c.html_url.includes("#discussion_r")]),
    single: single.body, of_review: ofReview.length, own: [own.status, own.data?.message],
  };
});

await step("statuses", async () => {
  const { data: got } = await alice.rest.pulls.get({ ...at, pull_number: pull.number });
  const sha = got.head.sha;
  await alice.rest.repos.createCommitStatus({ ...at, sha, state: "pending", context: "kiln/verify" });
  const { data: status } = await alice.rest.repos.createCommitStatus({
    ...at, sha, state: "success", context: "kiln/verify", description: "12 tests passed", target_url: "https://ci.example/7",
  });
  await alice.rest.repos.createCommitStatus({ ...at, sha, state: "success", context: "lint" });
  const { data: list } = await alice.rest.repos.listCommitStatusesForRef({ ...at, ref: sha });
  const { data: combined } = await alice.rest.repos.getCombinedStatusForRef({ ...at, ref: "feature" });
  return { creator: status.creator.login, list: list.length, combined: [combined.state, combined.total_count, combined.sha === sha] };
});

await step("merge", async () => {
  const pull_number = pull.number;
  const stale = await refused(alice.rest.pulls.merge({ ...at, pull_number, sha: "0".repeat(40) }));
  const notMine = await refused(bob.rest.pulls.merge({ ...at, pull_number }));
  const { data: got } = await alice.rest.pulls.get({ ...at, pull_number });
  const { data: merged } = await alice.rest.pulls.merge({
    ...at, pull_number, merge_method: "squash", commit_title: "Handle a missing config (#" + pull_number + ")",
    commit_message: "Squashed.", sha: got.head.sha,
  });
  const check = await alice.rest.pulls.checkIfMerged({ ...at, pull_number });
  const { data: after } = await alice.rest.pulls.get({ ...at, pull_number });
  const { data: fixed } = await alice.rest.issues.get({ ...at, issue_number: issue.number });
  // A second pull request, merged with a merge commit.
  const { data: other } = await alice.rest.pulls.create({ ...at, title: "Other", head: "other", base: "main" });
  const { data: merge2 } = await alice.rest.pulls.merge({ ...at, pull_number: other.number, merge_method: "merge" });
  const again = await refused(alice.rest.pulls.merge({ ...at, pull_number: other.number }));
  return {
    stale: stale.status, not_maintainer: notMine.status, merged: merged.merged, sha: merged.sha,
    check: check.status, state: after.state, is_merged: after.merged, merged_by: after.merged_by?.login,
    merge_commit_sha: after.merge_commit_sha === merged.sha, issue_state: fixed.state,
    merge2: merge2.merged, again: again.status,
  };
});

await step("cleanup", async () => {
  const r = await alice.rest.issues.removeAllLabels({ ...at, issue_number: issue.number });
  return { status: r.status };
});

console.log(JSON.stringify(seen, null, 2));
