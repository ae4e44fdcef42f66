/**
 * Renders assistant text as Markdown (GFM tables, task lists, strikethrough) with highlighted
 * code blocks, using react-markdown + remark-gfm + rehype-highlight, one memoised top-level block
 * at a time (markdownBlocks.ts) so a streaming answer costs per token what its last block costs.
 * Safety rules a contributor must not break:
 *   - never add rehype-raw or `dangerouslySetInnerHTML`: raw HTML in model output stays inert
 *     text (react-markdown builds React elements, not HTML strings);
 *   - every URL goes through `safeUrl`: only http(s) and mailto survive, so `javascript:`,
 *     `data:` and `vbscript:` links become plain text;
 *   - links open in a new tab with rel="noopener noreferrer"; images are never fetched (the app
 *     promises nothing leaves the machine), they are shown as links.
 */
import { Fragment, memo, type ReactNode } from 'react';
import ReactMarkdown, { type Components, type ExtraProps } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import rehypeHighlight from 'rehype-highlight';
import type { Element, ElementContent } from 'hast';
import { CopyButton } from './CopyButton';
import { safeUrl } from './safeUrl';
import { splitMarkdownBlocks } from './markdownBlocks';

function textOf(node: ElementContent | Element): string {
  if (node.type === 'text') return node.value;
  if (node.type === 'element') return node.children.map(textOf).join('');
  return '';
}

function SafeLink({ href, children }: { href?: string; children?: ReactNode } & ExtraProps) {
  const safe = href ? safeUrl(href) : '';
  if (!safe) return <span className="md-link-blocked" title="Link removed: only http, https and mailto links are allowed">{children}</span>;
  return (
    <a href={safe} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

function ImageAsLink({ src, alt }: { src?: string | Blob; alt?: string } & ExtraProps) {
  const label = `Image: ${alt || 'untitled'}`;
  const safe = typeof src === 'string' ? safeUrl(src) : '';
  if (!safe) return <span className="md-link-blocked">[{label}]</span>;
  return (
    <a href={safe} target="_blank" rel="noopener noreferrer">
      [{label}]
    </a>
  );
}

function CodeBlock({ node, children }: { children?: ReactNode } & ExtraProps) {
  const code = node?.children.find((c): c is Element => c.type === 'element' && c.tagName === 'code');
  const classes = code?.properties.className;
  const lang = Array.isArray(classes) ? classes.map(String).find((c) => c.startsWith('language-'))?.slice(9) : undefined;
  const text = code ? textOf(code).replace(/\n$/, '') : '';
  return (
    <div className="code-block">
      <div className="code-bar">
        <span className="code-lang">{lang ?? 'code'}</span>
        <CopyButton text={text} label={`Copy ${lang ?? ''} code`.replace('  ', ' ')} />
      </div>
      <pre>{children}</pre>
    </div>
  );
}

const components: Components = { a: SafeLink, img: ImageAsLink, pre: CodeBlock };
const remarkPlugins = [remarkGfm];
const rehypePlugins = [[rehypeHighlight, { detect: false, ignoreMissing: true }] as [typeof rehypeHighlight, object]];

/** One top-level block; memoised, so while an answer streams only its last block renders again. */
const MarkdownBlock = memo(function MarkdownBlock({ text }: { text: string }) {
  return (
    <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components} urlTransform={safeUrl}>
      {text}
    </ReactMarkdown>
  );
});

/**
 * `split`: how the text is cut into blocks rendered side by side (markdownBlocks.ts); the
 * benchmark passes `(t) => [t]` to time the whole-text rendering it replaced.
 */
export const Markdown = memo(function Markdown({ text, split = splitMarkdownBlocks }: { text: string; split?: (text: string) => string[] }) {
  return (
    <div className="markdown">
      {split(text).map((block, i) => (
        // The line break react-markdown puts between top-level elements, so the DOM is the same.
        <Fragment key={i}>
          {i > 0 && '\n'}
          <MarkdownBlock text={block} />
        </Fragment>
      ))}
    </div>
  );
});
