/** The open conversation's settings dialog, for the specs that need short (or long) answers. */
import { expect, type Page } from '@playwright/test';

/** Sets the open conversation's max new tokens through the settings dialog and waits for it to close. */
export async function setMaxNewTokens(page: Page, n: number): Promise<void> {
  await page.getByRole('button', { name: 'Settings' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Max new tokens').fill(String(n));
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden();
}
