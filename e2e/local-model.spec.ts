/**
 * A model from the user's own files, dropped on the model panel: the generated tiny Phi-3's
 * files are fetched into the page from the test's disk (a route, no Hub), put in a real
 * DataTransfer and dropped as a browser drops them. Checks that the drop is copied in, loads and
 * answers; that a drop elsewhere on the page is refused instead of opening the file in place of
 * the app; that another model of the same name is kept beside it; that stored local models can
 * be chosen again from the model menu without a new copy; and that files holding no model leave
 * the loaded one working.
 */
import { expect, test, type Page } from '@playwright/test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { answers } from './answers';
import { generateTinyChat } from './tiny-hub';

const DIR = path.resolve('.tmp', 'e2e-local-tiny');
/** The model's files by the name a flat drop gives them (`onnx/model_q4.onnx` drops as `model_q4.onnx`). */
const FILES: Record<string, string> = {};

test.beforeAll(() => {
  generateTinyChat(DIR);
  for (const sub of ['', 'onnx'])
    for (const name of readdirSync(path.join(DIR, sub))) if (statSync(path.join(DIR, sub, name)).isFile()) FILES[name] = path.join(DIR, sub, name);
});

// The app's service worker would answer the page's fetches of the files before the test's route.
test.use({ serviceWorkers: 'block' });

const status = (page: Page) => page.getByTestId('model-status');
const panel = (page: Page) => page.getByRole('region', { name: 'Model panel' });
const modelMenu = (page: Page) => panel(page).getByRole('combobox', { name: 'Model' });

/**
 * Drops `names` (files served from the test's disk under /__local__/, `overrides` replacing some
 * contents) on `selector`, as dragenter, dragover and drop events carrying one DataTransfer.
 * Returns whether the page refused the drop's default action (opening the file).
 */
async function drop(page: Page, selector: string, names: string[], overrides: Record<string, string> = {}): Promise<{ defaultPrevented: boolean; over: string | null }> {
  return page.evaluate(
    async ({ selector, names, overrides }) => {
      const dt = new DataTransfer();
      for (const name of names) {
        const body = name in overrides ? overrides[name] : await (await fetch(`/__local__/${name}`)).blob();
        dt.items.add(new File([body], name));
      }
      const target = document.querySelector(selector)!;
      const fire = (type: string) => {
        const e = new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true });
        target.dispatchEvent(e);
        return e;
      };
      fire('dragenter');
      fire('dragover');
      // The panel lights up while files are over it. React renders a dragover's update at its
      // continuous priority, which on a busy machine can land a frame or more later: wait up to 2 s.
      const panel = document.querySelector('.model-panel')!;
      for (const until = performance.now() + 2000; panel.getAttribute('data-drop') === null && performance.now() < until; ) {
        await new Promise((r) => requestAnimationFrame(r));
      }
      const over = panel.getAttribute('data-drop');
      return { defaultPrevented: fire('drop').defaultPrevented, over };
    },
    { selector, names, overrides },
  );
}

test('dropped model files are copied in, load and answer; same-named other files are kept beside them; the menu offers both', async ({ context, page }) => {
  await context.route('**/__local__/*', (route) => route.fulfill({ body: readFileSync(FILES[decodeURIComponent(new URL(route.request().url()).pathname.split('/').pop()!)]) }));
  await page.goto('./');
  await expect(status(page)).toHaveText('Not downloaded');
  const names = Object.keys(FILES);

  // A drop outside the panel is refused: the app stays, nothing is copied.
  const url = page.url();
  const elsewhere = await drop(page, '.chat-column', names);
  expect(elsewhere.defaultPrevented).toBe(true);
  expect(page.url()).toBe(url);
  await expect(status(page)).toHaveText('Not downloaded');

  // On the panel: copied in under the graph's name (said as a copy, not a download), loaded, and answering.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { seenStatuses: string[] }).seenStatuses = seen;
    const el = document.querySelector('[data-testid="model-status"]')!;
    new MutationObserver(() => seen.at(-1) !== el.textContent && seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
  });
  const first = await drop(page, '.model-panel', names);
  expect(first).toEqual({ defaultPrevented: true, over: 'over' });
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  const seen = await page.evaluate(() => (window as unknown as { seenStatuses: string[] }).seenStatuses);
  expect(seen).toContain('Copying the files into this browser…');
  expect(seen.filter((s) => /Download/.test(s))).toEqual([]);
  await expect(panel(page)).not.toHaveAttribute('data-drop');
  await expect(page.getByTestId('model-info')).toContainText('2 layers, hidden 128');
  await expect(page.getByTestId('cached-models')).toContainText('model_q4 (local files)');
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByRole('textbox', { name: 'Message' }).fill('Hello from a dropped model.');
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 90_000 });

  // Other files under the same name: the first copy stays, the new one is "model_q4 (2)".
  await drop(page, '.model-panel', names, { 'generation_config.json': '{"do_sample": false, "eos_token_id": [32000, 32001, 32007]}' });
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(modelMenu(page)).toHaveValue('local:model_q4 (2)');
  const stored = page.getByTestId('cached-models').getByRole('listitem');
  await expect(stored).toHaveText([/^model_q4 \(local files\): .* \(complete\)/, /^model_q4 \(2\) \(local files\): .* \(complete\)/]);

  // Both are in the menu; choosing the first loads it from the store, with no copy.
  const group = modelMenu(page).locator('optgroup[label="Stored on this device"] option');
  await expect(group).toHaveText(['model_q4 (local files)', 'model_q4 (2) (local files)']);
  await modelMenu(page).selectOption('local:model_q4');
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(page.getByRole('progressbar', { name: 'Download progress' })).toHaveCount(0);
  await expect(stored).toHaveCount(2);

  // Files that hold no model: the reason shows, and the loaded model stays chosen and ready.
  await drop(page, '.model-panel', ['README.md'], { 'README.md': '# notes' });
  await expect(page.getByTestId('model-error')).toContainText('The chosen files hold no model');
  await expect(status(page)).toHaveText('Ready');
  await expect(modelMenu(page)).toHaveValue('local:model_q4');
  await expect(stored).toHaveCount(2);
});
