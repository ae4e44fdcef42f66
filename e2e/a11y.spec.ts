/**
 * Accessibility audit: axe-core (the engine behind Lighthouse's and Chrome DevTools' checks) over
 * the real app in its main states — first visit, a model ready and an answer shown (light and
 * dark), the settings dialog, an inline confirmation, and a phone's drawers. Any violation of
 * WCAG 2.x A/AA rules fails the test with the rule, the element and the fix axe suggests. Also
 * what a screen reader is told of an answer (ChatView's `useAnswerAnnouncement`).
 */
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { serveTinyChat, TINY_MODEL } from './tiny-hub';

const hub = serveTinyChat('e2e-a11y-tiny');

const appUrl = () => `./?hub=${encodeURIComponent(hub().url)}&model=${encodeURIComponent(TINY_MODEL)}`;

/**
 * The WCAG 2.x A/AA violations axe finds on the page once its transitions have ended, one line
 * each. Colours are read as they are painted, so an audit run during a transition (a theme just
 * switched: buttons fade their background over 120 ms) would judge a colour halfway between two
 * themes; finite animations and transitions are awaited first, endless ones (a spinner) are not.
 */
async function violations(page: Page): Promise<string[]> {
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
        .map((a) => a.finished.catch(() => undefined)),
    ),
  );
  const { violations: found } = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']).analyze();
  return found.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')} — ${n.failureSummary?.replace(/\s+/g, ' ')}`));
}

test('desktop, light and dark: first visit, a ready model with an answer, settings, a confirmation', async ({ page }) => {
  await page.goto(appUrl());
  await expect(page.getByTestId('adapter-name')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('model-status')).toHaveText('Not downloaded');
  expect(await violations(page)).toEqual([]);

  await page.getByRole('button', { name: /Download/ }).click();
  await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout: 90_000 });
  await page.getByRole('textbox', { name: 'Message' }).fill('Hello');
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await expect(page.getByTestId('message-assistant').last().getByTestId('message-stats')).toBeVisible({ timeout: 90_000 });
  // Screen readers hear the answer once, as shown (code blocks without their bars), from a polite
  // region; the log is not live, so opening a chat or showing earlier messages reads nothing out.
  await expect(page.getByRole('log', { name: 'Messages' })).toHaveAttribute('aria-live', 'off');
  const shown = await page
    .getByTestId('message-assistant')
    .last()
    .locator('.answer-text')
    .evaluate((el) => {
      const copy = el.cloneNode(true) as HTMLElement;
      copy.querySelectorAll('.code-bar').forEach((bar) => bar.remove());
      return (copy.textContent ?? '').replace(/\s+/g, ' ').trim();
    });
  expect(shown.length).toBeGreaterThan(0);
  const announced = (await page.getByTestId('answer-announcement').textContent()) ?? '';
  expect(announced.startsWith(`Phi-3: ${shown}`), announced).toBe(true);
  expect(announced.slice(`Phi-3: ${shown}`.length)).toMatch(/^(| \((stopped|it hit the max new tokens|the context is full)\))$/);
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    expect(await violations(page), colorScheme).toEqual([]);
  }

  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByRole('dialog')).toBeVisible();
  expect(await violations(page)).toEqual([]);
  await page.keyboard.press('Escape');

  await page.getByRole('button', { name: /^Delete test-org/ }).click();
  await expect(page.getByRole('group', { name: /^Delete/ })).toBeVisible();
  expect(await violations(page)).toEqual([]);
});

test.describe('phone', () => {
  test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

  test('a phone: the page, the conversations drawer and the model drawer', async ({ page }) => {
    await page.goto(appUrl());
    await expect(page.getByTestId('model-status')).toHaveText('Not downloaded', { timeout: 30_000 });
    expect(await violations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Conversations', exact: true }).click();
    expect(await violations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Conversations', exact: true }).click();
    await page.getByRole('button', { name: 'Model', exact: true }).click();
    expect(await violations(page)).toEqual([]);
  });
});

test('control: the audit sees a violation that is there (an unlabelled field, text too faint to read)', async ({ page }) => {
  await page.goto(appUrl());
  await expect(page.getByTestId('model-status')).toHaveText('Not downloaded', { timeout: 30_000 });
  await page.evaluate(() => {
    const planted = document.createElement('div');
    planted.innerHTML = '<input type="text" id="planted-input"><p id="planted-text" style="color:#ddd;background:#fff">faint</p>';
    document.querySelector('.messages, .chat')?.append(planted);
  });
  const found = await violations(page);
  expect(found.some((v) => v.startsWith('label') && v.includes('#planted-input'))).toBe(true);
  expect(found.some((v) => v.startsWith('color-contrast') && v.includes('#planted-text'))).toBe(true);
});
