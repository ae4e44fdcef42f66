/**
 * Argument parsing for `npm run tiny-model` (tools/tiny-model.ts). Rule: every flag maps one-to-one
 * onto a TinyModelOptions field; value validation lives in options.ts, not here.
 */

import type { TinyModelOptions } from './options';

export const USAGE = `usage: npm run tiny-model -- --out <dir> [options]
  --layout web2024|gqa|gqa-packed   graph layout (default web2024)
  --context 4k|128k                 4k rotary or 128k LongRoPE If (default 4k)
  --dtype q4|q4f16                  fp32 or fp16 activations/scales (default q4)
  --block-size 16|32|64|128         MatMulNBits block size (default 32)
  --zero-points                     asymmetric quantisation with packed zero points
  --accuracy-level 0|4              MatMulNBits accuracy_level (default 0)
  --layers N --hidden N --heads N --kv-heads N --intermediate N --vocab N
  --max-positions N --original-max-positions N --rope-theta X --seed N
  --sliding-window N                GroupQueryAttention local_window_size (default -1: none)
  --windowed-cache                  also sliding_window_cache = 1 (a CPU/CUDA build's window-sized cache)
  --max-inline-bytes N              inline weight budget of the .onnx (default 1 GiB)`;

const NUMERIC: Record<string, keyof TinyModelOptions> = {
  '--block-size': 'blockSize',
  '--accuracy-level': 'accuracyLevel',
  '--layers': 'layers',
  '--hidden': 'hidden',
  '--heads': 'heads',
  '--kv-heads': 'kvHeads',
  '--intermediate': 'intermediate',
  '--vocab': 'vocab',
  '--max-positions': 'maxPositions',
  '--original-max-positions': 'originalMaxPositions',
  '--sliding-window': 'slidingWindow',
  '--rope-theta': 'ropeTheta',
  '--seed': 'seed',
  '--max-inline-bytes': 'maxInlineBytes',
};

export function parseTinyModelArgs(argv: string[]): { out: string; options: Partial<TinyModelOptions>; help?: boolean } {
  const options: Record<string, unknown> = {};
  let out = '';
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return { out: '', options: {}, help: true };
    if (flag === '--zero-points' || flag === '--windowed-cache') {
      options[flag === '--zero-points' ? 'zeroPoints' : 'windowedCache'] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--out') out = value;
    else if (flag === '--layout') options.layout = value;
    else if (flag === '--context') options.context = value;
    else if (flag === '--dtype') options.dtype = value;
    else if (flag in NUMERIC) {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`${flag} needs a number, got ${value}`);
      options[NUMERIC[flag]] = n;
    } else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (!out) throw new Error(`--out <dir> is required\n${USAGE}`);
  return { out, options: options as Partial<TinyModelOptions> };
}

