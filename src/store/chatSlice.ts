/**
 * Chat slice: sending, streaming, stopping, regenerating, continuing and editing. Each answer is a
 * new assistant message in the conversation tree; regenerate adds a sibling answer and edit adds a
 * sibling question, so nothing the user saw is ever overwritten; continue only appends to an
 * answer that was cut off. The prompt is cut to the context window by `planContext` (see its
 * header for the policy) and the answer records what was left out. A message sent before the
 * model is ready waits for it. Streamed text reaches the store at most once per frame
 * (`deltaBatcher`).
 *
 * Reading ahead (`Services.prepareDelayMs`): while the model is ready and no answer streams, the
 * open conversation is read into the model's KV cache shortly after it is opened or changes
 * (`prepareAhead`), so the next message's answer prefills only that message: a long chat reopened
 * after a reload, or picked from the sidebar after another, answers as fast as one never left. It
 * is cut by the same context policy a send would use, and it stops as soon as anything else needs
 * the engine (the worker stops it at its next chunk when an answer starts). The user can turn it
 * off (`setReadAhead`, saved in `Services.readAhead`): it spends GPU time, and battery, on chats
 * opened only to be read.
 * Rule: one generation at a time; the AbortController lives here, never in the UI.
 */
import type { StateCreator } from 'zustand';
import type { AppState, PromptCount, Services } from './index';
import type { ChatMessage, GenerationStats } from '../engine/types';
import type { Conversation, ContextNote, MessageNode } from '../conversations/types';
import { addMessage, newId, pathTo, selectedPath, titleFrom, updateMessage, DEFAULT_TITLE } from '../conversations/tree';
import { planContext } from '../conversations/contextPolicy';
import type { ModelStatus } from './modelSlice';

export interface Streaming {
  conversationId: string;
  messageId: string;
  text: string;
  /** Set while the answer waits for the model to be listed, downloaded or loaded (`untilModelSettles`). */
  waitingForModel?: boolean;
  /**
   * The prompt's tokens once counted, and the tokens written since: the context meter follows
   * the answer as it streams instead of showing the last finished answer's figure.
   */
  tokens?: { prompt: number; generated: number };
  /**
   * A long prompt being read (prefill, native engine): `done` of `total` tokens. Shown only while
   * the answer has no text (MessageItem's `Thinking`), so a report that lands after the first token
   * changes nothing. `again`: mid-answer, the whole chat is being read again (PrefillReport),
   * shown under the text until the next token, which clears it.
   */
  prefill?: { done: number; total: number; again?: boolean };
}

/**
 * Gathers an answer's token deltas and hands them on at most once per `schedule` tick (the next
 * frame, in the app): a GPU that writes hundreds of tokens a second would otherwise make the page
 * render, lay out and scroll once per token, more work than a frame can hold, so the text fell
 * behind the model and the page stuttered. Without `schedule` every delta is handed on at once.
 * `flush` hands on what is pending now (the answer's end).
 */
export function deltaBatcher(schedule: ((run: () => void) => void) | undefined, apply: (text: string, tokens: number) => void) {
  let text = '';
  let tokens = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!text && !tokens) return;
    const [t, n] = [text, tokens];
    text = '';
    tokens = 0;
    apply(t, n);
  };
  return {
    push(delta: string, newTokens: number) {
      text += delta;
      tokens += newTokens;
      if (!schedule) flush();
      else if (!scheduled) {
        scheduled = true;
        schedule(flush);
      }
    },
    flush,
  };
}

/**
 * The app's `Services.nextFrame`: the next animation frame while the page is visible; a hidden
 * page paints no frames, so there a timer (which browsers slow to once a second) hands the text on.
 */
export function nextFrame(run: () => void): void {
  if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && document.visibilityState === 'visible') requestAnimationFrame(() => run());
  else setTimeout(run, 100);
}

/**
 * What an answer saved while it streams says until it ends (`Services.streamSaveMs`): if the page
 * closes, reloads or crashes first, the text so far stays with this note and Continue writes the
 * rest (an answer with an error can be continued). Its end replaces the note.
 */
