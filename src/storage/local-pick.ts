/**
 * What the user picked or dropped as a local model, as a name and files with paths relative to
 * the model's folder (what `importLocalFiles` takes). Pure DOM helpers, no storage: the model
 * panel calls them and hands the result to the store.
 *
 * - A folder picked with the file input (`webkitdirectory`): its name, and each file's
 *   `webkitRelativePath` below it.
 * - A drop: folders are walked (Chromium's `getAsFileSystemHandle`, else the `webkitGetAsEntry`
 *   entries of Firefox and Safari, else the flat `files` list, which holds no folder contents).
 *   One folder dropped alone gives its name and the paths below it; anything else keeps the
 *   dropped names at the top (`onnx/model_q4.onnx`, `config.json`) and is named after its graph
 *   file (`model_q4`).
 * - Hidden files and folders (a name starting with ".", such as `.git` or `.cache`) are skipped,
 *   and a walk stops with an error past `MAX_FILES` files: a dropped home folder is refused in
 *   a second instead of being listed for minutes.
 *
 * The handles and entries of a drop can only be taken while its event runs, so `readDrop` takes
 * them at once and walks them afterwards: call it synchronously in the drop handler.
 */
import { AppError } from '../engine/errors';

export interface LocalPick {
  name: string;
  files: Array<{ path: string; file: File }>;
}

export const MAX_FILES = 10_000;

const FALLBACK_NAME = 'local model';
const hidden = (path: string) => path.split('/').some((part) => part.startsWith('.'));

/** A folder picked with `<input type="file" webkitdirectory>`. */
export function pickFromInput(files: File[]): LocalPick {
  const name = files[0]?.webkitRelativePath.split('/')[0] || '';
  const picked = files.map((file) => ({ path: file.webkitRelativePath ? file.webkitRelativePath.split('/').slice(1).join('/') : file.name, file }));
  return named(picked.filter((f) => !hidden(f.path)), name);
}

/** What a walk of a drop found at its top level. */
type Top = { kind: 'file'; file: File } | { kind: 'directory'; name: string; files: Array<{ path: string; file: File }> };

/** The minimal handle and entry shapes walked here (lib.dom lacks `getAsFileSystemHandle` and entry readers' promises). */
interface FileHandleLike {
  kind: 'file';
  name: string;
  getFile(): Promise<File>;
}
interface DirectoryHandleLike {
  kind: 'directory';
  name: string;
  values(): AsyncIterable<FileHandleLike | DirectoryHandleLike>;
}
type HandleLike = FileHandleLike | DirectoryHandleLike;
interface EntryLike {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  file?(ok: (f: File) => void, fail: (e: unknown) => void): void;
  createReader?(): { readEntries(ok: (entries: EntryLike[]) => void, fail: (e: unknown) => void): void };
}
interface DropItemLike {
  kind: string;
  getAsFileSystemHandle?(): Promise<HandleLike | null>;
  webkitGetAsEntry?(): EntryLike | null;
  getAsFile(): File | null;
}
export interface DropLike {
  items?: ArrayLike<DropItemLike>;
  files: ArrayLike<File>;
}

/**
 * Starts reading a drop; call it while the drop event runs. Rejects with a clear error when the
 * drop holds no files or a folder too large to be one model.
 */
export function readDrop(drop: DropLike, { maxFiles = MAX_FILES } = {}): Promise<LocalPick> {
  const items = Array.from(drop.items ?? []).filter((item) => item.kind === 'file');
  // Everything the event gives must be taken now; each source is walked after the event.
  const count = new Counter(maxFiles);
  let tops: Array<Promise<Top[]>>;
  if (items.length && items.every((item) => typeof item.getAsFileSystemHandle === 'function')) {
    tops = items.map((item) => {
      const file = item.getAsFile();
      return item.getAsFileSystemHandle!()
        .then(
          (h) => h,
          () => null,
        )
        .then((h) => (h ? fromHandle(h, count) : fileTop(file)));
    });
  } else if (items.length && items.every((item) => typeof item.webkitGetAsEntry === 'function')) {
    tops = items.map((item) => {
      const entry = item.webkitGetAsEntry!();
      const file = item.getAsFile();
      return entry ? fromEntry(entry, count) : Promise.resolve(fileTop(file));
    });
  } else tops = [Promise.resolve(Array.from(drop.files, (file) => ({ kind: 'file' as const, file })))];
  return Promise.all(tops).then((found) => fromTops(found.flat()));
}

