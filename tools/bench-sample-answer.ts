/**
 * Shared by the page benchmarks (bench-markdown.ts, bench-stream.ts): a long answer of the kind
 * Phi-3 writes, and the median of a figure's rounds.
 */

/** A long answer of the kind Phi-3 writes: headings, paragraphs, lists, code, a table. */
export function sampleAnswer(chars: number): string {
  const section = (i: number) =>
    [
      `## Step ${i + 1}: measure before you change anything`,
      '',
      `Decode speed is bound by **memory bandwidth**: every weight is read once per token, so a ${i + 2}-layer model reads all of its int4 weights for each token. Prefill is bound by *compute* instead, and [the WebGPU spec](https://www.w3.org/TR/webgpu/) says nothing about either.`,
      '',
      '1. Time the step with `timestamp-query` where the adapter offers it.',
      '2. Count the bytes each kernel reads.',
      '3. Compare with a plain copy of the same size.',
      '',
      '```ts',
      `const tokensPerSecond = bandwidth / bytesPerToken; // section ${i + 1}`,
      'for (let i = 0; i < rows; i++) sum += weights[i] * activations[i];',
      '```',
      '',
      '| kernel | bytes read | share |',
      '|---|---|---|',
      `| gate_up | ${28 + i} MB | 60% |`,
      '| down | 14 MB | 34% |',
      '',
    ].join('\n');
  let text = '';
  for (let i = 0; text.length < chars; i++) text += section(i) + '\n';
  return text.slice(0, chars);
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
