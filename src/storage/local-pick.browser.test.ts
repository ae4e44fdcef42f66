/**
 * Reading a picked or dropped model in Chromium: folders walked through real file-system handles
 * (the origin-private file system gives the same `FileSystemDirectoryHandle` a dropped folder
 * does) and through real `webkitGetAsEntry`-style entries (Chromium's sandboxed file system), a
 * real `DataTransfer` as a page builds one, and the input's `webkitRelativePath`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pickFromInput, readDrop, type DropLike } from './local-pick';
import { uniqueName } from './test-hub';

const MODEL: Record<string, string> = {
  'onnx/model_q4.onnx': 'graph bytes',
  'onnx/model_q4.onnx_data': 'weight bytes, more of them',
  'config.json': '{"model_type":"phi3"}',
  // Hidden: a clone's git objects and a macOS folder record are not part of the model.
  '.git/objects/ab': 'not a model file',
  'onnx/.DS_Store': 'not a model file',
};
const VISIBLE = ['config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data'];

const contents = async (pick: { files: Array<{ path: string; file: File }> }) =>
  Object.fromEntries(await Promise.all(pick.files.map(async (f) => [f.path, await f.file.text()] as const)));
const expected = Object.fromEntries(VISIBLE.map((p) => [p, MODEL[p]]));

// --- The origin-private file system: real FileSystemDirectoryHandle / FileSystemFileHandle. ---
const made: string[] = [];
afterEach(async () => {
  const root = await navigator.storage.getDirectory();
  for (const name of made.splice(0)) await root.removeEntry(name, { recursive: true });
});

async function opfsFolder(files: Record<string, string>): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  const name = uniqueName('Phi-3-mini');
  made.push(name);
  const top = await root.getDirectoryHandle(name, { create: true });
  for (const [path, text] of Object.entries(files)) {
    const parts = path.split('/');
    let dir = top;
    for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
    const writable = await (await dir.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
    await writable.write(text);
    await writable.close();
  }
  return top;
}

/** A drop as Chromium gives it to the handler: items whose handles are folders or files. */
const handleDrop = (handles: FileSystemHandle[]): DropLike => ({
  items: handles.map((h) => ({ kind: 'file', getAsFileSystemHandle: async () => h as never, getAsFile: () => null })),
  files: [],
});

// --- Chromium's sandboxed file system: real FileSystemDirectoryEntry / FileSystemFileEntry. ---
interface SandboxEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  getDirectory(path: string, opts: object, ok: (d: SandboxEntry) => void, fail: (e: unknown) => void): void;
  getFile(path: string, opts: object, ok: (f: SandboxEntry & { createWriter(ok: (w: { write(b: Blob): void; onwriteend: () => void; onerror: (e: unknown) => void }) => void): void }) => void, fail: (e: unknown) => void): void;
}
async function sandboxFolder(files: Record<string, string>): Promise<SandboxEntry> {
  const request = (window as unknown as { webkitRequestFileSystem: (type: number, size: number, ok: (fs: { root: SandboxEntry }) => void, fail: (e: unknown) => void) => void }).webkitRequestFileSystem;
  const fs = await new Promise<{ root: SandboxEntry }>((ok, fail) => request(0, 1 << 20, ok, fail));
  const dirOf = (parent: SandboxEntry, name: string) => new Promise<SandboxEntry>((ok, fail) => parent.getDirectory(name, { create: true }, ok, fail));
  const top = await dirOf(fs.root, uniqueName('Phi-3-mini'));
  for (const [path, text] of Object.entries(files)) {
    const parts = path.split('/');
    let dir = top;
    for (const part of parts.slice(0, -1)) dir = await dirOf(dir, part);
    const entry = await new Promise<Parameters<Parameters<SandboxEntry['getFile']>[2]>[0]>((ok, fail) => dir.getFile(parts[parts.length - 1], { create: true }, ok, fail));
    await new Promise<void>((ok, fail) =>
      entry.createWriter((w) => {
        w.onwriteend = ok;
        w.onerror = fail;
        w.write(new Blob([text]));
      }),
    );
  }
  return top;
}

describe('reading a picked or dropped model', () => {
  it('walks a dropped folder through its handles: its name, the paths below it, hidden files left out', async () => {
    const pick = await readDrop(handleDrop([await opfsFolder(MODEL)]));
    expect(pick.name).toMatch(/^Phi-3-mini/);
    expect(pick.files.map((f) => f.path).sort()).toEqual(VISIBLE);
    expect(await contents(pick)).toEqual(expected);
  });

  it('walks a dropped folder through webkitGetAsEntry entries the same way', async () => {
    const top = await sandboxFolder(MODEL);
    const drop: DropLike = { items: [{ kind: 'file', webkitGetAsEntry: () => top as never, getAsFile: () => null }], files: [] };
    const pick = await readDrop(drop);
    expect(pick.name).toBe(top.name);
    expect(pick.files.map((f) => f.path).sort()).toEqual(VISIBLE);
    expect(await contents(pick)).toEqual(expected);
  });

  it('keeps the top-level names of loose files and folders dropped together, named after the graph', async () => {
    const folder = await opfsFolder(MODEL);
    const onnx = await folder.getDirectoryHandle('onnx');
    const config = await folder.getFileHandle('config.json');
    const pick = await readDrop(handleDrop([onnx, config]));
    expect(pick.name).toBe('model_q4');
    expect(pick.files.map((f) => f.path).sort()).toEqual(VISIBLE);
  });

  it("takes a page-built DataTransfer's files (no folders to walk there)", async () => {
    const dt = new DataTransfer();
    dt.items.add(new File(['g'], 'model_q4f16.onnx'));
    dt.items.add(new File(['w'], 'model_q4f16.onnx_data'));
    dt.items.add(new File(['{}'], 'tokenizer.json'));
    const pick = await readDrop(dt as unknown as DropLike);
    expect(pick.name).toBe('model_q4f16');
    expect(pick.files.map((f) => f.path)).toEqual(['model_q4f16.onnx', 'model_q4f16.onnx_data', 'tokenizer.json']);
  });

  it('refuses a folder of more files than a model has, and a drop with no files, saying what to drop', async () => {
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.txt`, 'x']));
    await expect(readDrop(handleDrop([await opfsFolder(many)]), { maxFiles: 10 })).rejects.toThrow(/more than 10 files.*Drop the folder that holds the model's \.onnx/);
    await expect(readDrop({ items: [], files: [] })).rejects.toThrow(/Nothing in that drop could be read as a file/);
  });

  it('takes a folder picked with the input: its name and the paths below it', () => {
    const file = (path: string) => {
      const f = new File(['x'], path.split('/').pop()!);
      Object.defineProperty(f, 'webkitRelativePath', { value: path });
      return f;
    };
    const pick = pickFromInput(['my-phi3/config.json', 'my-phi3/onnx/model.onnx', 'my-phi3/.git/HEAD'].map(file));
    expect(pick).toMatchObject({ name: 'my-phi3' });
    expect(pick.files.map((f) => f.path)).toEqual(['config.json', 'onnx/model.onnx']);
  });
});
