// What both chat page scripts do to the page: type a message as a person would, and wait for
// an answer to end.
"use strict";

// Types `text` into the focused message box (Shift+Enter between its lines) and sends it with
// Enter.
async function send(page, text) {
  const [first, ...rest] = text.split("\n");
  await page.keyboard.type(first);
  for (const line of rest) {
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type(line);
  }
  await page.keyboard.press("Enter");
}

// The nth answer's element once the answer has ended (its closing line or an error note).
async function endedAnswer(page, n) {
  const box = page.locator(".turn.assistant").nth(n);
  await box.locator(".meta, .note.error").first().waitFor();
  return box;
}

module.exports = { send, endedAnswer };
