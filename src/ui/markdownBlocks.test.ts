/**
 * The block split must not change what is rendered: for sample answers and seeded random
 * Markdown, at every prefix a stream passes through, the blocks rendered side by side give the
 * same HTML as the whole text (react-dom/server over the app's own Markdown component).
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { Markdown } from './Markdown';
import { splitMarkdownBlocks } from './markdownBlocks';

const html = (text: string, whole = false) => renderToStaticMarkup(createElement(Markdown, whole ? { text, split: (t: string) => [t] } : { text }));

const ANSWER = [
  '# Prefill and decode',
  '',
  'Prefill reads the **whole prompt** at once; decode writes *one token* per step.',
  'A second line of the same paragraph, with `code` and a [link](https://example.com).',
  '',
  '1. Prefill is bound by compute.',
  '',
  '2. Decode is bound by memory bandwidth:',
  '',
  '   each weight is read once per token.',
  '',
  '   ```ts',
  '   const t = bytes / bandwidth;',
  '   ```',
  '',
  '- tight',
  '- list',
  '  - nested',
  '',
  '```python',
  'def f(x):',
  '',
  '    return x  # a blank line above, inside the fence',
  '```',
  '',
  '    indented code',
  '',
  '    more indented code',
  '',
  '> a quote',
  '',
  '> another quote',
  '',
  '| phase | bound by |',
  '|---|---|',
  '| prefill | compute |',
  '',
  '---',
  '',
  'Setext heading',
  '==============',
  '',
  '~~~~',
  '```',
  'not a close',
  '~~~~',
  '',
  '<div>',
  'html block',
  '</div>',
  '',
  'The end, with a trailing space. ',
].join('\n');

/** Seeded random Markdown-ish text: every construct above, in random order and nesting. */
function randomMarkdown(seed: number): string {
  let s = seed;
  const rand = (n: number) => ((s = (s * 1103515245 + 12345) % 2 ** 31), s % n);
  const pieces = [
    () => 'Some *emphasis* and **strong** text.',
    () => `${rand(3) + 1}. item`,
    () => '- item',
    () => '  continued',
    () => '    indented',
    () => '```',
    () => '~~~',
    () => '````js',
    () => '> quote',
    () => '## heading',
    () => '| a | b |\n|---|---|\n| 1 | 2 |',
    () => '***',
    () => '',
    () => '',
    () => '\t',
    () => 'text `with ``ticks`` ` here',
    () => '<p>',
  ];
  return Array.from({ length: 40 }, () => pieces[rand(pieces.length)]()).join('\n');
}

describe('splitMarkdownBlocks', () => {
  it('cuts at blank lines before a new top-level block, and the blocks join back to the text', () => {
    expect(splitMarkdownBlocks('one\n\ntwo\n\n## three')).toEqual(['one\n', 'two\n', '## three']);
    for (const text of [ANSWER, randomMarkdown(1), randomMarkdown(2)]) expect(splitMarkdownBlocks(text).join('\n')).toBe(text);
    expect(splitMarkdownBlocks(ANSWER).length).toBeGreaterThan(10);
  });

  it('never cuts inside a fence, before an indented line or before a list item', () => {
    expect(splitMarkdownBlocks('```\na\n\nb\n```')).toHaveLength(1);
    expect(splitMarkdownBlocks('```\na\n\nb (the fence is still open while streaming)')).toHaveLength(1);
    expect(splitMarkdownBlocks('- a\n\n  b')).toHaveLength(1);
    expect(splitMarkdownBlocks('1. a\n\n2. b')).toHaveLength(1);
    expect(splitMarkdownBlocks('para\n\n    code')).toHaveLength(1);
  });

  it('keeps text with document-wide definitions or multi-paragraph HTML whole', () => {
    expect(splitMarkdownBlocks('See [x][1].\n\n[1]: https://example.com')).toHaveLength(1);
    expect(splitMarkdownBlocks('Note[^1].\n\n[^1]: The footnote.')).toHaveLength(1);
    expect(splitMarkdownBlocks('<!-- a\n\nb -->\n\nc')).toHaveLength(1);
    expect(splitMarkdownBlocks('<pre>\na\n\nb</pre>')).toHaveLength(1);
  });

  it('renders exactly as the whole text at every prefix of a streamed answer', () => {
    let checked = 0;
    for (let end = 1; end <= ANSWER.length; end += 5) {
      const prefix = ANSWER.slice(0, end);
      expect(html(prefix), `prefix of ${end} characters`).toBe(html(prefix, true));
      checked++;
    }
    expect(checked).toBeGreaterThan(140);
  });

  it('renders exactly as the whole text for seeded random Markdown, at every line', () => {
    for (let seed = 1; seed <= 16; seed++) {
      const lines = randomMarkdown(seed).split('\n');
      for (let n = 1; n <= lines.length; n++) {
        const text = lines.slice(0, n).join('\n');
        expect(html(text), `seed ${seed}, ${n} lines:\n${text}`).toBe(html(text, true));
      }
    }
  });
});
