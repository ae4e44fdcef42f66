import { describe, expect, it } from 'vitest';
import { safeUrl } from './safeUrl';

describe('safeUrl', () => {
  it('keeps http, https, mailto and in-page anchors', () => {
    expect(safeUrl('https://www.w3.org/TR/webgpu/')).toBe('https://www.w3.org/TR/webgpu/');
    expect(safeUrl('HTTP://example.com/a?b=c#d')).toBe('HTTP://example.com/a?b=c#d');
    expect(safeUrl('mailto:a@example.com')).toBe('mailto:a@example.com');
    expect(safeUrl('#section-2')).toBe('#section-2');
  });

  it('drops every other scheme, however it is disguised', () => {
    for (const url of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'java\nscript:alert(1)',
      '\u0000javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'vbscript:msgbox(1)',
      'file:///etc/passwd',
      'blob:https://x/1',
      '//evil.example/x',
      '/relative/path',
      'relative',
    ]) {
      expect(safeUrl(url), url).toBe('');
    }
  });
});
