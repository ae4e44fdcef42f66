/**
 * The conversation list: new, search (titles and text), open, rename, delete (with an inline
 * confirmation), and import / export of all conversations. Each row is a button to open the
 * conversation plus named buttons for its actions, so everything works from the keyboard.
 * A JSON export dropped on the list imports like "Import JSON…" (each file in turn, each checked
 * whole before anything is stored); any other file dropped there is refused with a word on where
 * model files go.
 * The list shows the newest `LIST_PAGE` rows that match, and a button shows the next page:
 * rendering every row of 2000 chats added 0.3 s to each page start.
 */
import { useRef, useState, type KeyboardEvent } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { useAppStore } from '../store';
import { prepareSearch, searchConversations } from '../conversations/search';
import { downloadFile } from './download';
import { PencilIcon, TrashIcon } from './icons';
import { useFileDrop } from './useFileDrop';

/** Rows the list shows at first, and how many more each "Show more" adds. */
export const LIST_PAGE = 100;

// Remembers the last search so token-by-token store updates do not re-run it.
let memo: { conversations: unknown; query: string; ids: string[] } | null = null;

function useListed() {
  return useAppStore(
    useShallow((s) => {
      if (memo?.conversations !== s.conversations || memo.query !== s.search) {
        memo = { conversations: s.conversations, query: s.search, ids: searchConversations(Object.values(s.conversations), s.search).map((c) => c.id) };
      }
      return memo.ids;
    }),
  );
}

function Row({ id, onOpen }: { id: string; onOpen: () => void }) {
  const title = useAppStore((s) => s.conversations[id]?.title ?? '');
  const active = useAppStore((s) => s.activeId === id);
  const select = useAppStore((s) => s.selectConversation);
  const rename = useAppStore((s) => s.renameConversation);
  const remove = useAppStore((s) => s.deleteConversation);
  const [mode, setMode] = useState<'view' | 'rename' | 'confirm-delete'>('view');
  const [draft, setDraft] = useState(title);
  const [error, setError] = useState<string | null>(null);
  const openRef = useRef<HTMLButtonElement>(null);

  const save = async () => {
    const err = await rename(id, draft);
    setError(err);
    if (!err) {
      setMode('view');
      requestAnimationFrame(() => openRef.current?.focus());
    }
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      void save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      setMode('view');
      setError(null);
    }
  };

  if (mode === 'rename') {
    return (
      <li className="conv-row editing">
        <input
          aria-label={`New title for "${title}"`}
          value={draft}
          // Focus follows the user's own request to rename.
          autoFocus
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKey}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `rename-error-${id}` : undefined}
        />
        <button type="button" className="small" onClick={() => void save()}>
          Save
        </button>
        <button type="button" className="small" onClick={() => setMode('view')}>
          Cancel
        </button>
        {error && (
          <p id={`rename-error-${id}`} className="error" role="alert">
            {error}
          </p>
        )}
      </li>
    );
  }
  if (mode === 'confirm-delete') {
    return (
      <li className="conv-row confirm">
        <span>Delete &ldquo;{title}&rdquo;?</span>
        <button
          type="button"
          className="small danger"
          autoFocus
          onClick={() => {
            void remove(id);
            // The row disappears; keep focus in the sidebar rather than losing it to the page.
            document.querySelector<HTMLElement>('.new-chat')?.focus();
          }}
        >
          Delete
        </button>
        <button type="button" className="small" onClick={() => setMode('view')}>
          Keep
        </button>
      </li>
    );
  }
  return (
    <li className={`conv-row${active ? ' active' : ''}`}>
      <button
        ref={openRef}
        type="button"
        className="conv-open"
        aria-current={active ? 'page' : undefined}
        onClick={() => {
          select(id);
          onOpen();
        }}
      >
        {title}
      </button>
      <button
        type="button"
        className="small icon"
        aria-label={`Rename "${title}"`}
        title="Rename"
        onClick={() => {
          setDraft(title);
          setMode('rename');
        }}
      >
        <PencilIcon />
      </button>
      <button type="button" className="small icon" aria-label={`Delete "${title}"`} title="Delete" onClick={() => setMode('confirm-delete')}>
        <TrashIcon />
      </button>
    </li>
  );
}

type ImportNote = { ok: boolean; text: string } | null;

/** Imports JSON exports one after another; stops at the first that fails, saying which and why. */
function useImportFiles(setResult: (r: ImportNote) => void): (files: File[]) => Promise<void> {
  const importConversations = useAppStore((s) => s.importConversations);
  return async (files) => {
    let count = 0;
    for (const file of files) {
      if (!/\.json$/i.test(file.name) && file.type !== 'application/json') {
        setResult({ ok: false, text: `${file.name} is not a JSON export of conversations, so nothing was imported from it. Model files go on the model panel.` });
        return;
      }
      let text: string;
      try {
        text = await file.text();
      } catch {
        setResult({ ok: false, text: `${file.name} could not be read (a folder?), so nothing was imported from it.` });
        return;
      }
      const r = await importConversations(text);
      if (!r.ok) {
        setResult({ ok: false, text: files.length > 1 ? `${file.name}: ${r.error}${count ? ` (${count} conversation${count === 1 ? '' : 's'} from the files before it ${count === 1 ? 'was' : 'were'} imported.)` : ''}` : r.error });
        return;
      }
      count += r.count;
    }
    setResult({ ok: true, text: `Imported ${count} conversation${count === 1 ? '' : 's'}${files.length > 1 ? ` from ${files.length} files` : ''}.` });
  };
}