function fileTop(file: File | null): Top[] {
  return file ? [{ kind: 'file', file }] : [];
}

class Counter {
  private n = 0;
  constructor(private readonly max: number) {}
  add(): void {
    if (++this.n > this.max) throw new AppError('BAD_ARGUMENT', `The dropped folder holds more than ${this.max} files, so it is not one model's folder. Drop the folder that holds the model's .onnx and .json files.`);
  }
}

async function fromHandle(handle: HandleLike, count: Counter): Promise<Top[]> {
  if (handle.kind === 'file') return [{ kind: 'file', file: await handle.getFile() }];
  return [{ kind: 'directory', name: handle.name, files: await walkHandle(handle, '', count) }];
}

async function walkHandle(dir: DirectoryHandleLike, prefix: string, count: Counter): Promise<Array<{ path: string; file: File }>> {
  const out: Array<{ path: string; file: File }> = [];
  for await (const child of dir.values()) {
    if (child.name.startsWith('.')) continue;
    const path = prefix + child.name;
    if (child.kind === 'file') {
      count.add();
      out.push({ path, file: await child.getFile() });
    } else out.push(...(await walkHandle(child, `${path}/`, count)));
  }
  return out;
}

async function fromEntry(entry: EntryLike, count: Counter): Promise<Top[]> {
  if (entry.isFile) return [{ kind: 'file', file: await entryFile(entry) }];
  return [{ kind: 'directory', name: entry.name, files: await walkEntry(entry, '', count) }];
}

const entryFile = (entry: EntryLike) => new Promise<File>((ok, fail) => entry.file!(ok, fail));

async function walkEntry(dir: EntryLike, prefix: string, count: Counter): Promise<Array<{ path: string; file: File }>> {
  const reader = dir.createReader!();
  const out: Array<{ path: string; file: File }> = [];
  // readEntries answers in batches (100 at a time in Chromium) until an empty one.
  for (;;) {
    const batch = await new Promise<EntryLike[]>((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) return out;
    for (const child of batch) {
      if (child.name.startsWith('.')) continue;
      const path = prefix + child.name;
      if (child.isFile) {
        count.add();
        out.push({ path, file: await entryFile(child) });
      } else if (child.isDirectory) out.push(...(await walkEntry(child, `${path}/`, count)));
    }
  }
}

function fromTops(tops: Top[]): LocalPick {
  if (!tops.length) throw new AppError('BAD_ARGUMENT', "Nothing in that drop could be read as a file. Drop the model's folder, or its .onnx and .json files.");
  const [only] = tops;
  if (tops.length === 1 && only.kind === 'directory') return named(only.files, only.name);
  const files = tops.flatMap((t) => (t.kind === 'file' ? [{ path: t.file.name, file: t.file }] : t.files.map((f) => ({ path: `${t.name}/${f.path}`, file: f.file }))));
  // The walks skipped hidden names below the top; this skips the dropped ones (a `.cache` beside the files).
  return named(
    files.filter((f) => !hidden(f.path)),
    '',
  );
}

/** `name`, else the graph file's name without `.onnx` (the shortest path's), else "local model". */
function named(files: Array<{ path: string; file: File }>, name: string): LocalPick {
  if (name) return { name, files };
  const graphs = files.filter((f) => f.path.endsWith('.onnx')).sort((a, b) => a.path.length - b.path.length);
  const base = graphs[0]?.path.split('/').pop()?.replace(/\.onnx$/, '');
  return { name: base || FALLBACK_NAME, files };
}
