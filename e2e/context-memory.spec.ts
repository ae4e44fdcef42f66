/**
 * A context cache that runs out of GPU memory, through the UI. The tiny model here has 64 KV
 * heads of 32 and 262,144 positions, so its whole context (f16 cache, 2 bytes an element) is a
 * 1 GiB K buffer per layer, which
 * SwiftShader refuses (it allocates 1023 MiB): a prompt of about 136,000 tokens grows the cache
 * to 131,072 positions and fails there (Phi3Runtime.fitCapacity). The answer says so, the model
 * panel and the context meter show the lower limit, the message is kept, and the chat goes on.
 */
import { expect, test } from '@playwright/test';
import { answers } from './answers';
import { setMaxNewTokens } from './settings';
import { downloadTinyChat, serveTinyChat } from './tiny-hub';

const hub = serveTinyChat('e2e-context-memory', {
  modelArgs: ['--layout', 'gqa', '--dtype', 'q4f16', '--layers', '1', '--hidden', '2048', '--heads', '64', '--kv-heads', '64', '--intermediate', '64', '--max-positions', '262144'],
});

test('a prompt that outgrows the GPU memory for the context: the answer says so, the panel and meter show the lower context, and the chat goes on', async ({ page }) => {
  test.setTimeout(240_000);
  await downloadTinyChat(page, hub());
  await expect(page.getByTestId('context-limit')).toHaveText('262144');
  await expect(page.getByTestId('context-lowered')).toHaveCount(0);

  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog,', 'and', 'then', 'some.'];
  const text = Array.from({ length: 100_000 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' ');
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(text);
  await composer.press('Enter');
  await expect(answers(page).last().getByRole('alert')).toContainText('The GPU ran out of memory growing the context cache', { timeout: 180_000 });
  await expect(answers(page).last().getByRole('alert')).toContainText('the context on this GPU is now 131072 tokens');
  await expect(page.getByTestId('context-limit')).toHaveText('131072');
  await expect(page.getByTestId('context-lowered')).toContainText('down from 262144: the GPU ran out of memory');
  await expect(page.getByTestId('context-meter-text')).toHaveText(/ \/ 131072 tokens$/);
  // K and V of one layer at f16, 8 KiB per position: 1 GiB held, which is also the most now.
  await expect(page.getByTestId('gpu-memory')).toContainText('1.07 GB for the context');
  await expect(page.getByTestId('gpu-memory')).not.toContainText('growing with the chat');
  // Nothing the user wrote is lost.
  await expect(page.getByTestId('message-user')).toHaveCount(1);
  expect((await page.getByTestId('message-user').innerText()).length).toBeGreaterThan(100_000);

  // A new chat answers within the lower context.
  await page.getByRole('button', { name: 'New chat' }).click();
  // A short answer: a few hundred tokens take a minute here on SwiftShader.
  await setMaxNewTokens(page, 8);
  await composer.fill('Name three GPU vendors.');
  await composer.press('Enter');
  await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 120_000 });
  await expect(answers(page).last().getByRole('alert')).toHaveCount(0);
  await expect(page.getByTestId('context-meter-text')).toHaveText(/^\d+ \/ 131072 tokens$/);
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(' + 8 new tokens');
});
