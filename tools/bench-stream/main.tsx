/**
 * The page side of tools/bench-stream.ts: the app's chat column (production React, the app's
 * CSS) showing a conversation of ten answered questions and an eleventh answer streaming in.
 * A worker posts the answer's deltas at a fixed rate, one message per token like the engine
 * worker; each is handed to the store through the app's `deltaBatcher`, either at once (what the
 * app did before) or once per frame (`nextFrame`, what it does now). Measures how far the page
 * falls behind the model and how smoothly it paints.
 */
import { createRoot } from 'react-dom/client';
import { ChatView } from '../../src/ui/ChatView';
import { useAppStore } from '../../src/store';
import { deltaBatcher, nextFrame } from '../../src/store/chatSlice';
import { addMessage, createConversation } from '../../src/conversations/tree';
import type { MessageNode } from '../../src/conversations/types';
import '../../src/styles/app.css';

export interface StreamResult {
  /** Store updates the deltas caused (each one a render, layout and scroll). */
  updates: number;
  /** From the last token's send to its arrival on the page's thread (the message backlog), ms. */
  receiveLagMs: number;
  /** From the last token's send to the whole answer on screen, ms. */
  shownLagMs: number;
  /** Frames the page painted per second while the answer streamed. */
  framesPerSec: number;
  /** Longest gap between two painted frames while it streamed, ms. */
  longestFrameMs: number;
}

declare global {
  interface Window {
    __streamBench?: { ready: true; run(history: string, deltas: string[], tokensPerSec: number, mode: 'token' | 'frame'): Promise<StreamResult> };
  }
}

const CONV = 'bench';
const root = createRoot(document.getElementById('root')!);
root.render(
  <div className="app drawer-none">
    <div className="layout">
      <div className="chat-column">
        <ChatView onSetUpModel={() => {}} />
      </div>
    </div>
  </div>,
);

/** Ten questions with answers of `history`'s text, and an empty answer to the eleventh, streaming. */
function resetConversation(history: string): string {
  let conv = { ...createConversation(0, CONV), title: 'Streaming benchmark' };
  let parent: string | null = null;
  for (let i = 0; i < 11; i++) {
    const q: MessageNode = { id: `q${i}`, parentId: parent, role: 'user', content: `Question ${i + 1}: how do GEMV kernels reach the copy bandwidth?`, createdAt: i };
    const a: MessageNode = { id: `a${i}`, parentId: q.id, role: 'assistant', content: i < 10 ? history : '', createdAt: i };
    conv = addMessage(addMessage(conv, q, i), a, i);
    parent = a.id;
  }
  useAppStore.setState((s) => ({
    conversations: { [CONV]: conv },
    activeId: CONV,
    loadState: 'ready',
    chat: { ...s.chat, streaming: { conversationId: CONV, messageId: 'a10', text: '', tokens: { prompt: 3000, generated: 0 } }, error: null },
  }));
  return 'a10';
}

const now = () => performance.timeOrigin + performance.now();
const frame = () => new Promise<number>((r) => requestAnimationFrame(() => r(now())));

window.__streamBench = {
  ready: true,
  async run(history, deltas, tokensPerSec, mode) {
    resetConversation(history);
    // Markdown is loaded lazily, as in the app: the answers above are rendered by it before timing.
    for (let i = 0; i < 600 && !document.querySelector('.markdown'); i++) await frame();
    await frame();
    await frame();
    const whole = deltas.join('');
    let updates = 0;
    const batch = deltaBatcher(mode === 'frame' ? nextFrame : undefined, (text, tokens) => {
      updates++;
      useAppStore.setState((s) => {
        const st = s.chat.streaming!;
        return { chat: { ...s.chat, streaming: { ...st, text: st.text + text, tokens: { prompt: st.tokens!.prompt, generated: st.tokens!.generated + tokens } } } };
      });
    });
    const worker = new Worker(new URL('./emitter.worker.ts', import.meta.url), { type: 'module' });
    const frames: number[] = [];
    let streaming = true;
    const tick = () => {
      frames.push(now());
      if (streaming) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    const result = await new Promise<StreamResult>((resolve) => {
      let lastSentAt = 0;
      let receivedAt = 0;
      worker.onmessage = (e: MessageEvent<{ i: number; text: string; sentAt: number }>) => {
        batch.push(e.data.text, 1);
        if (e.data.i < deltas.length - 1) return;
        lastSentAt = e.data.sentAt;
        receivedAt = now();
        // Shown: the whole answer is in the store, so in the DOM, at a frame.
        const check = () => {
          if (useAppStore.getState().chat.streaming?.text.length === whole.length) {
            streaming = false;
            const shownAt = now();
            const during = frames.filter((t) => t <= shownAt);
            const gaps = during.slice(1).map((t, i) => t - during[i]);
            resolve({
              updates,
              receiveLagMs: receivedAt - lastSentAt,
              shownLagMs: shownAt - lastSentAt,
              framesPerSec: ((during.length - 1) * 1000) / (during[during.length - 1] - during[0]),
              longestFrameMs: Math.max(...gaps),
            });
          } else requestAnimationFrame(check);
        };
        requestAnimationFrame(check);
      };
      worker.postMessage({ deltas, tokensPerSec });
    });
    worker.terminate();
    return result;
  },
};
