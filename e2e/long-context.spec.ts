/**
 * Phi-3 128K's LongRoPE switch mid-answer, through the UI. The tiny model here switches to its
 * long rotary factors past 1,100 tokens (where the real one does past 4,096): a ~1,060-token
 * prompt is read with the short ones, and the answer crosses 1,100, where the whole chat is run
 * again with the long ones (docs/engine.md) in three prefill chunks of up to 512. The answer says
 * so while it pauses, then goes on; its stats count the prompt as read once.
 */
import { expect, test } from '@playwright/test';
import { answers } from './answers';
import { setMaxNewTokens } from './settings';
import { downloadTinyChat, serveTinyChat } from './tiny-hub';

const hub = serveTinyChat('e2e-long-context', {
  modelArgs: ['--layout', 'gqa-packed', '--context', '128k', '--max-positions', '2048', '--original-max-positions', '1100'],
});

test('an answer that takes the chat past the LongRoPE switch says it reads the whole chat again, then goes on', async ({ page }) => {
  test.setTimeout(240_000);
  await downloadTinyChat(page, hub());
  await page.getByRole('button', { name: 'New chat' }).click();
  await setMaxNewTokens(page, 80);

  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(Array.from({ length: 370 }, (_, i) => `word${i % 50}`).join(' '));
  await composer.press('Enter');
  const again = answers(page).last().getByTestId('reading-again');
  await expect(again).toHaveText(/^Reading the whole chat again for the long context: 512 of 1,101 tokens…$/, { timeout: 120_000 });
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(' + 80 new tokens', { timeout: 120_000 });
  await expect(again).toHaveCount(0);
  const stats = await answers(page).last().getByTestId('message-stats').innerText();
  const prompt = Number(/(\d+) prompt/.exec(stats)?.[1]);
  expect(prompt).toBeGreaterThan(1020);
  expect(prompt).toBeLessThan(1100);
});
