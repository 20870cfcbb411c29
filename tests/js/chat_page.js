// Drives the runtime's chat page in headless Chromium (Playwright's playwright-core), as a
// person would: types into the message box, sends with Enter, waits for what the page shows.
// Run by tests/tests/runtime_chat_page.rs with one JSON argument:
//   {"url", "chromium", "screenshot", "questions": [six strings], "timeoutMs"}
// Prints one JSON line of what it saw; the Rust suite asserts on it and on what reached the
// Bedrock imitation. Every wait is bounded by timeoutMs.
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
    tools: await box.locator(".tool").evaluateAll((rows) =>
      rows.map((r) => ({ name: r.dataset.name, status: r.dataset.status, text: r.textContent })),
    ),
    notes: await box.locator(".note").allTextContents(),
    errors: await box.locator('.note.error[role="alert"]').allTextContents(),
    meta: await box.locator(".meta").allTextContents(),
  };
}

(async () => {
  // Chromium's own start has been seen to take over 15 s on a busy 2-core machine.
  const browser = await chromium.launch({ executablePath: spec.chromium, headless: true, timeout: 60000 });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
    page.setDefaultTimeout(T);
    page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
    const res = await page.goto(spec.url, { timeout: T });
    seen.status = res.status();
    seen.title = await page.title();
    seen.agent = await page.textContent("#agent");
    seen.focused = await page.evaluate(() => document.activeElement.id);
    seen.label = await page.locator("#input").evaluate((i) => i.labels[0].textContent);

    // 1: a slow tool call; while it runs the narration has streamed in and the answer has not.
    await send(page, q[0]);
    const running = page.locator(".tool.running");
    await running.waitFor();
    seen.whileRunning = {
      tool: await running.textContent(),
      texts: await page.locator(".turn.assistant .text").allTextContents(),
    };
    seen.turns = [await answer(page, 0)];
    // 2: a follow-up, with a newline typed as Shift+Enter.
    await send(page, q[1]);
    seen.turns.push(await answer(page, 1));
    // 3: the model call fails (a stream `error` event).
    await send(page, q[2]);
    seen.turns.push(await answer(page, 2));
    // 4: the model stops on max_tokens.
    await send(page, q[3]);
    seen.turns.push(await answer(page, 3));
    // 5: an HTTP error: the Agent's one concurrency slot is held by another client.
    const blocker = await fetch(new URL("v1/invoke", spec.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ input: "hold the only slot" }),
      signal: AbortSignal.timeout(T),
    });
    seen.blockerStatus = blocker.status;
    await send(page, q[4]);
    seen.turns.push(await answer(page, 4));
    seen.blockerEnded = (await blocker.text()).includes("event: done");
    // The conversation scrolls inside the page: a tall window shows all of it.
    await page.setViewportSize({ width: 900, height: 1800 });
    await page.screenshot({ path: spec.screenshot, fullPage: true, timeout: T });

    // 6: a new conversation starts from nothing.
    await page.click("#new");
    seen.turnsAfterNew = await page.locator(".turn").count();
    seen.focusedAfterNew = await page.evaluate(() => document.activeElement.id);
    await send(page, q[5]);
    seen.fresh = await answer(page, 0);
    seen.status_line = await page.textContent("#status");
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(seen));
})().catch((e) => {
  console.log(JSON.stringify({ ...seen, failed: String((e && e.stack) || e) }));
  process.exit(1);
});
