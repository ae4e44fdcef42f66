/**
 * The model catalog: which Hub repositories, revisions and files make up each model, and where the
 * Hub is. Plain data and pure functions, safe to import from the worker, the store and tests.
 *
 * Rule: never write a size or sha256 here that was not read from the published file. Unknown values
 * stay `undefined` and are filled at run time from the Hub's tree API (`size`, `lfs.oid`); a
 * revision that is not a commit ("main") is resolved to a commit before the first byte is fetched,
 * and the manifest pins that commit so a resumed download never mixes two revisions.
 */

export type FileRole = 'graph' | 'weights' | 'config' | 'tokenizer';

export interface CatalogFile {
  /** Path inside the repository, e.g. `onnx/model_q4f16.onnx`. */
  path: string;
  role: FileRole;
  /** Bytes, when known from the published file; otherwise read from the tree API. */
  size?: number;
  /** Lowercase hex sha256 (the Hub's `lfs.oid`), when known; otherwise read from the tree API. */
  sha256?: string;
  /** Skipped when the tree API does not list it (a file not confirmed in that repo). */
  optional?: boolean;
}

export interface CatalogEntry {
  /** Stable id used in URLs (`?model=`) and as the storage key. */
  id: string;
  name: string;
  /** `org/name` on the Hub. */
  repo: string;
  /** A commit sha, or a branch name resolved (and pinned) at download time. */
  revision: string;
  /** The folder the graph lives in ('' for the root). */
  folder: string;
  contextLength: number;
  /** Rough total for the UI before the tree API has answered. */
  approxBytes?: number;
  /** Every file the model needs. `undefined` for custom entries: discovered from the tree API. */
  files?: CatalogFile[];
  note: string;
}

const ROOT_FILES: CatalogFile[] = [
  { path: 'config.json', role: 'config' },
  { path: 'genai_config.json', role: 'config' },
  { path: 'generation_config.json', role: 'config' },
  { path: 'tokenizer.json', role: 'tokenizer' },
  { path: 'tokenizer_config.json', role: 'tokenizer' },
  { path: 'special_tokens_map.json', role: 'tokenizer' },
  { path: 'added_tokens.json', role: 'tokenizer' },
];

const in128k = (p: string) => `cpu_and_mobile/cpu-int4-rtn-block-32/${p}`;

/**
 * No commit of these repositories could be read from this build environment (huggingface.co is not
 * reachable), so each entry names `main` and the downloader pins the commit `main` points to when
 * the download starts. Sizes and sha256s come from the tree API of that commit for the same reason.
 */
