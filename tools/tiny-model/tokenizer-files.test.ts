import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { writeTokenizerFiles } from './tokenizer-files';

describe('writeTokenizerFiles', () => {
  let dir = '';
  let tokenizer: Tokenizer;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phi3-tok-'));
    await writeTokenizerFiles(dir);
    const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object;
    config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    tokenizer = new Tokenizer(json, config);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the four Hugging Face tokenizer files', async () => {
    const special = JSON.parse(await readFile(join(dir, 'special_tokens_map.json'), 'utf8')) as Record<string, { content: string }>;
    const added = JSON.parse(await readFile(join(dir, 'added_tokens.json'), 'utf8')) as Record<string, number>;
    expect(special.bos_token.content).toBe('<s>');
    expect(special.eos_token.content).toBe('<|endoftext|>');
    expect(added['<|user|>']).toBe(32010);
    expect(Object.keys(added)).toHaveLength(11);
    expect(typeof config.chat_template).toBe('string');
  });

  it('loads in @huggingface/tokenizers and encodes like Llama-2', () => {
    // Expected ids are Llama-2's, as listed in llama-tokenizer-js's own test-suite.
    expect(tokenizer.encode('grabbed').ids).toEqual([1, 2646, 1327, 287]);
    expect(tokenizer.encode(' grabbed').ids).toEqual([1, 29871, 2646, 1327, 287]);
    expect(tokenizer.encode('           grabbed').ids).toEqual([1, 9651, 2646, 1327, 287]);
    expect(tokenizer.encode('\n').ids).toEqual([1, 29871, 13]);
    expect(tokenizer.encode('🦙Ꙋ').ids).toEqual([1, 29871, 243, 162, 169, 156, 237, 156, 141]);
    expect(tokenizer.decode(tokenizer.encode('🦙Ꙋ').ids, { skip_special_tokens: true })).toBe('🦙Ꙋ');
  });

  it('maps every Phi-3 added token to its id', () => {
    const ids = tokenizer.encode('<|system|><|user|><|assistant|><|end|><|endoftext|>', { add_special_tokens: false }).ids;
    expect(ids).toEqual([32006, 32010, 32001, 32007, 32000]);
  });
});
