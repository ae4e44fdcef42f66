/**
 * The context meter: tokens the open conversation uses against the model's context limit (while
 * an answer streams, its prompt and the tokens written so far; else what the last answer used),
 * and a plain statement of the policy when the conversation outgrows it. Its tooltip also says
 * when the model has read the open conversation ahead (chatSlice.ts, `prepareAhead`), so the next
 * message is answered without reading the chat again; `data-prepared-tokens` carries the count.
 */
import { useAppStore } from '../store';
import { selectedPath } from '../conversations/tree';

function useUsedTokens(): number | null {
  return useAppStore((s) => {
    const conv = s.activeId ? s.conversations[s.activeId] : undefined;
    if (!conv) return null;
    const last = selectedPath(conv).findLast((m) => m.stats);
    return last?.stats ? last.stats.promptTokens + last.stats.newTokens : null;
  });
}

/** The streaming answer's prompt and tokens so far, when it belongs to the open conversation. */
function useStreamingTokens(): number | null {
  return useAppStore((s) => {
    const t = s.chat.streaming?.conversationId === s.activeId ? s.chat.streaming?.tokens : undefined;
    return t ? t.prompt + t.generated : null;
  });
}

export function ContextMeter() {
  const streamed = useStreamingTokens();
  const answered = useUsedTokens();
  const used = streamed ?? answered;
  // The loaded model's limit; a conversation opened after a reload has no answer of this session yet.
  const limit = useAppStore((s) => s.model.loaded?.info.contextLimit ?? s.chat.context?.limit ?? null);
  const prepared = useAppStore((s) => (s.chat.prepared && s.chat.prepared.conversationId === s.activeId ? s.chat.prepared.tokens : null));
  const policy = 'When a conversation outgrows the context, the oldest turns are left out; the system prompt is always kept.';
  const label = limit ? `${used ?? 0} / ${limit} tokens` : used !== null ? `${used} tokens (load a model to see the limit)` : 'no tokens yet';
  return (
    <div
      className="context-meter"
      title={prepared !== null ? `${policy}\nThe model has already read this chat (${prepared} tokens): your next message is answered without reading it again.` : policy}
      data-prepared-tokens={prepared ?? undefined}
    >
      <label htmlFor="context-meter">Context</label>
      <meter id="context-meter" min={0} max={limit ?? 1} value={limit ? Math.min(used ?? 0, limit) : 0} low={(limit ?? 1) * 0.7} high={(limit ?? 1) * 0.9} optimum={0} aria-valuetext={label} />
      <span data-testid="context-meter-text">{label}</span>
    </div>
  );
}
