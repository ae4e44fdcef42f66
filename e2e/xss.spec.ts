/**
 * XSS: 36 payloads, typed as user text, imported as assistant Markdown, titles, errors and
 * system prompts, used as a conversation name and as a search, must never run. Every payload
 * calls `__xssHit(n)` (and `alert` is routed there too); the page must end with no hits, no
 * dialog, no `javascript:`/`data:`/`vbscript:` URL in any href/src/action, no inline event
 * handler attribute and no script/iframe/object/embed/img/style element inside the app (the app's
 * own forms are allowed; their `action` is checked with the other URLs).
 */
import { expect, test, type Page } from '@playwright/test';

const PAYLOADS: string[] = [
  '<script>__xssHit(1)</script>',
  '<img src=x onerror=__xssHit(2)>',
  '<svg onload=__xssHit(3)>',
  '<iframe src="javascript:__xssHit(4)"></iframe>',
  '[click](javascript:__xssHit(5))',
  '[click](JaVaScRiPt:__xssHit(6))',
  '[click](java&#x09;script:__xssHit(7))',
  '<javascript:__xssHit(8)>',
  '[click](data:text/html;base64,PHNjcmlwdD5fX3hzc0hpdCg5KTwvc2NyaXB0Pg==)',
  '![x](javascript:__xssHit(10))',
  '![x](x" onerror="__xssHit(11))',
  '<a href="javascript:__xssHit(12)">a</a>',
  '<details open ontoggle=__xssHit(13)>',
  '<body onload=__xssHit(14)>',
  '<input autofocus onfocus=__xssHit(15)>',
  '<video><source onerror=__xssHit(16)></video>',
  '<math><mtext><table><mglyph><style><img src=x onerror=__xssHit(17)>',
  '"><img src=x onerror=__xssHit(18)>',
  '<object data="javascript:__xssHit(19)"></object>',
  '<embed src="javascript:__xssHit(20)">',
  '<form action="javascript:__xssHit(21)"><button>go</button></form>',
  "<style>@import 'javascript:__xssHit(22)';</style>",
  '<marquee onstart=__xssHit(23)>x</marquee>',
  '[a](vbscript:__xssHit(24))',
  '```html\n<script>__xssHit(25)</script>\n```',
  '`<img src=x onerror=__xssHit(26)>`',
  '| a |\n|---|\n| <img src=x onerror=__xssHit(27)> |',
  '[ref]\n\n[ref]: javascript:__xssHit(28)',
  '<a href="&#106;avascript:__xssHit(29)">x</a>',
  '[x](&#106;avascript:__xssHit(30))',
  '<meta http-equiv="refresh" content="0;url=javascript:__xssHit(31)">',
  '<base href="javascript:__xssHit(32)//">',
  "{{constructor.constructor('__xssHit(33)')()}}",
  '<svg><animate onbegin=__xssHit(34) attributeName=x dur=1s>',
  '[x](javascript&colon;__xssHit(35))',
  '<img src=x onerror="alert(36)">',
];

async function arm(page: Page): Promise<string[]> {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __xssHits: unknown[]; __xssHit: (n: unknown) => void; alert: (m?: unknown) => void };
    w.__xssHits = [];
    w.__xssHit = (n) => w.__xssHits.push(n);
    w.alert = (m) => w.__xssHit(`alert:${String(m)}`);
  });
  return dialogs;
}

/** Brings every message of the open chat into view (a long chat opens on its newest 40). */
async function showAllMessages(page: Page) {
  const earlier = page.getByRole('button', { name: /earlier messages/ });
  while (await earlier.count()) await earlier.click();
}

