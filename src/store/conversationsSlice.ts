/**
 * Conversations slice: the list, the open conversation, search, rename/delete, branch
 * selection, import and export. Every change goes through `commit`, which updates state first
 * (the UI never waits on IndexedDB) and then writes the record; a failed write is shown, not
 * swallowed. Rule: components never touch the repo — they call these actions. The same goes
 * for the unsent message of each conversation (`draftOf` / `saveDraft`, kept by drafts.ts).
 * At page start the chats updated last come first and the rest follows in pages
 * (`loadConversations`): anything that needs every chat (import's id check, Export all) waits
 * for `listComplete`.
 */
import type { StateCreator } from 'zustand';
import type { AppState, Services } from './index';
import { ROOT, type Conversation } from '../conversations/types';
import { createConversation, DEFAULT_TITLE, newId, selectBranch as selectBranchIn } from '../conversations/tree';
import type { ConversationSettings } from '../conversations/types';
import { sameSettings } from '../conversations/settings';
import { exportFileName, exportJson, exportMarkdown } from '../conversations/exportFormats';
import { parseImport } from '../conversations/importValidation';
import { prepareSearch } from '../conversations/search';
import { IMPORT_LIMITS } from '../conversations/importValidation';

export const TITLE_MAX_CHARS = IMPORT_LIMITS.titleChars;

export interface ExportedFile {
  fileName: string;
  mime: string;
  text: string;
}

export type ImportResult = { ok: true; count: number } | { ok: false; error: string };

export interface ConversationsSlice {
  conversations: Record<string, Conversation>;
  activeId: string | null;
  /**
   * 'ready' once the conversations updated last are in `conversations` (`loadConversations`);
   * whether every other one is too, `listComplete` says.
   */
  loadState: 'idle' | 'loading' | 'ready' | 'error';
  /**
   * Every saved conversation is in `conversations`. Until then (a fraction of a second after
   * 'ready' with thousands of chats) only the newest `RECENT_FIRST` are: searching, exporting all
   * and importing wait for the rest.
   */
  listComplete: boolean;
  search: string;
  /** The last failed IndexedDB write or load, in words; cleared by the next success. */
  storageError: string | null;
  loadConversations: () => Promise<void>;
  /**
   * Opens a new, empty conversation and returns its id. While the open one is still untouched
   * (no messages, its first title, the settings new chats start from), that one stays open
   * instead: pressing New chat twice does not leave empty "New chat" rows behind.
   */
  newConversation: () => Promise<string>;
  selectConversation: (id: string | null) => void;
  /** Returns an error message for an invalid title, else null. */
  renameConversation: (id: string, title: string) => Promise<string | null>;
  deleteConversation: (id: string) => Promise<void>;
  setSearch: (query: string) => void;
  /** Shows the sibling branch `messageId` in the open conversation. */
  selectBranch: (messageId: string) => Promise<void>;
  importConversations: (text: string) => Promise<ImportResult>;
  exportConversations: (ids: string[] | 'all', format: 'json' | 'md') => ExportedFile;
  /** The unsent message kept for conversation `id` (null: before any conversation exists). */
  draftOf: (id: string | null) => string;
  /** Keeps `text` as the unsent message of conversation `id`; '' forgets it. */
  saveDraft: (id: string | null, text: string) => void;
  /** Calls `listener` with each draft another tab saves ('' when it sends or clears one); returns unsubscribe. */
  watchDrafts: (listener: (id: string | null, text: string) => void) => () => void;
  /** Internal to the store: set a conversation in state and persist it. */
  commit: (conversation: Conversation) => Promise<void>;
  /** Reads conversation `id` again from storage, as when another tab names it (an answer this tab is writing in it stays this tab's). */
  reloadConversation: (id: string) => Promise<void>;
}

/**
 * Conversations read first at page start, newest first: the list's first page (the sidebar shows
 * 100) and the chat that opens. The rest follow in pages of `LIST_PAGE_READ`, each read and
 * decoded in a task of its own: reading all 2000 of a 34 MB history at once kept the list off the
 * screen, and the page unresponsive, for about 300 ms (npm run bench:startup, docs/chat.md).
 */
const RECENT_FIRST = 100;
const LIST_PAGE_READ = 100;

/** IndexedDB writes started by `commit` and not yet finished (all stores in this page). */
const pendingWrites = new Set<Promise<unknown>>();

/** Resolves once every conversation write started so far has finished; a reload waits for it. */
export async function whenSaved(): Promise<void> {
  while (pendingWrites.size) await Promise.allSettled([...pendingWrites]);
}

/**
 * `stored` (another tab's save) with this tab's copy of the answer `messageId` it is writing, and
 * that answer selected: the other tab's copy of it is older (it has only what this tab saved).
 */
