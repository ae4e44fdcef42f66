/**
 * The answers on the page and the figures of an answer's stats line, for the specs that check
 * what the model was given ("N prompt (M cached) + K new tokens", src/ui/MessageItem.tsx).
 */
import type { Locator, Page } from '@playwright/test';

export const answers = (page: Page): Locator => page.getByTestId('message-assistant');

/** The last answer's prompt tokens and the part of them the KV cache held (0 when none). */
export async function lastAnswerPrompt(page: Page): Promise<{ prompt: number; cached: number }> {
  const text = await answers(page).last().getByTestId('message-stats').innerText();
  const m = /(\d+) prompt(?: \((\d+) cached\))?/.exec(text);
  if (!m) throw new Error(`no prompt figure in the stats line ${JSON.stringify(text)}`);
  return { prompt: Number(m[1]), cached: Number(m[2] ?? 0) };
}
