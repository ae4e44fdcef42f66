/**
 * A deterministic generator of varied test strings for tokenizer tests (Node and browser).
 *
 * Rule: strings never contain the text of an added token (`<s>`, `<|user|>`, ...): the reference
 * llama-tokenizer-js knows no added tokens, so such text would not be a like-for-like comparison.
 */

/** mulberry32: a small seeded PRNG, so that a failing string can be reproduced from its index. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'the', 'grabbed', 'tokenizer', 'llama', 'Phi', 'WebGPU', 'hello', 'world', 'running', "don't",
  'Über', 'naïve', 'café', 'résumé', 'Straße', 'Привет', 'мир', 'γειά', 'σου', 'שלום', 'مرحبا',
  'नमस्ते', 'こんにちは', '世界', '你好', '镇', '한국어', 'ไทย', 'Ꙋ', 'über-cool', 'C++', 'x86_64',
];
const CODE = [
  'function f(x) { return x * 2; }', 'for (let i = 0; i < n; i++) {\n\tsum += a[i];\n}',
  'def main():\n    print("hi")\n', 'SELECT * FROM t WHERE id = 42;', '#include <stdio.h>',
  'const re = /\\s+$/g;', 'fn main() -> Result<(), Box<dyn Error>> {}', 'a && b || !c', 'x->y = *p++;',
  '<div class="a">&nbsp;</div>', '$ npm run build -- --mode production', '{"key": [1, 2.5e-3, null]}',
];
const EMOJI = ['🦙', '😀', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷', '❤️', '🧑‍💻', '🎉', '∑', '𝔘𝔫𝔦', '🫠', '🏳️‍🌈'];
const COMBINING = ['\u0301', '\u0308', '\u0327', '\u0323\u0302', '\u20DD', '\u0489'];
const PUNCT = '.,;:!?¿¡-–—()[]{}<>/\\|@#$%^&*_+=~`"\'«»“”‘’…•·§¶©®™°±×÷';
const WHITESPACE = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\t\t', '    ', '\u00a0', '\u3000', ' \t \n'];

const FORBIDDEN = ['<s>', '</s>', '<unk>', '<|'];

export function generateTestStrings(count: number, seed: number): string[] {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const codePoint = (lo: number, hi: number) => String.fromCodePoint(int(lo, hi));

  const fragment = (): string => {
    switch (int(0, 11)) {
      case 0:
      case 1:
        return pick(WORDS);
      case 2:
        return String(int(0, 10 ** int(1, 9))) + (random() < 0.3 ? '.' + String(int(0, 999)) : '');
      case 3:
        return Array.from({ length: int(1, 4) }, () => pick([...PUNCT])).join('');
      case 4:
        return pick(WHITESPACE);
      case 5:
        return pick(CODE);
      case 6:
        return pick(EMOJI);
      case 7: // CJK ideographs, many outside the vocabulary (byte fallback)
        return Array.from({ length: int(1, 4) }, () => codePoint(0x4e00, 0x9fff)).join('');
      case 8: // base letter with combining marks
        return pick(['a', 'e', 'o', 'n', 'ж', 'α']) + Array.from({ length: int(1, 3) }, () => pick(COMBINING)).join('');
      case 9: // other scripts and symbols, including astral planes
        return pick([
          () => codePoint(0x0400, 0x04ff),
          () => codePoint(0x0600, 0x06ff),
          () => codePoint(0x0900, 0x097f),
          () => codePoint(0xac00, 0xd7a3),
          () => codePoint(0x2000, 0x2bff),
          () => codePoint(0x1f300, 0x1faff),
          () => codePoint(0x20000, 0x2a6df),
        ])();
      case 10:
        return pick(WORDS).toUpperCase();
      default:
        return ' ' + pick(WORDS);
    }
  };

  const strings: string[] = [];
  while (strings.length < count) {
    const parts = Array.from({ length: int(1, 14) }, fragment);
    const joiner = random() < 0.5 ? '' : ' ';
    const text = parts.join(joiner);
    if (text.length === 0 || FORBIDDEN.some((f) => text.includes(f))) continue;
    strings.push(text);
  }
  return strings;
}