function withOwnAnswer(stored: Conversation, mine: Conversation, messageId: string): Conversation {
  const own = mine.messages.find((m) => m.id === messageId);
  if (!own) return stored;
  const messages = stored.messages.some((m) => m.id === messageId) ? stored.messages.map((m) => (m.id === messageId ? own : m)) : [...stored.messages, own];
  return { ...stored, messages, activeChild: { ...stored.activeChild, [own.parentId ?? ROOT]: own.id } };
}

/** A conversation as New chat made it: nothing sent, renamed or set in it since. */
function untouched(conv: Conversation, newChat: ConversationSettings): boolean {
  return conv.messages.length === 0 && conv.title === DEFAULT_TITLE && sameSettings(conv.settings, newChat);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const createConversationsSlice =
  (services: Services): StateCreator<AppState, [], [], ConversationsSlice> =>
  (set, get) => {
    let listening = false;
    /** Settles when every saved conversation is in state (rejects when reading them failed). */
    let listed: Promise<void> = Promise.resolve();
    /** For each read of the rest of the list under way, the conversations deleted (here or in another tab) meanwhile: not put back. */
    const goneWhileListing = new Set<Set<string>>();
    const gone = (id: string) => goneWhileListing.forEach((ids) => ids.add(id));

    /**
     * Another tab changed conversation `id`: take its stored version. Only that record is read:
     * every save in another tab (each message, each answer) lands here, and reading all
     * conversations took 292 ms for 2000 chats. While this tab answers in it, the answer being
     * written stays this tab's, and shown (`withOwnAnswer`): this tab's saves build on the result,
     * so they keep what the other tab did meanwhile (a rename, a message sent there). Before, this
     * tab ignored those changes and its next save undid them.
     */
    async function onRemoteChange(id: string): Promise<void> {
      let stored: Conversation | undefined;
      try {
        stored = await services.conversations.get(id);
      } catch {
        return;
      }
      set((s) => {
        const { [id]: old, ...rest } = s.conversations;
        const streaming = s.chat.streaming;
        if (stored && old && streaming?.conversationId === id) stored = withOwnAnswer(stored, old, streaming.messageId);
        const conversations = stored ? { ...rest, [id]: stored } : rest;
        const activeId = s.activeId === id && !stored ? null : s.activeId;
        return { conversations, activeId };
      });
      if (!stored) gone(id);
    }

    /** Reads every saved conversation past the first `RECENT_FIRST`, a page per task, into state. */
    async function listTheRest(): Promise<void> {
      const deleted = new Set<string>();
      goneWhileListing.add(deleted);
      const all: Record<string, Conversation> = {};
      try {
        for (let after: string | undefined; ; ) {
          const page = await services.conversations.listPage(after, LIST_PAGE_READ);
          for (const c of page) all[c.id] = c;
          // A search typed meanwhile would fold every chat read at once when they are listed.
          if (get().search.trim()) prepareSearch(page);
          if (page.length < LIST_PAGE_READ) break;
          after = page[page.length - 1].id;
        }
      } catch (err) {
        set({ storageError: `Could not read every saved conversation (${describe(err)}): only the ${RECENT_FIRST} updated last are listed. Reload the page to try again.` });
        throw err;
      } finally {
        goneWhileListing.delete(deleted);
      }
      for (const id of deleted) delete all[id];
      // What state holds wins: it is what was read first, or newer (a message, a rename, another tab's save).
      set((s) => ({ conversations: { ...all, ...s.conversations }, listComplete: true }));
    }


    return {
      conversations: {},
      activeId: null,
      loadState: 'idle',
      listComplete: false,
      search: '',
      storageError: null,

      loadConversations: async () => {
        set({ loadState: 'loading' });
        if (!listening && services.sync) {
          listening = true;
          services.sync.subscribe((id) => void onRemoteChange(id));
        }
        listed = (async () => {
          let recent: Conversation[];
          try {
            recent = await services.conversations.listRecent(RECENT_FIRST);
          } catch (err) {
            set({ loadState: 'error', storageError: `Could not read saved conversations: ${describe(err)}` });
            throw err;
          }
          const conversations: Record<string, Conversation> = {};
          for (const c of recent) conversations[c.id] = c;
          const complete = recent.length < RECENT_FIRST;
          // Anything created while the list was being read wins over what was read.
          set((s) => ({ conversations: { ...conversations, ...s.conversations }, loadState: 'ready', listComplete: complete, storageError: null, activeId: s.activeId ?? recent[0]?.id ?? null }));
          if (!complete) await listTheRest();
        })();
        // Failures are in state (storageError); an import waiting on `listed` reports its own.
        await listed.catch(() => undefined);
      },

      reloadConversation: onRemoteChange,

      commit: async (conversation) => {
        set((s) => ({ conversations: { ...s.conversations, [conversation.id]: conversation } }));
        const write = services.conversations.put(conversation);
        pendingWrites.add(write);
        try {
          await write;
          services.sync?.notify(conversation.id);
          if (get().storageError) set({ storageError: null });
        } catch (err) {
          set({ storageError: `Could not save "${conversation.title}": ${describe(err)}` });
        } finally {
          pendingWrites.delete(write);
        }
      },

      newConversation: async () => {
        const settings = get().newChatSettings();
        const open = get().activeId ? get().conversations[get().activeId!] : undefined;
        if (open && untouched(open, settings)) {
          set((s) => ({ search: '', chat: { ...s.chat, error: null } }));
          return open.id;
        }
        const conv = createConversation(services.now(), undefined, settings);
        if (!open) {
          // What was typed before any conversation existed goes on in the first one.
          const typed = get().draftOf(null);
          get().saveDraft(conv.id, typed);
          get().saveDraft(null, '');
        }
        set((s) => ({ activeId: conv.id, search: '', chat: { ...s.chat, error: null } }));
        await get().commit(conv);
        return conv.id;
      },

      selectConversation: (id) => {
        if (id === null || get().conversations[id]) set((s) => ({ activeId: id, chat: { ...s.chat, error: null } }));
      },

      renameConversation: async (id, title) => {
        const conv = get().conversations[id];
        if (!conv) return `No conversation with id "${id}".`;
        const t = title.trim().replace(/\s+/g, ' ');
        if (!t) return 'A title cannot be empty.';
        if (t.length > TITLE_MAX_CHARS) return `A title must be at most ${TITLE_MAX_CHARS} characters; this one has ${t.length}.`;
        await get().commit({ ...conv, title: t, updatedAt: services.now() });
        return null;
      },

      deleteConversation: async (id) => {
        get().saveDraft(id, '');
        const streaming = get().chat.streaming;
        if (streaming?.conversationId === id) get().stop();
        gone(id);
        set((s) => {
          const { [id]: _gone, ...rest } = s.conversations;
          const activeId = s.activeId === id ? (Object.values(rest).sort((a, b) => b.updatedAt - a.updatedAt)[0]?.id ?? null) : s.activeId;
          return { conversations: rest, activeId };
        });
        try {
          await services.conversations.delete(id);
          services.sync?.notify(id);
        } catch (err) {
          set({ storageError: `Could not delete the conversation: ${describe(err)}` });
        }
      },

      setSearch: (query) => set({ search: query }),

      draftOf: (id) => services.drafts?.read(id) ?? '',
      saveDraft: (id, text) => services.drafts?.write(id, text),
      watchDrafts: (listener) => services.drafts?.subscribe(listener) ?? (() => {}),

      selectBranch: async (messageId) => {
        const id = get().activeId;
        const conv = id ? get().conversations[id] : undefined;
        if (!conv) return;
        await get().commit(selectBranchIn(conv, messageId));
      },

      importConversations: async (text) => {
        let incoming: Conversation[];
        try {
          incoming = parseImport(text);
        } catch (err) {
          return { ok: false, error: `Nothing was imported. ${describe(err)}` };
        }
        // An id that already exists here gets a fresh one: import never overwrites. So every
        // saved conversation must be known first.
        try {
          await listed;
        } catch (err) {
          return { ok: false, error: `Nothing was imported: the saved conversations could not all be read (${describe(err)}), so an imported one might replace one of them. Reload the page and try again.` };
        }
        const existing = get().conversations;
        const fresh = incoming.map((c) => (existing[c.id] ? { ...c, id: newId() } : c));
        try {
          await services.conversations.putMany(fresh);
        } catch (err) {
          return { ok: false, error: `Nothing was imported: saving failed (${describe(err)}).` };
        }
        for (const c of fresh) services.sync?.notify(c.id);
        set((s) => {
          const conversations = { ...s.conversations };
          for (const c of fresh) conversations[c.id] = c;
          return { conversations, activeId: fresh[0]?.id ?? s.activeId };
        });
        return { ok: true, count: fresh.length };
      },

      exportConversations: (ids, format) => {
        const all = get().conversations;
        const list = (ids === 'all' ? Object.values(all) : ids.map((i) => all[i]).filter(Boolean)).sort((a, b) => a.createdAt - b.createdAt);
        const base = ids !== 'all' && list.length === 1 ? list[0].title : 'phi3-chat-conversations';
        return format === 'json'
          ? { fileName: exportFileName(base, 'json'), mime: 'application/json', text: exportJson(list, services.now()) }
          : { fileName: exportFileName(base, 'md'), mime: 'text/markdown', text: exportMarkdown(list) };
      },
    };
  };
