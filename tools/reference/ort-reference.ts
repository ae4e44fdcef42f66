/**
 * The reference: onnxruntime-node (CPU EP) running a Phi-3 ONNX directory exactly as published,
 * prefill then greedy decode, feeding present → past KV, in any of the three layouts.
 *
 * `OrtPhi3Session` is the layout-independent way of feeding: it looks at the graph's own inputs
 * and provides `attention_mask`, `position_ids` and `past_key_values.*` only where the graph has
 * them (GroupQueryAttention derives seqlens_k and total_sequence_length inside the graph from the
 * mask). Rule: the session keeps the KV cache between `forward` calls, so every call appends;
 * nothing here may re-run earlier tokens, or multi-turn comparisons with the native engine's KV
 * reuse would compare different things, except where `rerunAcross` asks for what
 * onnxruntime-genai and transformers do at Phi-3 128K's LongRoPE switch.
 */

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromHalfBits } from '../tiny-model/random';

export interface ReferenceOptions {
  /** The prompt (first turn). */
  inputIds: number[];
  /** Greedy tokens generated after the prompt and after each later chunk. */
  steps: number;
  /** Model file name under `<dir>/onnx/` (default: the first of model_q4.onnx, model_q4f16.onnx, model.onnx). */
  file?: string;
  /**
   * Later user turns: after the previous turn's `steps` tokens, `[lastGenerated, ...chunk]` is fed
   * on top of the KV cache (the last generated token was never fed yet), then `steps` more tokens.
   */
  chunks?: number[][];
  /** Whether a later turn starts with the previous turn's last generated token (default true). */
  feedLastToken?: boolean;
  /**
   * Phi-3 128K's LongRoPE switch (original_max_position_embeddings): a run that takes the sequence
   * past it while the cache holds no more than it runs the whole sequence again from an empty
   * cache, as onnxruntime-genai (PR #1161) and transformers (PR #33129) do, so no key keeps the
   * short factors' rotation. Unset: every run appends to the cache, as the graph alone does.
   */
  rerunAcross?: number;
}

export interface ReferenceResult {
  /** Last-position logits (V) for each generated token, in order: tokens[i] = argmax(logits[i]). */
  logits: Float32Array[];
  /** All generated tokens, over all turns. */
  tokens: number[];
  /** For each turn, the token ids fed in its prefill run. */
  prefillIds: number[][];
  /** For each turn, the full logits of its prefill run, row-major (S, V). */
  prefillLogits: Float32Array[];
  vocab: number;
}