export const CUT_OFF = 'This answer was cut off: the page closed or reloaded while it was being written. Continue writes the rest.';

/**
 * What an answer says when the model is on the GPU in another tab of the app, which this tab does
 * not load a second copy of by itself (modelLock.ts). The engine's own "No model is loaded:
 * download or load one" would send the user to download what is already stored.
 */
export const IN_OTHER_TAB = 'The model is on the GPU in another tab of this app, so this tab has not loaded it. Chat in that tab, or press "Load here too" in the model panel (it takes as much GPU memory again); this tab also loads it by itself once that tab closes.';

/** Model states that end by themselves in 'ready' or in a state that says why not. */
const SETTLING: readonly ModelStatus[] = ['checking', 'downloading', 'loading'];

export interface ContextUse {
  used: number;
  limit: number;
  droppedMessages: number;
}

export interface ChatSlice {
  chat: {
    streaming: Streaming | null;
    /**
     * The conversation the model's KV cache holds up to its next message (`prepareAhead`), and
     * how many tokens that is; null while none is, or once something else used the engine.
     */
    prepared: { conversationId: string; tokens: number } | null;
    /** Why the last request could not start or failed, in words; cleared by the next request. */
    error: string | null;
    /** Tokens the open conversation used at its last answer, against the model's context. */
    context: ContextUse | null;
  };
  /** Sends `text` as a new user message on the selected path of the open conversation. */
  send: (text: string) => Promise<void>;
  /** Stops the answer being generated; the text so far is kept. */
  stop: () => void;
  /** Generates another answer beside the assistant message `messageId` (a new branch). */
  regenerate: (messageId: string) => Promise<void>;
  /**
   * Writes more of the assistant message `messageId`, one that did not finish (`canContinue`),
   * onto its text: the model sees the answer so far and goes on from its last word. The stats
   * then describe the continuation. The context policy keeps the answer's question with it.
   */
  continueAnswer: (messageId: string) => Promise<void>;
  /** Sends `text` as a new version of the user message `messageId` (a new branch). */
  edit: (messageId: string, text: string) => Promise<void>;
  /**
   * For an answer saved with the cut-off note: `onChange(true)` when another tab is still
   * writing it (answerLocks.ts), then, once it ends there or that tab goes, the conversation is
   * read again and `onChange(false)`; `onChange(false)` at once when no tab is. Stops at `signal`.
   */
  watchAnswer: (conversationId: string, messageId: string, onChange: (elsewhere: boolean) => void, signal: AbortSignal) => Promise<void>;
  /** Whether the open chat is read ahead while the model is idle (saved in `Services.readAhead`). */
  readAhead: boolean;
  /** Turns reading ahead on or off (off stops a read under way) and saves the choice. */
  setReadAhead: (on: boolean) => void;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether an answer can be continued: it has text and did not finish, because it hit the token
 * limit or the context's end, was stopped, or failed midway (a lost GPU, say).
 */
export function canContinue(m: MessageNode): boolean {
  if (m.role !== 'assistant' || m.content.trim() === '') return false;
  const stop = m.stats?.stopReason;
  return m.error !== undefined || stop === 'max-tokens' || stop === 'aborted' || stop === 'context-full';
}

/**
 * The seed an answer samples with: the conversation's seed for the first answer to a question,
 * the next one for each regenerated version (version k uses seed + k, wrapping at 2^32). The
 * sampler's draws depend only on the seed and the token's position, so with one seed for all
 * versions Regenerate would write the same answer again; this way every version is new, and each
 * still repeats with the same settings.
 */
export function answerSeed(seed: number, version: number): number {
  return (seed + version) % 2 ** 32;
}

/** 0 for the first answer to its question, 1 for the second version, and so on. */
function versionOf(conv: Conversation, answer: MessageNode): number {
  const versions = conv.messages.filter((m) => m.parentId === answer.parentId && m.role === 'assistant');
  const i = versions.findIndex((m) => m.id === answer.id);
  return i < 0 ? versions.length : i;
}

/** The context policy (`planContext`) for `prompt`, given the engine's count of it. */
function fitToContext(prompt: readonly ChatMessage[], count: PromptCount, maxNewTokens: number) {
  return planContext({ roles: prompt.map((m) => m.role), counts: count.perMessage, overhead: count.overhead, contextLimit: count.contextLimit, maxNewTokens });
}

/**
 * What the next request on `conv` will send before its new message: the selected path as a prompt
 * (`promptFor`), cut by the context policy as a send of a short message would cut it (or as
 * Regenerate would, when the path ends with a question). Null when there is nothing to read.
 */
export async function historyAhead(conv: Conversation, countTokens: (m: ChatMessage[]) => Promise<PromptCount>): Promise<ChatMessage[] | null> {
  const path = selectedPath(conv);
  if (path.length === 0) return null;
  const history = promptFor(conv, path);
  const next: ChatMessage[] = history.at(-1)?.role === 'user' ? history : [...history, { role: 'user', content: '…' }];
  const plan = fitToContext(next, await countTokens(next), conv.settings.maxNewTokens);
  if (!plan.fits) return null;
  return plan.keep.filter((i) => i < history.length).map((i) => history[i]);
}

/** The prompt for an answer to the path ending at a user message: system prompt, then the path. */
export function promptFor(conv: Conversation, path: MessageNode[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (conv.settings.systemPrompt.trim()) messages.push({ role: 'system', content: conv.settings.systemPrompt });
  // Failed or empty answers are not shown to the model.
  for (const m of path) if (m.role === 'user' || m.content.trim()) messages.push({ role: m.role, content: m.content });
  return messages;
}

export const createChatSlice =
  (services: Services): StateCreator<AppState, [], [], ChatSlice> =>
  (set, get, store) => {
    let controller: AbortController | null = null;

    /**
     * A message sent while the model is still being listed, downloaded or loaded waits for it
     * (the answer says so) instead of failing with "No model is loaded"; the user can Stop. It
     * resolves once the model is ready or has stopped somewhere else (paused, failed), where the
     * engine's own error then explains.
     */
    function untilModelSettles(signal: AbortSignal): Promise<void> {
      if (!SETTLING.includes(get().model.status)) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          unsubscribe();
          signal.removeEventListener('abort', done);
          resolve();
        };
        const unsubscribe = store.subscribe((s) => {
          if (!SETTLING.includes(s.model.status)) done();
        });
        signal.addEventListener('abort', done);
      });
    }

    const setChat = (patch: Partial<ChatSlice['chat']>) => set((s) => ({ chat: { ...s.chat, ...patch } }));
    const conv = (id: string) => get().conversations[id];

    /**
     * Adds an empty answer under `userId` and streams the engine's output into it; or, given the
     * answer `continued` (under `userId`), streams more of it onto its text.
     */
    async function answer(conversationId: string, userId: string, continued?: MessageNode): Promise<void> {
      const now = services.now;
      const assistant: MessageNode = continued ?? { id: newId(), parentId: userId, role: 'assistant', content: '', createdAt: now() };
      const before = conv(conversationId);
      const prompt = promptFor(before, pathTo(before, userId));
      if (continued) prompt.push({ role: 'assistant', content: continued.content });
      else await get().commit(addMessage(before, assistant, now()));
      controller = new AbortController();
      const signal = controller.signal;
      // Other tabs tell this answer's cut-off saves from a cut-off answer by it (answerLocks.ts).
      const release = services.answerLocks?.hold(assistant.id);
      setChat({ streaming: { conversationId, messageId: assistant.id, text: assistant.content }, error: null });
      const patchStreaming = (patch: Partial<Streaming>) => {
        const s = get().chat.streaming;
        if (s && s.messageId === assistant.id) setChat({ streaming: { ...s, ...patch } });
      };
      let savedAt = now();
      const deltas = deltaBatcher(services.nextFrame, (text, generated) => {
        const s = get().chat.streaming;
        if (!s || s.messageId !== assistant.id) return;
        const tokens = s.tokens && generated ? { prompt: s.tokens.prompt, generated: s.tokens.generated + generated } : s.tokens;
        const { prefill: _read, ...rest } = s;
        setChat({ streaming: { ...rest, text: s.text + text, ...(tokens ? { tokens } : {}) } });
        // The text so far, saved as an answer cut off: what a reload or a closed tab leaves.
        const latest = conv(conversationId);
        if (services.streamSaveMs !== undefined && latest && now() - savedAt >= services.streamSaveMs) {
          savedAt = now();
          void get().commit(updateMessage(latest, assistant.id, { content: s.text + text, error: CUT_OFF }, now()));
        }
      });

      let stats: GenerationStats | undefined;
      let context: ContextNote | undefined;
      let error: string | undefined;
      try {
        if (SETTLING.includes(get().model.status)) {
          setChat({ streaming: { conversationId, messageId: assistant.id, text: assistant.content, waitingForModel: true } });
          await untilModelSettles(signal);
          if (signal.aborted) return;
          setChat({ streaming: { conversationId, messageId: assistant.id, text: assistant.content } });
        }
        if (get().model.status === 'cached' && get().model.inOtherTab) throw new Error(IN_OTHER_TAB);
        const engine = services.engine();
        const count = await engine.countTokens(prompt);
        const settings = before.settings;
        const plan = fitToContext(prompt, count, settings.maxNewTokens);
        if (!plan.fits) throw new Error(plan.message);
        if (plan.droppedMessages > 0) {
          context = { droppedMessages: plan.droppedMessages, promptTokens: plan.promptTokens, contextLimit: count.contextLimit };
        }
        if (signal.aborted) return;
        patchStreaming({ tokens: { prompt: plan.promptTokens, generated: 0 } });
        const { systemPrompt: _s, maxNewTokens: _m, ...settingsSampling } = settings;
        const sampling = { ...settingsSampling, seed: answerSeed(settings.seed, versionOf(conv(conversationId), assistant)) };
        stats = await engine.generate(
          plan.keep.map((i) => prompt[i]),
          { sampling, maxNewTokens: plan.maxNewTokens },
          (e) => deltas.push(e.text, e.tokenId >= 0 ? 1 : 0),
          signal,
          (done, total, again) => patchStreaming({ prefill: { done, total, ...(again ? { again } : {}) } }),
        );
        setChat({
          context: { used: stats.promptTokens + stats.newTokens, limit: count.contextLimit, droppedMessages: plan.droppedMessages },
        });
      } catch (err) {
        // A stop that makes the engine reject rather than resolve is still a stop, not an error.
        if (!signal.aborted) error = describe(err);
      } finally {
        deltas.flush();
        const text = get().chat.streaming?.messageId === assistant.id ? (get().chat.streaming?.text ?? '') : '';
        if (controller?.signal === signal) controller = null;
        const latest = conv(conversationId);
        let saved: Promise<void> | undefined;
        if (latest) {
          const patch: Partial<MessageNode> = { content: text };
          if (stats) patch.stats = stats;
          // A continuation's note and error replace those of the answer so far (a failed
          // continuation keeps the stats of the part before it, so it can be continued again).
          // The error also replaces the cut-off note of the text saved while streaming.
          if (context || continued) patch.context = context;
          patch.error = error;
          // Before the streaming state ends: no render may show the message as it was saved
          // mid-answer (cut off) once it no longer streams.
          saved = get().commit(updateMessage(latest, assistant.id, patch, now()));
        }
        setChat({ streaming: null, ...(error ? { error } : {}) });
        await saved;
        // After the last save: another tab waiting for the lock then reads the finished answer.
        release?.();
      }
    }

    /**
     * Reading ahead: what the open conversation was last scheduled for (the loaded model's record
     * and the conversation object, both replaced on every change), its timer and its controller.
     */
    let ahead: { loaded: unknown; conv: Conversation; timer: ReturnType<typeof setTimeout>; ctrl: AbortController } | null = null;

    async function prepareAhead(c: Conversation, signal: AbortSignal): Promise<void> {
      const engine = services.engine();
      try {
        const history = await historyAhead(c, (m) => engine.countTokens(m));
        if (!history || signal.aborted) return;
        const result = await engine.prepare(history, signal);
        if (!result.stopped && !signal.aborted) setChat({ prepared: { conversationId: c.id, tokens: result.preparedTokens } });
      } catch {
        // Only a speed-up: the request that follows reports its own errors.
      }
    }

    /** Schedules reading ahead whenever the model, the open conversation or the streaming state changes. */
    function followOpenConversation(s: AppState): void {
      const c = s.activeId ? s.conversations[s.activeId] : undefined;
      const idle = s.readAhead && s.model.status === 'ready' && s.model.loaded !== undefined && !s.chat.streaming;
      const target = idle && c && c.messages.length > 0 ? { loaded: s.model.loaded, conv: c } : null;
      if (ahead && target && ahead.loaded === target.loaded && ahead.conv === target.conv) return;
      if (!ahead && !target) return;
      if (ahead) {
        clearTimeout(ahead.timer);
        ahead.ctrl.abort();
        ahead = null;
      }
      if (target && services.prepareDelayMs !== undefined) {
        const ctrl = new AbortController();
        const conv = target.conv;
        ahead = { ...target, ctrl, timer: setTimeout(() => void prepareAhead(conv, ctrl.signal), services.prepareDelayMs) };
      }
      // Last: this set calls back here, which then finds `ahead` up to date.
      if (s.chat.prepared) setChat({ prepared: null });
    }
    if (services.prepareDelayMs !== undefined) store.subscribe(followOpenConversation);

    return {
      chat: { streaming: null, prepared: null, error: null, context: null },
      readAhead: services.readAhead?.read() ?? true,
      setReadAhead: (on) => {
        services.readAhead?.write(on);
        set({ readAhead: on });
      },

      send: async (text) => {
        const content = text.trim();
        if (!content || get().chat.streaming) return;
        const id = get().activeId ?? (await get().newConversation());
        const c = conv(id);
        const path = selectedPath(c);
        const user: MessageNode = { id: newId(), parentId: path.at(-1)?.id ?? null, role: 'user', content, createdAt: services.now() };
        let next = addMessage(c, user, services.now());
        if (next.title === DEFAULT_TITLE && path.length === 0) next = { ...next, title: titleFrom(content) };
        await get().commit(next);
        await answer(id, user.id);
      },

      stop: () => {
        controller?.abort();
      },

      regenerate: async (messageId) => {
        const id = get().activeId;
        if (!id || get().chat.streaming) return;
        const target = conv(id).messages.find((m) => m.id === messageId);
        if (!target || target.role !== 'assistant' || target.parentId === null) return;
        await answer(id, target.parentId);
      },

      continueAnswer: async (messageId) => {
        const id = get().activeId;
        if (!id || get().chat.streaming) return;
        const target = conv(id).messages.find((m) => m.id === messageId);
        if (!target || !canContinue(target) || target.parentId === null) return;
        await answer(id, target.parentId, target);
      },

      edit: async (messageId, text) => {
        const id = get().activeId;
        const content = text.trim();
        if (!id || !content || get().chat.streaming) return;
        const c = conv(id);
        const target = c.messages.find((m) => m.id === messageId);
        if (!target || target.role !== 'user') return;
        const user: MessageNode = { id: newId(), parentId: target.parentId, role: 'user', content, createdAt: services.now() };
        await get().commit(addMessage(c, user, services.now()));
        await answer(id, user.id);
      },

      watchAnswer: async (conversationId, messageId, onChange, signal) => {
        const locks = services.answerLocks;
        const held = locks ? await locks.held(messageId) : false;
        if (signal.aborted) return;
        onChange(held);
        if (!locks || !held || !(await locks.whenFree(messageId, signal))) return;
        // Its last save came before the lock went: read it before the note may say "cut off".
        await get().reloadConversation(conversationId);
        if (!signal.aborted) onChange(false);
      },
    };
  };