async function expectNothingRan(page: Page, dialogs: string[]) {
  // Give async handlers (onerror, onload, animations, refresh) time to fire.
  await page.waitForTimeout(1500);
  expect(await page.evaluate(() => (window as unknown as { __xssHits: unknown[] }).__xssHits)).toEqual([]);
  expect(dialogs).toEqual([]);
  const report = await page.evaluate(() => {
    const root = document.getElementById('root')!;
    const badUrl: string[] = [];
    const handlers: string[] = [];
    for (const el of root.querySelectorAll('*')) {
      for (const attr of el.attributes) {
        if (/^on/i.test(attr.name)) handlers.push(`${el.tagName}[${attr.name}]`);
        if (['href', 'src', 'action', 'data', 'formaction', 'xlink:href'].includes(attr.name)) {
          // eslint-disable-next-line no-control-regex -- browsers ignore these inside a scheme
          const v = attr.value.replace(/[\u0000-\u0020]/g, '').toLowerCase();
          if (/^(javascript|data|vbscript):/.test(v)) badUrl.push(`${el.tagName}[${attr.name}=${attr.value}]`);
        }
      }
    }
    return {
      badUrl,
      handlers,
      dangerous: [...root.querySelectorAll('script, iframe, object, embed, meta, base, style, img, video, svg:not([aria-hidden="true"])')].map((e) => e.tagName),
      url: location.href,
    };
  });
  expect(report.badUrl).toEqual([]);
  expect(report.handlers).toEqual([]);
  expect(report.dangerous).toEqual([]);
  expect(report.url).toMatch(/^http:\/\/localhost:\d+\//);
}

test('payloads typed as user text never run', async ({ page }) => {
  const dialogs = await arm(page);
  await page.goto('./');
  await page.getByRole('button', { name: 'New chat' }).click();
  const box = page.getByRole('textbox', { name: 'Message' });
  for (const p of PAYLOADS) {
    await box.fill(p);
    await box.press('Enter');
    // No model is loaded: each answer ends with that error. Waiting for it under this question
    // (not only for the Send button, which shows for a moment before the answer starts) keeps the
    // next Enter from landing while this answer still runs, when it would be ignored.
    await page.waitForFunction(
      (text) => {
        const [question, answer] = [...document.querySelectorAll('.messages article.message')].slice(-2);
        return question?.querySelector('.user-text')?.textContent === text && answer?.classList.contains('assistant') && answer.querySelector('[role="alert"]') !== null;
      },
      p,
      { timeout: 10_000 },
    );
    await expect(page.getByRole('button', { name: 'Send' })).toBeVisible();
  }
  await showAllMessages(page);
  const shown = page.getByTestId('message-user').locator('.user-text');
  await expect(shown).toHaveCount(PAYLOADS.length);
  // User text is shown exactly as typed.
  await expect(shown.nth(1)).toHaveText(PAYLOADS[1]);
  await expect(shown.nth(24)).toHaveText(PAYLOADS[24]);
  await expectNothingRan(page, dialogs);

  // As a conversation name and as a search.
  await page.getByRole('button', { name: /^Rename / }).first().click();
  await page.getByRole('textbox', { name: /^New title for/ }).fill(PAYLOADS[1]);
  await page.getByRole('textbox', { name: /^New title for/ }).press('Enter');
  await expect(page.getByRole('button', { name: PAYLOADS[1], exact: true })).toBeVisible();
  await page.getByRole('searchbox', { name: 'Search conversations' }).fill(PAYLOADS[2]);
  await expectNothingRan(page, dialogs);
  await page.reload();
  await expectNothingRan(page, dialogs);
});

test('payloads in an imported conversation (assistant Markdown, titles, errors, system prompt) never run', async ({ page }) => {
  const dialogs = await arm(page);
  await page.goto('./');
  const settings = { systemPrompt: PAYLOADS[0], temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, maxNewTokens: 512, seed: 42 };
  const messages: Record<string, unknown>[] = [];
  let parent: string | null = null;
  PAYLOADS.forEach((p, i) => {
    messages.push({ id: `u${i}`, parentId: parent, role: 'user', content: p, createdAt: i });
    messages.push({ id: `a${i}`, parentId: `u${i}`, role: 'assistant', content: `Answer ${i}:\n\n${p}\n\nand inline ${p}`, createdAt: i, error: p });
    parent = `a${i}`;
  });
  const chain = { id: 'chain', title: 'All payloads', createdAt: 1, updatedAt: 100, settings, messages, activeChild: {} };
  const titled = PAYLOADS.map((p, i) => ({ id: `t${i}`, title: p.slice(0, 200), createdAt: 1, updatedAt: 1 + i, settings, messages: [], activeChild: {} }));
  const file = { format: 'phi3-webgpu-chat/conversations', version: 1, exportedAt: 1, conversations: [chain, ...titled] };
  await page.getByTestId('import-file').setInputFiles({ name: 'xss.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(file)) });
  await expect(page.getByTestId('import-result')).toHaveText(`Imported ${PAYLOADS.length + 1} conversations.`);
  await page.getByRole('button', { name: 'All payloads', exact: true }).click();
  await expect(page.getByTestId('message-assistant').first()).toBeVisible();
  await showAllMessages(page);
  await expect(page.getByTestId('message-assistant')).toHaveCount(PAYLOADS.length);
  // Markdown has loaded (a highlighted block exists); code keeps the payload as visible text.
  await expect(page.getByTestId('message-assistant').nth(24).locator('pre code').first()).toHaveText('<script>__xssHit(25)</script>');
  await expect(page.getByTestId('message-assistant').nth(4)).toContainText('click');
  // The blocked javascript: link is text, not a link.
  await expect(page.getByTestId('message-assistant').nth(4).getByRole('link')).toHaveCount(0);
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByLabel('System prompt')).toHaveValue(PAYLOADS[0]);
  await page.keyboard.press('Escape');
  await expectNothingRan(page, dialogs);
  await page.reload();
  await page.getByRole('button', { name: 'All payloads', exact: true }).click();
  await expect(page.getByTestId('message-assistant').first()).toBeVisible();
  await showAllMessages(page);
  await expect(page.getByTestId('message-assistant')).toHaveCount(PAYLOADS.length);
  await expectNothingRan(page, dialogs);
});

test('control: the detector sees a payload that does run (through innerHTML, outside the app)', async ({ page }) => {
  const dialogs = await arm(page);
  await page.goto('./');
  await page.evaluate(() => {
    const d = document.createElement('div');
    d.innerHTML = '<img src=x onerror="__xssHit(2)"><img src=x onerror="alert(36)">';
    document.body.appendChild(d);
  });
  // The two images fail to load in either order; both handlers must have run.
  await expect
    .poll(() => page.evaluate(() => (window as unknown as { __xssHits: unknown[] }).__xssHits.map(String).sort()))
    .toEqual(['2', 'alert:36']);
  expect(dialogs).toEqual([]);
});