export const CATALOG: readonly CatalogEntry[] = [
  {
    id: 'phi-3-mini-4k-q4f16',
    name: 'Phi-3 Mini 4K Instruct (int4, fp16 activations)',
    repo: 'microsoft/Phi-3-mini-4k-instruct-onnx-web',
    revision: 'main',
    folder: 'onnx',
    contextLength: 4096,
    approxBytes: 2_290_000_000,
    files: [
      { path: 'onnx/model_q4f16.onnx', role: 'graph' },
      { path: 'onnx/model_q4f16.onnx_data', role: 'weights' },
      ...ROOT_FILES,
    ],
    note: 'The smaller web build: fp16 scales, about 430 MB less to download. The native engine runs it on any WebGPU GPU; the onnxruntime-web engine needs the shader-f16 feature for it.',
  },
  {
    id: 'phi-3-mini-4k-q4',
    name: 'Phi-3 Mini 4K Instruct (int4, fp32 activations)',
    repo: 'microsoft/Phi-3-mini-4k-instruct-onnx-web',
    revision: 'main',
    folder: 'onnx',
    contextLength: 4096,
    approxBytes: 2_720_000_000,
    files: [
      { path: 'onnx/model_q4.onnx', role: 'graph' },
      { path: 'onnx/model_q4.onnx_data', role: 'weights' },
      ...ROOT_FILES,
    ],
    note: 'The same int4 weights with fp32 scales and activations, about 430 MB more to download. Pick it to use the onnxruntime-web engine on a GPU without shader-f16. The native engine runs either build and stores this one\'s scales as fp16 on the GPU, so both take the same GPU memory.',
  },
  {
    id: 'phi-3-mini-128k-int4',
    name: 'Phi-3 Mini 128K Instruct (int4 RTN, block 32)',
    repo: 'microsoft/Phi-3-mini-128k-instruct-onnx',
    revision: 'main',
    folder: 'cpu_and_mobile/cpu-int4-rtn-block-32',
    contextLength: 131072,
    approxBytes: 2_720_000_000,
    files: [
      { path: in128k('phi3-mini-128k-instruct-cpu-int4-rtn-block-32.onnx'), role: 'graph' },
      { path: in128k('phi3-mini-128k-instruct-cpu-int4-rtn-block-32.onnx.data'), role: 'weights' },
      ...ROOT_FILES.filter((f) => f.path !== 'generation_config.json').map((f) => ({ ...f, path: in128k(f.path) })),
    ],
    note:
      'There is no web build for 128K. This folder is chosen because its MatMulNBits use block 32 (the block size the ' +
      'WGSL kernels share with the 4K web build), round-to-nearest weights, fp32 scales (no shader-f16 needed; the native ' +
      'engine stores them as fp16 on the GPU, 430 MB less) and ' +
      'accuracy_level 0, so the reference output is plain fp32 math. The `-acc-level-4` sibling quantises activations ' +
      'to int8 on the CPU, the CUDA build needs fp16, and the DirectML build is AWQ block 128. The data file may exceed 2 GB: ' +
      'it is stored and read in chunks, never as one buffer.',
  },
  {
    id: 'phi-3.5-mini-q4f16',
    name: 'Phi-3.5 Mini Instruct (int4, fp16 activations, 128K)',
    repo: 'onnx-community/Phi-3.5-mini-instruct-onnx-web',
    revision: 'main',
    folder: 'onnx',
    contextLength: 131072,
    approxBytes: 2_300_000_000,
    files: [
      { path: 'onnx/model_q4f16.onnx', role: 'graph' },
      { path: 'onnx/model_q4f16.onnx_data', role: 'weights' },
      { path: 'config.json', role: 'config' },
      { path: 'generation_config.json', role: 'config', optional: true },
      { path: 'tokenizer.json', role: 'tokenizer' },
      { path: 'tokenizer_config.json', role: 'tokenizer' },
      { path: 'special_tokens_map.json', role: 'tokenizer', optional: true },
      { path: 'added_tokens.json', role: 'tokenizer', optional: true },
    ],
    note:
      'The successor model, an extra; transformers.js layout (graph and weights under onnx/). Which JSON files ' +
      'beside tokenizer.json it ships was not confirmed here, so those are optional.',
  },
];

export const DEFAULT_HUB = 'https://huggingface.co';

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** A catalog entry for any Hub repo (and folder), its files discovered from the tree API. */
export function customEntry(repo: string, folder = '', revision = 'main'): CatalogEntry {
  if (!REPO_ID.test(repo)) throw new Error(`"${repo}" is not a Hub repo id (expected org/name)`);
  const f = folder.replace(/^\/+|\/+$/g, '');
  return {
    id: `hub:${repo}${f ? `/${f}` : ''}@${revision}`,
    name: `${repo}${f ? ` (${f})` : ''}`,
    repo,
    revision,
    folder: f,
    contextLength: 0,
    note: 'Custom model: files are discovered from the Hub tree API.',
  };
}

/**
 * What the user typed or pasted in the "Hub repo id" field, as `org/name[/folder]` (what
 * `?model=` and `entryFromParam` take), or what is wrong with it. Besides `org/name/folder` it
 * takes a pasted Hub page address (`https://huggingface.co/org/name`, with `/tree/main/<folder>`
 * or `/blob/main/<file>`: the file's folder). Only the main branch can be named here: another
 * branch or commit in the address is refused rather than silently replaced by main.
 */
