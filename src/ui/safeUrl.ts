/**
 * The one URL filter for rendered Markdown: only http(s) and mailto URLs and in-page anchors
 * survive; anything else (javascript:, data:, vbscript:, relative paths) becomes '' and the
 * renderer shows plain text instead of a link. Rule: loosen this only with a test per scheme.
 */
const SAFE_PROTOCOL = /^(https?|mailto):/i;

export function safeUrl(url: string): string {
  // Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  const compact = url.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  if (SAFE_PROTOCOL.test(compact)) return compact;
  if (/^#[\w-]*$/.test(compact)) return compact;
  return '';
}
