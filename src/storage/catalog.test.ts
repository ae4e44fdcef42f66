import { describe, expect, it } from 'vitest';
import { CATALOG, customEntry, discoverFiles, entryFromParam, hubBaseUrl, parseRepoInput, resolveUrl, treeUrl } from './catalog';

describe('catalog', () => {
  it('lists every file of each entry, with no invented sizes or hashes', () => {
    expect(CATALOG.map((e) => e.id)).toEqual(['phi-3-mini-4k-q4f16', 'phi-3-mini-4k-q4', 'phi-3-mini-128k-int4', 'phi-3.5-mini-q4f16']);
    const q4 = CATALOG.find((e) => e.id === 'phi-3-mini-4k-q4')!;
    expect(q4.files!.map((f) => f.path)).toEqual([
      'onnx/model_q4.onnx',
      'onnx/model_q4.onnx_data',
      'config.json',
      'genai_config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'added_tokens.json',
    ]);
    const long = CATALOG.find((e) => e.id === 'phi-3-mini-128k-int4')!;
    expect(long.files!.slice(0, 2).map((f) => f.path)).toEqual([
      'cpu_and_mobile/cpu-int4-rtn-block-32/phi3-mini-128k-instruct-cpu-int4-rtn-block-32.onnx',
      'cpu_and_mobile/cpu-int4-rtn-block-32/phi3-mini-128k-instruct-cpu-int4-rtn-block-32.onnx.data',
    ]);
    for (const e of CATALOG) for (const f of e.files!) expect([f.size, f.sha256]).toEqual([undefined, undefined]);
  });

  it('takes the Hub from ?hub=, then VITE_HUB_URL, then huggingface.co', () => {
    expect(hubBaseUrl('?hub=http://127.0.0.1:8080/', 'https://mirror.example')).toBe('http://127.0.0.1:8080');
    expect(hubBaseUrl('', 'https://mirror.example/')).toBe('https://mirror.example');
    expect(hubBaseUrl('?model=x', undefined)).toBe('https://huggingface.co');
    expect(() => hubBaseUrl('?hub=javascript:alert(1)', undefined)).toThrow(/must be http/);
  });

  it('resolves ?model= to a catalog entry or a custom repo entry', () => {
    expect(entryFromParam('phi-3-mini-128k-int4')?.repo).toBe('microsoft/Phi-3-mini-128k-instruct-onnx');
    expect(entryFromParam('org/repo/onnx/sub')).toMatchObject({ id: 'hub:org/repo/onnx/sub@main', repo: 'org/repo', folder: 'onnx/sub' });
    expect(entryFromParam('nonsense')).toBeUndefined();
    expect(entryFromParam('')).toBeUndefined();
    expect(() => customEntry('bad id with spaces/x')).toThrow(/not a Hub repo id/);
  });

  it('builds Hub URLs in the resolve and tree layouts', () => {
    expect(resolveUrl('https://hf.co', 'org/r', 'abc', 'onnx/model q.onnx')).toBe('https://hf.co/org/r/resolve/abc/onnx/model%20q.onnx');
    expect(treeUrl('https://hf.co', 'org/r', 'main', 'a/b', true)).toBe('https://hf.co/api/models/org/r/tree/main/a/b?recursive=true');
  });

  it('discovers graph, external data and config files for a custom repo', () => {
    const tree = [
      'config.json',
      'tokenizer.json',
      'cpu/model.onnx',
      'cpu/model.onnx.data',
      'cpu/genai_config.json',
      'onnx/other.onnx',
    ].map((path) => ({ type: 'file', path }));
    expect(discoverFiles('cpu', tree)).toEqual([
      { path: 'cpu/model.onnx', role: 'graph' },
      { path: 'cpu/model.onnx.data', role: 'weights' },
      { path: 'config.json', role: 'config' },
      { path: 'cpu/genai_config.json', role: 'config' },
      { path: 'tokenizer.json', role: 'tokenizer' },
    ]);
    expect(() => discoverFiles('none', tree)).toThrow(/no \.onnx graph/);
  });
});

describe('parseRepoInput (the "Hub repo id" field)', () => {
  it('takes org/name[/folder] and pasted Hub addresses on the main branch', () => {
    expect(parseRepoInput('  org/repo ')).toEqual({ ok: true, value: 'org/repo' });
    expect(parseRepoInput('org/repo/onnx/sub/')).toEqual({ ok: true, value: 'org/repo/onnx/sub' });
    expect(parseRepoInput('https://huggingface.co/microsoft/Phi-3-mini-4k-instruct-onnx')).toEqual({ ok: true, value: 'microsoft/Phi-3-mini-4k-instruct-onnx' });
    expect(parseRepoInput('https://huggingface.co/microsoft/Phi-3-mini-4k-instruct-onnx/tree/main/cpu_and_mobile/cpu-int4-rtn-block-32')).toEqual({
      ok: true,
      value: 'microsoft/Phi-3-mini-4k-instruct-onnx/cpu_and_mobile/cpu-int4-rtn-block-32',
    });
    expect(parseRepoInput('https://huggingface.co/org/repo/blob/main/onnx/model.onnx?download=true')).toEqual({ ok: true, value: 'org/repo/onnx' });
    expect(entryFromParam((parseRepoInput('https://huggingface.co/org/repo/tree/main/onnx') as { value: string }).value)).toMatchObject({ repo: 'org/repo', folder: 'onnx' });
  });

  it('says what is wrong, with an example, instead of taking it', () => {
    expect(parseRepoInput('')).toMatchObject({ ok: false, error: expect.stringMatching(/^Type a Hub repo id\. Expected org\/name/) });
    expect(parseRepoInput('phi3')).toMatchObject({ ok: false, error: expect.stringMatching(/^"phi3" is not a Hub repo id\. Expected org\/name or org\/name\/folder, e\.g\. /) });
    expect(parseRepoInput('org/repo with space')).toMatchObject({ ok: false });
    expect(parseRepoInput('org/repo/../x y')).toMatchObject({ ok: false });
    expect(parseRepoInput('org/repo/../onnx')).toMatchObject({ ok: false });
    expect(parseRepoInput('https://huggingface.co/org/repo/tree/v2/onnx')).toEqual({ ok: false, error: '"https://huggingface.co/org/repo/tree/v2/onnx" names the revision "v2"; only the main branch can be used here.' });
  });
});