function ImportExport({ result, importFiles }: { result: ImportNote; importFiles: (files: File[]) => Promise<void> }) {
  const exportConversations = useAppStore((s) => s.exportConversations);
  const count = useAppStore((s) => Object.keys(s.conversations).length);
  // Until every saved chat is read (a moment after the newest are listed), "all" would miss some.
  const listComplete = useAppStore((s) => s.listComplete);
  const fileRef = useRef<HTMLInputElement>(null);
  return (
    <div className="import-export">
      {/* Above the buttons: the foot grows upwards, so the result arriving moves none of them. */}
      {result && (
        <p className={result.ok ? 'status' : 'error'} role={result.ok ? 'status' : 'alert'} data-testid="import-result">
          {result.text}
        </p>
      )}
      <div className="actions">
        <button type="button" disabled={count === 0 || !listComplete} onClick={() => downloadFile(exportConversations('all', 'json'))}>
          Export all (JSON)
        </button>
        <button type="button" disabled={count === 0 || !listComplete} onClick={() => downloadFile(exportConversations('all', 'md'))}>
          Export all (Markdown)
        </button>
        <button type="button" onClick={() => fileRef.current?.click()}>
          Import JSON…
        </button>
      </div>
      <input
        ref={fileRef}
        type="file"
        accept="application/json,.json"
        className="visually-hidden"
        tabIndex={-1}
        aria-label="Import conversations from a JSON file"
        data-testid="import-file"
        onChange={async (e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) await importFiles([file]);
        }}
      />
    </div>
  );
}

export function Sidebar({ onNavigate }: { onNavigate: () => void }) {
  const ids = useListed();
  const search = useAppStore((s) => s.search);
  const setSearch = useAppStore((s) => s.setSearch);
  const newConversation = useAppStore((s) => s.newConversation);
  const loadState = useAppStore((s) => s.loadState);
  const listComplete = useAppStore((s) => s.listComplete);
  const storageError = useAppStore((s) => s.storageError);
  // Rows shown for the search they were asked for: a new search starts from its newest matches.
  const [paged, setPaged] = useState({ search, rows: LIST_PAGE });
  const shown = paged.search === search ? paged.rows : LIST_PAGE;
  const more = ids.length - shown;
  const [result, setResult] = useState<ImportNote>(null);
  const importFiles = useImportFiles(setResult);
  const drop = useFileDrop((data) => void importFiles([...data.files]));
  return (
    <nav
      className="sidebar"
      aria-label="Conversations"
      {...drop}
    >
      <button
        type="button"
        className="primary new-chat"
        onClick={() => {
          void newConversation();
          onNavigate();
        }}
      >
        New chat
      </button>
      <div role="search" className="search">
        <input
          type="search"
          aria-label="Search conversations"
          placeholder="Search titles and messages"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          // Folding every chat's text takes a while with hundreds of chats: done before the first key.
          onFocus={() => prepareSearch(Object.values(useAppStore.getState().conversations))}
        />
      </div>
      {storageError && (
        <p className="error" role="alert">
          {storageError}
        </p>
      )}
      {/* The list scrolls on its own and import/export stay at the foot: the list arriving from
          IndexedDB, or a search narrowing it, never moves those buttons. */}
      <div className="conv-scroll">
        {loadState === 'loading' && <p role="status">Loading conversations…</p>}
        <ul className="conv-list" aria-label="Saved conversations">
          {ids.slice(0, shown).map((id) => (
            <Row key={id} id={id} onOpen={onNavigate} />
          ))}
        </ul>
        {more > 0 && (
          <button
            type="button"
            className="small show-more"
            onClick={(e) => {
              const list = e.currentTarget.previousElementSibling;
              setPaged({ search, rows: shown + LIST_PAGE });
              // The last page takes this button away: focus goes to the first row it added.
              if (more <= LIST_PAGE) requestAnimationFrame(() => list?.querySelectorAll<HTMLElement>('button.conv-open')[shown]?.focus());
            }}
          >
            Show {Math.min(more, LIST_PAGE)} more ({more} older {search ? 'matches' : 'conversations'})
          </button>
        )}
        {loadState === 'ready' && ids.length === 0 && (listComplete ? <p className="muted">{search ? 'No conversation matches.' : 'No conversations yet.'}</p> : <p role="status">Searching every conversation…</p>)}
      </div>
      <ImportExport result={result} importFiles={importFiles} />
    </nav>
  );
}
