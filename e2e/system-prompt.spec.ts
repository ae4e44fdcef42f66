/**
 * A model whose chat template has no system role (Phi-3 Mini's files as first published, spring
 * 2024; copies made before the June 2024 update keep it): the system prompt must still reach the
 * model. The generated tiny
 * Phi-3 is served with that template; the settings dialog says where the system prompt goes, and
 * the prompt of the same question grows by the system prompt's tokens once one is set (with the
 * template alone it would be dropped and the count would not change).
 */
import { expect, test, type Page } from '@playwright/test';
import { PHI3_CHAT_TEMPLATE_NO_SYSTEM } from '../tools/tiny-model/tokenizer-files';
import { answers, lastAnswerPrompt } from './answers';
import { downloadTinyChat, serveTinyChat } from './tiny-hub';

const hub = serveTinyChat('e2e-system-prompt-tiny', { chatTemplate: PHI3_CHAT_TEMPLATE_NO_SYSTEM });


async function saveSettings(page: Page, systemPrompt: string) {
  await page.getByRole('button', { name: 'Settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' });
  await expect(dialog.getByText("This model's chat template has no system role, so the system prompt is put at the start of your first message.")).toBeVisible();
  await dialog.getByLabel('System prompt').fill(systemPrompt);
  await dialog.getByLabel('Max new tokens').fill('4');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden();
}

const promptTokens = async (page: Page) => {
  const stats = answers(page).last().getByTestId('message-stats');
  await expect(stats).toBeVisible({ timeout: 60_000 });
  return (await lastAnswerPrompt(page)).prompt;
};

test('a template without a system role still gets the system prompt, before the first message', async ({ page }) => {
  await downloadTinyChat(page, hub(), 90_000);

  await page.locator('button.new-chat').click();
  await saveSettings(page, '');
  await page.getByRole('textbox', { name: 'Message' }).fill('Hello');
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  const without = await promptTokens(page);

  await saveSettings(page, 'Answer every question in French, in one short sentence, and never mention llamas.');
  await answers(page).last().getByRole('button', { name: 'Regenerate' }).click();
  await expect(page.getByRole('group', { name: 'Answer versions' })).toContainText('2 / 2', { timeout: 60_000 });
  const withSystem = await promptTokens(page);
  expect(withSystem).toBeGreaterThan(without + 10);
});
