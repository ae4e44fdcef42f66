/**
 * Renders assistant text as Markdown (GFM tables, task lists, strikethrough) with highlighted
 * code blocks, using react-markdown + remark-gfm + rehype-highlight.
 * Safety rules a contributor must not break:
 *   - never add rehype-raw or `dangerouslySetInnerHTML`: raw HTML in model output stays inert
 *     text (react-markdown builds React elements, not HTML strings);
 *   - every URL goes through `safeUrl`: only http(s) and mailto survive, so `javascript:`,
 *     `data:` and `vbscript:` links become plain text;
 *   - links open in a new tab with rel="noopener noreferrer"; images are never fetched (the app
 *     promises nothing leaves the machine), they are shown as links.
 */
import { memo, type ReactNode } from 'react';
import ReactMarkdown, { type Components, type ExtraProps } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import rehypeHighlight from 'rehype-highlight';
import type { Element, ElementContent } from 'hast';
import { CopyButton } from './CopyButton';
import { safeUrl } from './safeUrl';

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

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components} urlTransform={safeUrl}>
        {text}
      </ReactMarkdown>
    </div>
  );
});
