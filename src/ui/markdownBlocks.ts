/**
 * Splits Markdown into top-level blocks that parse the same alone as in the whole text, so a
 * streamed answer re-parses only its last block per token (Markdown.tsx memoises the others).
 * Parsing the whole answer again for every token grew with its length: 20 ms per token at 8,000
 * characters on the build machine (tools/bench-markdown.ts prints the figures).
 *
 * A cut is made only at a blank line whose next line starts a block that cannot belong to what
 * came before:
 *   - never inside a fenced code block (``` or ~~~, closed by a fence of the same character at
 *     least as long; an unclosed fence runs to the end, as CommonMark says);
 *   - never before an indented line (a list item's continuation, an indented code block);
 *   - never before a list item (so a loose list stays one list, numbered as one).
 * Text that has link reference definitions or footnote definitions (they apply to the whole
 * document) or an HTML block that may span blank lines (a comment, <pre>, <script>, <style>,
 * <textarea>) is kept whole.
 * Rule: the concatenated rendering of the blocks must equal the rendering of the whole text; the
 * tests check that for every prefix of streamed answers.
 */

const BLANK = /^[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const LIST_ITEM = /^ {0,3}([-*+]|\d{1,9}[.)])([ \t]|$)/;
const WHOLE_DOCUMENT = /^ {0,3}\[[^\]]+\]:|<!--|<(pre|script|style|textarea)[\s>]/im;

export function splitMarkdownBlocks(text: string): string[] {
  if (WHOLE_DOCUMENT.test(text)) return [text];
  const lines = text.split('\n');
  const blocks: string[] = [];
  let start = 0;
  let fence: { char: string; length: number } | null = null;
  // Whether the block so far has a line with text (leading blank lines belong to the next one).
  let content = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const f = FENCE.exec(line);
    if (!BLANK.test(line)) content = true;
    if (fence) {
      if (f && f[1][0] === fence.char && f[1].length >= fence.length && line.slice(f[0].length).trim() === '') fence = null;
      continue;
    }
    if (f) {
      // A backtick fence's info string may not contain a backtick; such a line is not a fence.
      if (f[1][0] === '`' && line.slice(f[0].length).includes('`')) continue;
      fence = { char: f[1][0], length: f[1].length };
      continue;
    }
    const next = lines[i + 1];
    if (content && BLANK.test(line) && next !== undefined && !BLANK.test(next) && !/^[ \t]/.test(next) && !LIST_ITEM.test(next)) {
      blocks.push(lines.slice(start, i + 1).join('\n'));
      start = i + 1;
      content = false;
    }
  }
  blocks.push(lines.slice(start).join('\n'));
  return blocks;
}