export function parseRepoInput(text: string): { ok: true; value: string } | { ok: false; error: string } {
  const example = 'Expected org/name or org/name/folder, e.g. microsoft/Phi-3-mini-4k-instruct-onnx/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4';
  let t = text.trim();
  if (!t) return { ok: false, error: `Type a Hub repo id. ${example}.` };
  const url = /^https?:\/\/[^/]+\/(.*)$/i.exec(t);
  if (url) t = url[1].replace(/[?#].*$/, '');
  t = t.replace(/^\/+|\/+$/g, '');
  const [org = '', name = '', ...rest] = t.split('/');
  if (rest[0] === 'tree' || rest[0] === 'blob' || rest[0] === 'resolve') {
    const [kind, revision, ...path] = rest;
    if (revision !== 'main') return { ok: false, error: `"${text.trim()}" names the revision "${revision ?? ''}"; only the main branch can be used here.` };
    // A file's address names the folder it sits in.
    rest.splice(0, rest.length, ...(kind === 'tree' ? path : path.slice(0, -1)));
  }
  if (!REPO_ID.test(`${org}/${name}`) || rest.some((p) => !/^[\w.-]+$/.test(p) || /^\.+$/.test(p))) {
    return { ok: false, error: `"${text.trim()}" is not a Hub repo id. ${example}.` };
  }
  return { ok: true, value: [org, name, ...rest].join('/') };
}

/** `?model=<catalog id | org/name[/folder]>`: the entry to preselect, or undefined. */
export function entryFromParam(model: string | null | undefined): CatalogEntry | undefined {
  if (!model) return undefined;
  const known = CATALOG.find((e) => e.id === model);
  if (known) return known;
  const [org, name, ...rest] = model.split('/');
  if (!org || !name) return undefined;
  try {
    return customEntry(`${org}/${name}`, rest.join('/'));
  } catch {
    return undefined;
  }
}

/** The Hub base URL: `?hub=<base>`, then the build-time `VITE_HUB_URL`, then huggingface.co. No trailing slash. */
export function hubBaseUrl(search: string, buildTime: string | undefined): string {
  const fromUrl = new URLSearchParams(search).get('hub');
  const base = fromUrl || buildTime || DEFAULT_HUB;
  const u = new URL(base);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`hub URL "${base}" must be http(s)`);
  return base.replace(/\/+$/, '');
}

/** `<hub>/<repo>/resolve/<revision>/<path>` — may answer with a redirect to a CDN host. */
export function resolveUrl(hub: string, repo: string, revision: string, path: string): string {
  return `${hub}/${repo}/resolve/${encodeURIComponent(revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

export function treeUrl(hub: string, repo: string, revision: string, folder: string, recursive = false): string {
  const f = folder ? `/${folder.split('/').map(encodeURIComponent).join('/')}` : '';
  return `${hub}/api/models/${repo}/tree/${encodeURIComponent(revision)}${f}${recursive ? '?recursive=true' : ''}`;
}

export function revisionUrl(hub: string, repo: string, revision: string): string {
  return `${hub}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
}

const CONFIG_NAMES = new Set(ROOT_FILES.map((f) => f.path));

/**
 * The files a custom entry needs, from a recursive tree listing of its folder (and root): one
 * `.onnx` graph (the q4f16/q4 web builds preferred in that order), its external data file
 * (`<graph>_data` or `<graph>.data`), and the config/tokenizer files present.
 */
export function discoverFiles(folder: string, tree: Array<{ type: string; path: string }>): CatalogFile[] {
  const files = tree.filter((e) => e.type === 'file').map((e) => e.path);
  const inFolder = (p: string) => (folder ? p.startsWith(`${folder}/`) : true);
  const graphs = files.filter((p) => inFolder(p) && p.endsWith('.onnx')).sort();
  const preferred = ['model_q4f16.onnx', 'model_q4.onnx', 'model.onnx'];
  const graph = preferred.map((n) => graphs.find((g) => g.endsWith(`/${n}`) || g === n)).find(Boolean) ?? graphs[0];
  if (!graph) throw new Error(`no .onnx graph under "${folder || '/'}"`);
  const out: CatalogFile[] = [{ path: graph, role: 'graph' }];
  const data = files.find((p) => p === `${graph}_data` || p === `${graph}.data`);
  if (data) out.push({ path: data, role: 'weights' });
  const graphDir = graph.includes('/') ? graph.slice(0, graph.lastIndexOf('/')) : '';
  for (const name of CONFIG_NAMES) {
    const here = [graphDir ? `${graphDir}/${name}` : name, name, folder ? `${folder}/${name}` : name].find((p) => files.includes(p));
    if (here && !out.some((f) => f.path === here)) out.push({ path: here, role: name.startsWith('tokenizer') || name.includes('token') ? 'tokenizer' : 'config' });
  }
  return out;
}
