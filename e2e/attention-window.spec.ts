/**
 * A model whose GroupQueryAttention has a window (local_window_size, as onnxruntime-genai's
 * builder writes Phi-3 Mini 4K's sliding_window of 2047 since April 2025): the tiny model here
 * lets each token attend to its last 16. The panel says so, the context stays the model's own
 * 4,096 tokens (it was capped at the window until 2026-12-06) while the cache grows only to the
 * window and a prefill chunk (a ring; docs/engine.md), and a chat far longer than the window is
 * answered. That the answer is onnxruntime's is checked in Node
 * (src/engine/phi3/model.node-gpu.test.ts, "attention window").
 */
import { expect, test } from '@playwright/test';
import { answers } from './answers';
import { setMaxNewTokens } from './settings';
import { downloadTinyChat, serveTinyChat } from './tiny-hub';

const hub = serveTinyChat('e2e-attention-window', { modelArgs: ['--layout', 'gqa', '--sliding-window', '16'] });

test('a model with a 16-token attention window keeps its whole context, answers a chat longer than its cache, and regenerates from the cache', async ({ page }) => {
  test.setTimeout(180_000);
  await downloadTinyChat(page, hub());
  await expect(page.getByTestId('attention-window')).toHaveText(', each token attending to the last 16');
  await expect(page.getByTestId('context-limit')).toHaveText('4096');
  // The cache stops at the window and a 512-token prefill chunk (528 rows of 1 KB, a ring), not
  // at the whole context's 4.2 MB (app.spec.ts, the same model without a window).
  await expect(page.getByTestId('gpu-memory')).toHaveText(/ 0\.5 MB for the context, growing with the chat up to 0\.5 MB$/);
  await page.getByRole('button', { name: 'New chat' }).click();
  await setMaxNewTokens(page, 24);

  // Longer than the cache's 528 rows: its second prefill chunk and the answer wrap the ring.
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(Array.from({ length: 300 }, (_, i) => `word${i % 9}`).join(' '));
  await composer.press('Enter');
  const stats = answers(page).last().getByTestId('message-stats');
  await expect(stats).toContainText(' + 24 new tokens', { timeout: 120_000 });
  const prompt = Number(/(\d+) prompt/.exec(await stats.innerText())?.[1]);
  expect(prompt).toBeGreaterThan(528);
  // Regenerate goes back 24 tokens, within the ring's slack: every prompt token but the last is
  // still cached (docs/engine.md).
  await answers(page).last().getByRole('button', { name: 'Regenerate' }).click();
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(`${prompt} prompt (${prompt - 1} cached) + 24 new tokens`, { timeout: 120_000 });
});
