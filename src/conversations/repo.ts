/**
 * Where conversations are kept: the `ConversationRepo` interface the store is given, and its
 * IndexedDB implementation (via `idb`), one record per conversation in the `conversations`
 * store of the `phi3-chat` database — separate from the model-weights database so clearing one
 * never touches the other. Rule: writes that must be all-or-nothing (import) go through
 * `putMany`, which uses one transaction.
 * Tabs of the app share the database; `BroadcastConversationSync` tells the other tabs which
 * conversation changed so they re-read it instead of showing (and later overwriting) stale text.
 * A newer app version's tab that upgrades the database makes this one close its connection; later
 * writes here then fail with STORAGE_OUTDATED, which asks for a reload (see `open`).
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { outdatedError } from '../storage/model-store';
import type { Conversation } from './types';

export interface ConversationRepo {
  list(): Promise<Conversation[]>;
  /** The `limit` conversations updated last, newest first (what the list shows at page start). */
  listRecent(limit: number): Promise<Conversation[]>;
  /**
   * Up to `limit` conversations in id order, from the first id after `after` (from the start
   * without): every conversation in pieces, each read and decoded in a short task of its own.
   */
  listPage(after: string | undefined, limit: number): Promise<Conversation[]>;
  /** One conversation by id (undefined when there is none): what another tab changed. */
  get(id: string): Promise<Conversation | undefined>;
  put(conversation: Conversation): Promise<void>;
  /** Stores all or none. */
  putMany(conversations: Conversation[]): Promise<void>;
  delete(id: string): Promise<void>;
}

interface ChatDb extends DBSchema {
  conversations: { key: string; value: Conversation; indexes: { updatedAt: number } };
}

export const CHAT_DB_NAME = 'phi3-chat';
const DB_VERSION = 1;

export class IdbConversationRepo implements ConversationRepo {
  private db: Promise<IDBPDatabase<ChatDb>> | undefined;

  constructor(private readonly name = CHAT_DB_NAME) {}

  /**
   * Opens the database on first use. The connection is dropped when it closes under us: a newer
   * app version in another tab upgrading it (this one steps aside, as in model-store.ts) or the
   * browser closing it; the next call opens again, and fails with STORAGE_OUTDATED ("reload this
   * tab") where a newer version now owns the database.
   */
  private open(): Promise<IDBPDatabase<ChatDb>> {
    if (this.db) return this.db;
    const drop = () => {
      if (this.db === opening) this.db = undefined;
    };
    const opening = openDB<ChatDb>(this.name, DB_VERSION, {
      upgrade(db) {
        const store = db.createObjectStore('conversations', { keyPath: 'id' });
        store.createIndex('updatedAt', 'updatedAt');
      },
      blocking(_current, _wanted, event) {
        (event.target as IDBDatabase).close();
        drop();
      },
      terminated: drop,
    }).catch((err: unknown) => {
      drop();
      throw err instanceof DOMException && err.name === 'VersionError' ? outdatedError('saved conversations') : err;
    });
    return (this.db = opening);
  }

  async list(): Promise<Conversation[]> {
    return (await this.open()).getAll('conversations');
  }

  async listRecent(limit: number): Promise<Conversation[]> {
    const tx = (await this.open()).transaction('conversations');
    const recent: Conversation[] = [];
    let cursor = await tx.store.index('updatedAt').openCursor(null, 'prev');
    while (cursor && recent.length < limit) {
      recent.push(cursor.value);
      if (recent.length < limit) cursor = await cursor.continue();
    }
    return recent;
  }

  async listPage(after: string | undefined, limit: number): Promise<Conversation[]> {
    return (await this.open()).getAll('conversations', after === undefined ? undefined : IDBKeyRange.lowerBound(after, true), limit);
  }

  async get(id: string): Promise<Conversation | undefined> {
    return (await this.open()).get('conversations', id);
  }

  async put(conversation: Conversation): Promise<void> {
    await (await this.open()).put('conversations', conversation);
  }

  async putMany(conversations: Conversation[]): Promise<void> {
    const tx = (await this.open()).transaction('conversations', 'readwrite');
    try {
      for (const c of conversations) await tx.store.put(c);
    } catch (err) {
      // A put that fails before reaching the database (e.g. DataCloneError) does not abort the
      // transaction by itself: without this, the records before it would be committed.
      tx.abort();
      await tx.done.catch(() => undefined);
      throw err;
    }
    await tx.done;
  }

  async delete(id: string): Promise<void> {
    await (await this.open()).delete('conversations', id);
  }

  async close(): Promise<void> {
    if (this.db) (await this.db).close();
    this.db = undefined;
  }
}

/** A repo held in memory: for tests of the store and for browsers where IndexedDB is refused. */
export class MemoryConversationRepo implements ConversationRepo {
  private readonly items = new Map<string, Conversation>();

  async list(): Promise<Conversation[]> {
    return [...this.items.values()].map((c) => structuredClone(c));
  }
  async listRecent(limit: number): Promise<Conversation[]> {
    return (await this.list()).sort((a, b) => b.updatedAt - a.updatedAt).slice(0, limit);
  }
  async listPage(after: string | undefined, limit: number): Promise<Conversation[]> {
    // IndexedDB orders string keys by code unit, as sort() and > do.
    const ids = [...this.items.keys()].filter((id) => after === undefined || id > after).sort();
    return ids.slice(0, limit).map((id) => structuredClone(this.items.get(id)!));
  }
  async get(id: string): Promise<Conversation | undefined> {
    const c = this.items.get(id);
    return c && structuredClone(c);
  }
  async put(conversation: Conversation): Promise<void> {
    this.items.set(conversation.id, structuredClone(conversation));
  }
  async putMany(conversations: Conversation[]): Promise<void> {
    for (const c of conversations) this.items.set(c.id, structuredClone(c));
  }
  async delete(id: string): Promise<void> {
    this.items.delete(id);
  }
}

/** Tells other tabs that a conversation changed (was written or deleted). */
export interface ConversationSync {
  notify(id: string): void;
  /** Calls `listener` with the id of each conversation another tab changed; returns unsubscribe. */
  subscribe(listener: (id: string) => void): () => void;
}

export const SYNC_CHANNEL = 'phi3-chat-conversations';

export class BroadcastConversationSync implements ConversationSync {
  private readonly channel: BroadcastChannel;

  constructor(name = SYNC_CHANNEL) {
    this.channel = new BroadcastChannel(name);
  }

  notify(id: string): void {
    this.channel.postMessage({ type: 'changed', id });
  }

  subscribe(listener: (id: string) => void): () => void {
    const onMessage = (e: MessageEvent<unknown>) => {
      const d = e.data;
      if (typeof d === 'object' && d !== null && 'type' in d && d.type === 'changed' && 'id' in d && typeof d.id === 'string') listener(d.id);
    };
    this.channel.addEventListener('message', onMessage);
    return () => this.channel.removeEventListener('message', onMessage);
  }

  close(): void {
    this.channel.close();
  }
}
