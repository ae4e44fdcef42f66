/**
 * Node only: a model directory (Hugging Face layout) or a bare `.onnx` file as `ModelFiles`.
 * With a bare file, the root is its folder and configs/tokenizer are simply absent.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { AppError } from '../errors';
import { nodeFileSource } from '../onnx/node-source';
import type { ByteSource } from '../onnx/types';
import type { ModelFiles } from '../phi3/files';

const CANDIDATES = ['onnx/model_q4.onnx', 'onnx/model_q4f16.onnx', 'model_q4.onnx', 'model_q4f16.onnx', 'model.onnx', 'onnx/model.onnx'];

export function nodeModelFiles(dirOrOnnx: string): ModelFiles & { root: string; close(): Promise<void> } {
  if (!existsSync(dirOrOnnx)) throw new AppError('BAD_ARGUMENT', `--model ${dirOrOnnx} does not exist. Give a model directory or a .onnx file.`);
  let root: string;
  let onnxPath: string;
  if (statSync(dirOrOnnx).isFile()) {
    // A bare .onnx: configs may sit in its folder or the one above (the HF `onnx/` sub-folder).
    const folder = dirname(dirOrOnnx);
    root = existsSync(join(folder, 'config.json')) || basename(folder) !== 'onnx' ? folder : dirname(folder);
    onnxPath = relative(root, dirOrOnnx);
  } else {
    root = dirOrOnnx;
    const found = CANDIDATES.find((c) => existsSync(join(root, c)));
    if (!found) throw new AppError('BAD_ARGUMENT', `No ONNX model in ${root}: looked for ${CANDIDATES.join(', ')}.`);
    onnxPath = found;
  }
  const opened: Array<ByteSource & { close(): Promise<void> }> = [];
  return {
    root,
    onnxPath,
    async open(path) {
      const full = join(root, path);
      if (!existsSync(full)) throw new AppError('MODEL_MISSING_WEIGHT', `The model file ${full} is missing. Copy or download it next to ${onnxPath}.`);
      const s = await nodeFileSource(full);
      opened.push(s);
      return s;
    },
    async readJson(path) {
      const full = join(root, path);
      if (!existsSync(full)) return undefined;
      try {
        return JSON.parse(await readFile(full, 'utf8')) as unknown;
      } catch (err) {
        throw new AppError('BAD_ARGUMENT', `${full} is not valid JSON (${String(err)}).`);
      }
    },
    async close() {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
}
