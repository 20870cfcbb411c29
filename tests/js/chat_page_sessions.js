// Drives the chat page of an Agent with memory in headless Chromium (playwright-core), as a
// person would: the conversation is a session the page names, tool calls that need approval
// are approved and denied with the page's buttons, and a reload brings the conversation back,
// a call still waiting for a decision included.
// Run by tests/tests/runtime_chat_page.rs with one JSON argument:
//   {"url", "chromium", "screenshot", "questions": [five strings], "reason", "timeoutMs"}
// Prints one JSON line of what it saw; the Rust suite asserts on it, on what reached the
// Bedrock imitation and the tool, and on the session in the store. Every wait is bounded.
"use strict";
const { chromium } = require("playwright-core");
const { send, endedAnswer } = require("./page_driver");

const spec = JSON.parse(process.argv[2]);
const T = spec.timeoutMs;
const q = spec.questions;
const seen = { console: [], pageErrors: [] };

// What the nth answer shows once it has ended.
async function answer(page, n) {
  const box = await endedAnswer(page, n);
  return {
    texts: await box.locator(".text").allTextContents(),
    tools: await box.locator("p.tool[data-status]").evaluateAll((rows) =>
      rows.map((r) => ({ name: r.dataset.name, status: r.dataset.status })),
    ),
    approvals: await box.locator(".approval").evaluateAll((rows) =>
      rows.map((r) => ({ name: r.dataset.name, id: r.dataset.toolUseId, input: r.querySelector("pre").textContent })),
    ),
    errors: await box.locator('.note.error[role="alert"]').allTextContents(),
    meta: await box.locator(".meta").allTextContents(),
  };
}

// What the page shows while a turn waits for decisions.
async function waitingView(page) {
  await page.locator(".approval .approve:enabled").last().waitFor();
  return {
    sendDisabled: await page.locator("#send").isDisabled(),
    focused: await page.evaluate(() => document.activeElement.className),
    status: await page.textContent("#status"),
  };
}

async function conversation(page) {
  return {
    user: await page.locator(".turn.user .text").allTextContents(),
    agent: await page.locator(".turn.assistant .text").allTextContents(),
    approvals: await page.locator(".approval").count(),
    status: await page.textContent("#status"),
  };
}

(async () => {
  const browser = await chromium.launch({ executablePath: spec.chromium, headless: true, timeout: 60000 });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
    page.setDefaultTimeout(T);
    page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
    await page.goto(spec.url, { timeout: T });
    seen.memory = await page.evaluate(() => document.body.dataset.memory);
    seen.kept = await page.textContent("#kept");
    seen.session = await page.evaluate(() => Object.entries(sessionStorage));

    // 1: the call waits; Approve runs it and the turn goes on in a new answer.
    await send(page, q[0]);
    seen.asked = await answer(page, 0);
    seen.waiting = await waitingView(page);
    await page.click(".approval .approve");
    seen.approved = await answer(page, 1);
    seen.afterApproval = { sendDisabled: await page.locator("#send").isDisabled(), status: await page.textContent("#status") };

    // 2: the call is denied with a reason the model reads.
    await send(page, q[1]);
    await answer(page, 2);
    await waitingView(page);
    await page.locator(".approval input").last().fill(spec.reason);
    await page.locator(".approval .deny").last().click();
    seen.denied = await answer(page, 3);
    seen.decisions = await page.locator(".approval .decided").allTextContents();
    await page.screenshot({ path: spec.screenshot, fullPage: true, timeout: T });

    // 3: a plain question on the session, then a reload brings the conversation back.
    await send(page, q[2]);
    await answer(page, 4);
    await page.reload({ timeout: T });
    await page.locator("#status", { hasText: "restored" }).waitFor();
    seen.restored = await conversation(page);

    // 4: a call that waits survives a reload and is approved from the restored page.
    await send(page, q[3]);
    await page.locator(".approval .approve:enabled").last().waitFor();
    await page.reload({ timeout: T });
    seen.waitingAfterReload = await waitingView(page);
    seen.restoredWaiting = await conversation(page);
    await page.locator(".approval .approve").last().click();
    const n = await page.locator(".turn.assistant").count();
    seen.approvedAfterReload = await answer(page, n - 1);

    // 5: a new conversation is a new session.
    const before = await page.evaluate(() => Object.values(sessionStorage));
    await page.click("#new");
    await send(page, q[4]);
    seen.fresh = await answer(page, 0);
    const after = await page.evaluate(() => Object.values(sessionStorage));
    seen.sessions = { before, after };
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
})().catch((e) => {
  console.log(JSON.stringify({ ...seen, failed: String((e && e.stack) || e) }));
  process.exit(1);
});
