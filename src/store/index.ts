/**
 * The app's single zustand store, composed of slices (gpu, conversations, settings, chat).
 * Only store actions talk to the worker client and to IndexedDB; components select narrowly and
 * call actions. Services are injected so unit tests can give the store their own engine and an
 * in-memory conversation repo.
 *
 * The engine contract the chat slice needs (`ChatEngine`), which the worker client implements:
 *
 *   countTokens(messages) -> { perMessage, overhead, contextLimit }
 *     perMessage[i]: tokens message i takes inside the model's chat template;
 *     overhead: tokens the template adds outside the messages (BOS, the trailing
 *       `<|assistant|>` generation prompt), so sum(perMessage) + overhead = prompt length;
 *     contextLimit: ModelInfo.contextLimit of the loaded model.
 *     Rejects (with a message for the user) when no model is loaded.
 *
 *   prepare(messages, signal) -> PrepareResult
 *     Reads the conversation `messages` (the next request's, before its new message) into the
 *     model's KV cache (ChatEngine.prepare), so that request prefills only what it adds. When
 *     `signal` aborts it stops at its next chunk and resolves with `stopped`. Purely a speed-up:
 *     the store ignores its failures (the request that follows reports its own).
 *
 *   generate(messages, options, onToken, signal) -> GenerationStats
 *     Streams each decoded piece through onToken, in order, and resolves with the stats when it
 *     stops. When `signal` aborts it stops promptly and resolves with stopReason 'aborted'
 *     (rejecting is tolerated: the store treats any end after abort as a stop).
 *     Rejects with a WorkerError/AppError whose message is shown to the user.
 *
 * Rule: a slice reads other slices only through `get()`; only this file builds services.
 */
import { create } from 'zustand';
import { EngineClient } from '../worker/client';
import type { ChatMessage, GenerateOptions, GenerationStats, PrefillReport, TokenEvent } from '../engine/types';
import type { PrepareResult, PromptCount } from '../worker/protocol';
import { BroadcastConversationSync, IdbConversationRepo, type ConversationRepo, type ConversationSync } from '../conversations/repo';
import { localNewChatDefaults, type NewChatDefaults } from '../conversations/newChatDefaults';
import { localReadAhead, type Flag } from './preferences';
import { localDrafts, type Drafts } from './drafts';
import { createGpuSlice, type GpuSlice } from './gpuSlice';
import { createConversationsSlice, type ConversationsSlice } from './conversationsSlice';
import { createSettingsSlice, type SettingsSlice } from './settingsSlice';
import { createChatSlice, nextFrame, type ChatSlice } from './chatSlice';
import { createModelSlice, type ModelService, type ModelSlice } from './modelSlice';
import { webModelLock, type ModelLock } from './modelLock';
import { webAnswerLocks, type AnswerLocks } from './answerLocks';

export type { PrepareResult, PromptCount };

export interface ChatEngine {
  countTokens(messages: ChatMessage[]): Promise<PromptCount>;
  prepare(messages: ChatMessage[], signal: AbortSignal): Promise<PrepareResult>;
  /** `onPrefill` follows a long prompt (native engine): `done` of `total` tokens have run (PrefillReport). */
  generate(messages: ChatMessage[], options: GenerateOptions, onToken: (e: TokenEvent) => void, signal: AbortSignal, onPrefill?: PrefillReport): Promise<GenerationStats>;
}

export type EngineService = Pick<EngineClient, 'probe'> & ChatEngine;

export interface Services {
  engine: () => EngineService;
  conversations: ConversationRepo;
  /** Milliseconds since the epoch; injected so tests control timestamps. */
  now: () => number;
  /** Cross-tab change notices for conversations; absent in tests that need none. */
  sync?: ConversationSync;
  /** The worker client's model calls (catalog, download, cache); optional so chat tests need none. */
  models?: () => ModelService;
  /** The settings new conversations start from; absent: always the built-in ones. */
  newChatDefaults?: NewChatDefaults;
  /** One copy of the model on the GPU across tabs; absent: every tab loads by itself. */
  modelLock?: ModelLock;
  /**
   * Runs `run` when the page next paints: a streaming answer's tokens are shown at most once per
   * frame (`deltaBatcher` in chatSlice.ts). Absent: each token is shown as it arrives.
   */
  nextFrame?: (run: () => void) => void;
  /**
   * Read the open conversation into the model's KV cache this long (ms) after it was opened or
   * changed, while the model is ready and idle (chatSlice.ts, `prepareAhead`). Absent: never.
   */
  prepareDelayMs?: number;
  /**
   * Save a streaming answer's text so far at most this often (ms), so a reload or a closed tab
   * keeps it (chatSlice.ts, `CUT_OFF`). Absent: saved only when it ends.
   */
  streamSaveMs?: number;
  /** Whether the user wants reading ahead (the model panel's checkbox); absent: on, not saved. */
  readAhead?: Flag;
  /** Unsent messages per conversation (drafts.ts); absent: kept in the message box only. */
  drafts?: Drafts;
  /** Which tab is writing which answer (answerLocks.ts); absent: a saved cut-off note always reads "cut off". */
  answerLocks?: AnswerLocks;
}

export type AppState = GpuSlice & ConversationsSlice & SettingsSlice & ChatSlice & ModelSlice;

export function createAppStore(services: Services) {
  return create<AppState>()((...a) => ({
    ...createGpuSlice(services)(...a),
    ...createConversationsSlice(services)(...a),
    ...createSettingsSlice(services)(...a),
    ...createChatSlice(services)(...a),
    ...createModelSlice(services.models ?? (() => workerClient()), services.modelLock)(...a),
  }));
}

// The worker client is the engine: countTokens and generate go to the model loaded in the worker,
// and reject with a message for the user (MODEL_NOT_CACHED: "No model is loaded…") when none is.
let worker: EngineClient | undefined;
const workerClient = () => (worker ??= new EngineClient());
export const useAppStore = createAppStore({
  engine: () => workerClient(),
  conversations: new IdbConversationRepo(),
  now: () => Date.now(),
  sync: typeof BroadcastChannel === 'undefined' ? undefined : new BroadcastConversationSync(),
  newChatDefaults: localNewChatDefaults,
  modelLock: webModelLock(),
  nextFrame,
  prepareDelayMs: 500,
  streamSaveMs: 2000,
  readAhead: localReadAhead,
  drafts: localDrafts,
  answerLocks: webAnswerLocks(),
});

// Test hook, only with `?test-hooks` in the URL: e2e tests destroy the worker's GPU device with it
// to check that the model comes back from IndexedDB.
if (typeof location !== 'undefined' && new URLSearchParams(location.search).has('test-hooks')) {
  (globalThis as { phi3TestHooks?: unknown }).phi3TestHooks = { loseDevice: () => workerClient().loseDevice() };
}