/** Resolves a model directory (or a .onnx path) to the .onnx file to run. */
export function resolveModelFile(dirOrFile: string, file?: string): string {
  if (existsSync(dirOrFile) && statSync(dirOrFile).isFile()) return dirOrFile;
  const candidates = file ? [join(dirOrFile, 'onnx', file), join(dirOrFile, file)] : ['model_q4.onnx', 'model_q4f16.onnx', 'model.onnx'].flatMap((f) => [join(dirOrFile, 'onnx', f), join(dirOrFile, f)]);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no ONNX model found; tried ${candidates.join(', ')}`);
  return found;
}

function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const src = t.data as Uint16Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = fromHalfBits(src[i]);
    return out;
  }
  throw new Error(`logits have type ${t.type}, expected float32 or float16`);
}

export function argmax(v: Float32Array, offset = 0, length = v.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    if (v[offset + i] > bestValue) {
      bestValue = v[offset + i];
      best = i;
    }
  }
  return best;
}

interface PastSpec {
  name: string;
  present: string;
  type: 'float32' | 'float16';
  kvHeads: number;
  headDim: number;
}

/** One onnxruntime session plus its KV cache; `forward` appends tokens (batch 1). */
export class OrtPhi3Session {
  private past = new Map<string, ort.Tensor>();
  /** Tokens already in the KV cache. */
  position = 0;

  private constructor(
    readonly session: ort.InferenceSession,
    private readonly pasts: PastSpec[],
    readonly modelPath: string,
  ) {}

  static async open(dirOrFile: string, file?: string, sessionOptions: ort.InferenceSession.SessionOptions = {}): Promise<OrtPhi3Session> {
    const modelPath = resolveModelFile(dirOrFile, file);
    const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], ...sessionOptions });
    const pasts: PastSpec[] = [];
    for (const m of session.inputMetadata) {
      const match = /^past_key_values\.(\d+)\.(key|value)$/.exec(m.name);
      if (!match || !m.isTensor) continue;
      const [, kvHeads, , headDim] = m.shape;
      if (typeof kvHeads !== 'number' || typeof headDim !== 'number') throw new Error(`${m.name} has shape ${JSON.stringify(m.shape)}; expected [B, KVH, P, D] with fixed KVH and D`);
      if (m.type !== 'float32' && m.type !== 'float16') throw new Error(`${m.name} has type ${m.type}`);
      pasts.push({ name: m.name, present: `present.${match[1]}.${match[2]}`, type: m.type, kvHeads, headDim });
    }
    return new OrtPhi3Session(session, pasts, modelPath);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Forgets the KV cache. */
  reset(): void {
    this.past.clear();
    this.position = 0;
  }

  /** Runs `tokens` on top of the cache; returns their logits, row-major (S, V). */
  async forward(tokens: number[]): Promise<{ logits: Float32Array; vocab: number }> {
    if (tokens.length === 0) throw new Error('forward needs at least one token');
    const s = tokens.length;
    const total = this.position + s;
    const feeds: Record<string, ort.Tensor> = {};
    const names = new Set(this.session.inputNames);
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, s]);
    if (names.has('attention_mask')) feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]);
    if (names.has('position_ids')) {
      const pos = new BigInt64Array(s);
      for (let i = 0; i < s; i++) pos[i] = BigInt(this.position + i);
      feeds.position_ids = new ort.Tensor('int64', pos, [1, s]);
    }
    for (const p of this.pasts) {
      feeds[p.name] =
        this.past.get(p.name) ??
        (p.type === 'float16'
          ? new ort.Tensor('float16', new Uint16Array(0), [1, p.kvHeads, 0, p.headDim])
          : new ort.Tensor('float32', new Float32Array(0), [1, p.kvHeads, 0, p.headDim]));
    }
    const out = await this.session.run(feeds);
    for (const p of this.pasts) {
      const present = out[p.present];
      if (!present) throw new Error(`the model has no output ${p.present}`);
      this.past.set(p.name, present);
    }
    this.position = total;
    const logits = out.logits;
    const vocab = logits.dims[logits.dims.length - 1];
    return { logits: toFloat32(logits), vocab };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Prefill + greedy decode (and further turns) on onnxruntime-node's CPU EP. */
export async function runReference(dir: string, opts: ReferenceOptions): Promise<ReferenceResult> {
  const session = await OrtPhi3Session.open(dir, opts.file);
  try {
    const result: ReferenceResult = { logits: [], tokens: [], prefillIds: [], prefillLogits: [], vocab: 0 };
    const fed: number[] = [];
    /** session.forward, except across `rerunAcross` (see there); the logits are those of `ids`. */
    const run = async (ids: number[]) => {
      const from = session.position;
      const across = opts.rerunAcross !== undefined && from > 0 && from <= opts.rerunAcross && from + ids.length > opts.rerunAcross;
      if (across) session.reset();
      const out = await session.forward(across ? [...fed, ...ids] : ids);
      fed.push(...ids);
      return across ? { logits: out.logits.slice(from * out.vocab), vocab: out.vocab } : out;
    };
    const turns = [opts.inputIds, ...(opts.chunks ?? [])];
    for (let t = 0; t < turns.length; t++) {
      const last = result.tokens[result.tokens.length - 1];
      const ids = t === 0 || last === undefined || opts.feedLastToken === false ? turns[t] : [last, ...turns[t]];
      if (opts.steps === 0 && t > 0) throw new Error('chunks need steps > 0');
      const { logits, vocab } = await run(ids);
      result.vocab = vocab;
      result.prefillIds.push(ids);
      result.prefillLogits.push(logits);
      let row: Float32Array = logits.slice((ids.length - 1) * vocab, ids.length * vocab);
      for (let step = 0; step < opts.steps; step++) {
        const token = argmax(row);
        result.logits.push(row);
        result.tokens.push(token);
        if (step + 1 < opts.steps) row = (await run([token])).logits;
      }
    }
    return result;
  } finally {
    await session.release();
  }
}
