import { expect, test } from '@playwright/test';

test('the app opens and finds WebGPU with a named adapter', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  await expect(page.getByTestId('webgpu-status')).toHaveText('WebGPU is available', { timeout: 30_000 });
  const adapter = await page.getByTestId('adapter-name').textContent();
  expect(adapter?.trim().length).toBeGreaterThan(0);
  console.log(`adapter: ${adapter}; features: ${await page.getByTestId('adapter-features').textContent()}`);
});
