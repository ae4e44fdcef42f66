/**
 * Writes a tiny random Phi-3 as a directory laid out like the Hugging Face repo:
 *   onnx/model_<dtype>.onnx + onnx/model_<dtype>.onnx_data, config.json, genai_config.json,
 *   generation_config.json and the tokenizer files (tokenizer-files.ts).
 * Everything is a pure function of the options (seed included). Rule: JSON files are written
 * with a fixed key order and no timestamps, so equal options give byte-identical directories.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPhi3Graph, ropeFactors } from './graph';
import { headDimOf, modelFileName, resolveOptions, type TinyModelOptions } from './options';
import { writeModel } from './proto';
import { writeTokenizerFiles } from './tokenizer-files';

export const EOS_TOKEN_IDS = [32000, 32001, 32007];
export const BOS_TOKEN_ID = 1;

export interface GeneratedModel {
  dir: string;
  options: TinyModelOptions;
  /** Absolute path of the .onnx file. */
  onnxPath: string;
  dataPath: string;
  onnxBytes: number;
  dataBytes: number;
}

/** HF Phi3Config. */
export function configJson(o: TinyModelOptions): Record<string, unknown> {
  const longrope = o.context === '128k' ? ropeFactors(o) : null;
  return {
    _name_or_path: `tiny-phi3-${o.layout}-${o.context}-${o.dtype}`,
    architectures: ['Phi3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: BOS_TOKEN_ID,
    embd_pdrop: 0.0,
    eos_token_id: 32000,
    hidden_act: 'silu',
    hidden_size: o.hidden,
    initializer_range: 0.02,
    intermediate_size: o.intermediate,
    max_position_embeddings: o.maxPositions,
    model_type: 'phi3',
    num_attention_heads: o.heads,
    num_hidden_layers: o.layers,
    num_key_value_heads: o.kvHeads,
    original_max_position_embeddings: o.originalMaxPositions,
    pad_token_id: 32000,
    resid_pdrop: 0.0,
    rms_norm_eps: o.rmsNormEps,
    rope_scaling: longrope ? { long_factor: longrope.long, short_factor: longrope.short, type: 'longrope' } : null,
    rope_theta: o.ropeTheta,
    sliding_window: o.slidingWindow >= 0 ? o.slidingWindow : null, // GroupQueryAttention's local_window_size
    tie_word_embeddings: false,
    torch_dtype: o.dtype === 'q4f16' ? 'float16' : 'float32',
    use_cache: true,
    vocab_size: o.vocab,
  };
}

/** onnxruntime-genai's genai_config.json. */
export function genaiConfigJson(o: TinyModelOptions): Record<string, unknown> {
  const inputs: Record<string, string> = { input_ids: 'input_ids', attention_mask: 'attention_mask' };
  if (o.layout !== 'gqa-packed') inputs.position_ids = 'position_ids';
  inputs.past_key_names = 'past_key_values.%d.key';
  inputs.past_value_names = 'past_key_values.%d.value';
  return {
    model: {
      bos_token_id: BOS_TOKEN_ID,
      context_length: o.maxPositions,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename: modelFileName(o),
        head_size: headDimOf(o),
        hidden_size: o.hidden,
        inputs,
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
        num_attention_heads: o.heads,
        num_hidden_layers: o.layers,
        num_key_value_heads: o.kvHeads,
      },
      eos_token_id: EOS_TOKEN_IDS,
      pad_token_id: 32000,
      type: 'phi3',
      vocab_size: o.vocab,
    },
    search: {
      diversity_penalty: 0.0, do_sample: false, early_stopping: true, length_penalty: 1.0, max_length: o.maxPositions,
      min_length: 0, no_repeat_ngram_size: 0, num_beams: 1, num_return_sequences: 1, past_present_share_buffer: false,
      repetition_penalty: 1.0, temperature: 1.0, top_k: 1, top_p: 1.0,
    },
  };
}

export function generationConfigJson(): Record<string, unknown> {
  return { _from_model_config: true, bos_token_id: BOS_TOKEN_ID, eos_token_id: EOS_TOKEN_IDS, pad_token_id: 32000 };
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/** Generates the model directory `dir` (created if missing) from `options` (defaults filled in). */
export async function generateTinyModel(dir: string, options: Partial<TinyModelOptions> = {}): Promise<GeneratedModel> {
  const o = resolveOptions(options);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const onnxPath = join(dir, 'onnx', modelFileName(o));
  const dataPath = `${onnxPath}_data`;
  const { onnxBytes, dataBytes } = writeModel(buildPhi3Graph(o), onnxPath, dataPath);
  writeFileSync(join(dir, 'config.json'), json(configJson(o)));
  writeFileSync(join(dir, 'genai_config.json'), json(genaiConfigJson(o)));
  writeFileSync(join(dir, 'generation_config.json'), json(generationConfigJson()));
  await writeTokenizerFiles(dir);
  return { dir, options: o, onnxPath, dataPath, onnxBytes, dataBytes };
}
