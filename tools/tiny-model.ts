/**
 * CLI: `npm run tiny-model -- --out <dir> [options]` writes a random tiny Phi-3 directory laid out
 * like the Hugging Face repo (see docs/tiny-model.md). Rule: keep this file a thin shell; flags are
 * parsed in tools/tiny-model/cli.ts and validated in tools/tiny-model/options.ts.
 */

import { parseTinyModelArgs, USAGE } from './tiny-model/cli';
import { generateTinyModel } from './tiny-model/generate';

async function main(): Promise<void> {
  const { out, options, help } = parseTinyModelArgs(process.argv.slice(2));
  if (help) {
    console.log(USAGE);
    return;
  }
  const t0 = performance.now();
  const m = await generateTinyModel(out, options);
  const o = m.options;
  console.log(
    `wrote ${m.onnxPath} (${m.onnxBytes} bytes) + ${m.dataPath} (${m.dataBytes} bytes) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `${o.layout} ${o.context} ${o.dtype} block ${o.blockSize}${o.zeroPoints ? ' zp' : ''}, ${o.layers} layers, hidden ${o.hidden}, ` +
      `heads ${o.heads}/${o.kvHeads}, intermediate ${o.intermediate}, vocab ${o.vocab}, seed ${o.seed}`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
